// Synchronous replication end to end (docs/sync-replication.md): three real `pgwarden agent`
// processes with PostgreSQL 15 over one real etcd on loopback. synchronous_mode is switched on
// at runtime through the etcd `config` key. A writer inserts unique ids as fast as it can and
// records every acknowledged commit; the primary's host (agent + postmaster) is SIGKILLed
// mid-stream; after the failover every acknowledged id must be on the new primary.
//
//   PGWARDEN_SYNC_ROUNDS=10 ./sync_integration_test     more crash rounds (default 3)
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/process.h"
#include "support/cluster_harness.h"

namespace pgwarden::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const char* kConfigKey = "/service/itest/config";
const char* kSyncKey = "/service/itest/sync";

class SyncCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.pgwarden_binary = PGWARDEN_BINARY;
    cluster_ = new ClusterHarness(o);
    auto r = cluster_->Start();
    ASSERT_TRUE(r) << r.error().ToString();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure() && cluster_) std::cerr << cluster_->AllLogs() << "\n";
  }
  ClusterHarness& c() { return *cluster_; }

  Result<std::string> Etcdctl(std::vector<std::string> args) {
    Command cmd;
    cmd.argv = {"etcdctl", "--endpoints=" + c().etcd().endpoint()};
    cmd.argv.insert(cmd.argv.end(), args.begin(), args.end());
    cmd.env["ETCDCTL_API"] = "3";
    auto r = RunChecked(cmd, seconds(10));
    if (!r) return Fail(r.error());
    return r->output;
  }
  // The `sync` key's standbys, "" when none or absent.
  std::string SyncStandbys() {
    auto v = Etcdctl({"get", kSyncKey, "--print-value-only"});
    if (!v || v->empty()) return "";
    auto j = nlohmann::json::parse(*v, nullptr, false);
    if (!j.is_object() || !j.contains("sync_standby") || !j["sync_standby"].is_string()) return "";
    return j["sync_standby"].get<std::string>();
  }
  // Sets one field of the dynamic config (etcd `config` key) at runtime.
  bool SetConfig(const std::string& field, const nlohmann::json& value) {
    auto cfg = Etcdctl({"get", kConfigKey, "--print-value-only"});
    if (!cfg) return false;
    auto j = nlohmann::json::parse(*cfg, nullptr, false);
    if (!j.is_object()) return false;
    j[field] = value;
    return Etcdctl({"put", kConfigKey, j.dump()}).has_value();
  }
  std::optional<size_t> Index(const std::string& name) {
    for (size_t i = 0; i < c().size(); ++i) {
      if (c().node(i).name == name) return i;
    }
    return std::nullopt;
  }
  bool Streaming(size_t primary, int n) {
    auto s =
        c().SqlValue(primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'");
    return s && *s == std::to_string(n);
  }
  // A primary and a synchronous standby recorded in `sync` that PostgreSQL reports as sync.
  std::optional<std::pair<size_t, size_t>> SyncPair() {
    auto p = c().Primary();
    if (!p) return std::nullopt;
    const std::string s = SyncStandbys();
    auto i = Index(s);
    if (!i) return std::nullopt;
    auto state = c().SqlValue(*p,
                              "SELECT sync_state FROM pg_stat_replication WHERE "
                              "application_name = '" +
                                  s + "'");
    if (!state || *state != "sync") return std::nullopt;
    return std::make_pair(*p, *i);
  }

  static ClusterHarness* cluster_;
};

ClusterHarness* SyncCluster::cluster_ = nullptr;

TEST_F(SyncCluster, SwitchedOnAtRuntimeASyncStandbyIsRecorded) {
  ASSERT_TRUE(ClusterHarness::WaitFor([&] { return c().Primary() && Streaming(*c().Primary(), 2); },
                                      seconds(90)));
  auto cfg = Etcdctl({"get", kConfigKey, "--print-value-only"});
  ASSERT_TRUE(cfg) << cfg.error().ToString();
  auto j = nlohmann::json::parse(*cfg, nullptr, false);
  ASSERT_TRUE(j.is_object()) << *cfg;
  j["synchronous_mode"] = true;
  ASSERT_TRUE(Etcdctl({"put", kConfigKey, j.dump()}));
  std::optional<std::pair<size_t, size_t>> pair;
  ASSERT_TRUE(
      ClusterHarness::WaitFor([&] { return (pair = SyncPair()).has_value(); }, seconds(20)));
  auto ssn = c().SqlValue(pair->first, "SHOW synchronous_standby_names");
  ASSERT_TRUE(ssn);
  EXPECT_EQ(*ssn, "FIRST 1 (\"" + c().node(pair->second).name + "\")");
  // REST: /sync on the recorded standby, /async on the other replica, neither on the primary.
  size_t other = 0;
  while (other == pair->first || other == pair->second) ++other;
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        return c().Get(pair->second, "/sync").first == 200 &&
               c().Get(pair->first, "/sync").first == 503 && c().Get(other, "/sync").first == 503 &&
               c().Get(other, "/async").first == 200;
      },
      seconds(5)))
      << "/sync on the standby: " << c().Get(pair->second, "/sync").first
      << ", on the primary: " << c().Get(pair->first, "/sync").first
      << ", /async on the other replica: " << c().Get(other, "/async").first;
}

TEST_F(SyncCluster, KilledPrimaryHostLosesNoAcknowledgedCommit) {
  int rounds = 3;
  if (const char* v = std::getenv("PGWARDEN_SYNC_ROUNDS")) rounds = std::max(1, std::atoi(v));
  for (int round = 0; round < rounds; ++round) {
    std::optional<std::pair<size_t, size_t>> pair;
    ASSERT_TRUE(ClusterHarness::WaitFor(
        [&] { return (pair = SyncPair()) && Streaming(pair->first, 2); }, seconds(90)))
        << "round " << round << ": no primary with a recorded sync standby";
    const size_t primary = pair->first;
    ASSERT_TRUE(c().Sql(primary, "CREATE TABLE IF NOT EXISTS ids(id bigint PRIMARY KEY)"));
    std::atomic<bool> stop{false};
    std::vector<int64_t> acked;
    std::thread writer([&] {
      for (int64_t id = round * 10'000'000LL + 1; !stop; ++id) {
        auto r = c().Sql(primary, "INSERT INTO ids VALUES (" + std::to_string(id) + ")",
                         milliseconds(1000));
        if (r) acked.push_back(id);
        if (!r && acked.size() > 0 && stop) break;
      }
    });
    std::this_thread::sleep_for(milliseconds(1500));
    c().KillAgent(primary);
    c().KillPostgres(primary);
    stop = true;
    writer.join();
    ASSERT_GT(acked.size(), 10u) << "the writer got no acknowledgement";
    std::optional<size_t> next;
    ASSERT_TRUE(ClusterHarness::WaitFor(
        [&] { return (next = c().Primary()).has_value() && *next != primary; }, seconds(30)))
        << "round " << round << ": no failover";
    EXPECT_EQ(*next, pair->second) << "the new primary is not the synchronous standby";
    std::string list;
    for (int64_t id : acked) list += (list.empty() ? "" : ",") + std::to_string(id);
    auto present = c().SqlValue(*next, "SELECT count(*) FROM ids WHERE id = ANY('{" + list + "}')");
    ASSERT_TRUE(present) << present.error().ToString();
    EXPECT_EQ(std::stoll(*present), static_cast<long long>(acked.size()))
        << "round " << round << ": acknowledged ids missing on the new primary";
    std::cout << "round " << round << ": " << acked.size() << " acknowledged ids, all on "
              << c().node(*next).name << "\n";
    ASSERT_TRUE(c().StartAgent(primary));  // the old primary's host comes back and rejoins
  }
}

TEST_F(SyncCluster, KilledSyncStandbyIsReplacedWithinSeconds) {
  std::optional<std::pair<size_t, size_t>> pair;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] { return (pair = SyncPair()) && Streaming(pair->first, 2); }, seconds(90)));
  const size_t old_sync = pair->second;
  c().KillAgent(old_sync);
  c().KillPostgres(old_sync);
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<std::pair<size_t, size_t>> now;
  ASSERT_TRUE(ClusterHarness::WaitFor([&] { return (now = SyncPair()) && now->second != old_sync; },
                                      seconds(10)));
  std::cout
      << "new sync standby after "
      << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count()
      << " ms\n";
  EXPECT_EQ(now->first, pair->first);
  ASSERT_TRUE(c().StartAgent(old_sync));
}

// Strict mode (docs/sync-replication.md): with both replicas gone the primary sets '*' (after
// emptying `sync`) and a commit waits; it returns once one replica is back, and new commits
// succeed.
TEST_F(SyncCluster, StrictModeCommitWaitsWithoutReplicasAndResumesWhenOneReturns) {
  std::optional<std::pair<size_t, size_t>> pair;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] { return (pair = SyncPair()) && Streaming(pair->first, 2); }, seconds(90)));
  const size_t primary = pair->first;
  ASSERT_TRUE(SetConfig("synchronous_mode_strict", true));
  ASSERT_TRUE(c().Sql(primary, "CREATE TABLE IF NOT EXISTS strict_ids(id bigint PRIMARY KEY)"));
  std::vector<size_t> replicas;
  for (size_t i = 0; i < c().size(); ++i) {
    if (i != primary) replicas.push_back(i);
  }
  for (size_t r : replicas) {
    c().KillAgent(r);
    c().KillPostgres(r);
  }
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto ssn = c().SqlValue(primary, "SHOW synchronous_standby_names");
        return ssn && *ssn == "*" && SyncStandbys().empty();
      },
      seconds(15)))
      << "the primary did not go to '*' with `sync` empty";
  std::atomic<bool> done{false};
  std::atomic<bool> ok{false};
  const auto t0 = std::chrono::steady_clock::now();
  std::thread commit([&] {
    ok = c().Sql(primary, "INSERT INTO strict_ids VALUES (1)", seconds(60)).has_value();
    done = true;
  });
  std::this_thread::sleep_for(seconds(2));
  EXPECT_FALSE(done) << "a commit returned in strict mode with no replica";
  ASSERT_TRUE(c().StartAgent(replicas[0]));
  const bool returned = ClusterHarness::WaitFor([&] { return done.load(); }, seconds(45));
  if (!returned) {
    // Unblock the writer: let the other replica come back too.
    (void)c().StartAgent(replicas[1]);
  }
  commit.join();
  ASSERT_TRUE(returned) << "the waiting commit did not return after a replica came back";
  EXPECT_TRUE(ok) << "the waiting commit failed";
  std::cout
      << "strict: the waiting commit returned "
      << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count()
      << " ms after it was sent (replica restarted after 2 s)\n";
  auto next = c().Sql(primary, "INSERT INTO strict_ids VALUES (2)", seconds(10));
  EXPECT_TRUE(next) << next.error().ToString();
  ASSERT_TRUE(c().StartAgent(replicas[1]));
  ASSERT_TRUE(SetConfig("synchronous_mode_strict", false));
}

// Without strict mode, losing every replica makes the primary asynchronous, but only after
// `sync` lists nobody: a sample that reads synchronous_standby_names = '' first must then read
// an empty `sync`. Commits then succeed at once.
TEST_F(SyncCluster, WithoutStrictFallsBackToAsyncOnlyAfterSyncIsEmptied) {
  std::optional<std::pair<size_t, size_t>> pair;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] { return (pair = SyncPair()) && Streaming(pair->first, 2); }, seconds(90)));
  const size_t primary = pair->first;
  ASSERT_TRUE(c().Sql(primary, "CREATE TABLE IF NOT EXISTS async_ids(id bigint PRIMARY KEY)"));
  std::vector<size_t> replicas;
  for (size_t i = 0; i < c().size(); ++i) {
    if (i != primary) replicas.push_back(i);
  }
  for (size_t r : replicas) {
    c().KillAgent(r);
    c().KillPostgres(r);
  }
  int samples = 0, async_samples = 0;
  std::string bad;
  const auto deadline = std::chrono::steady_clock::now() + seconds(15);
  while (std::chrono::steady_clock::now() < deadline && async_samples < 5) {
    auto ssn = c().SqlValue(primary, "SHOW synchronous_standby_names");
    const std::string listed = SyncStandbys();  // read after synchronous_standby_names
    ++samples;
    if (ssn && ssn->empty()) {
      ++async_samples;
      if (!listed.empty()) bad = listed;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_GE(async_samples, 5) << "the primary never went asynchronous";
  EXPECT_EQ(bad, "") << "synchronous_standby_names was '' while `sync` still listed " << bad;
  std::cout << "async fall-back: " << samples << " samples, " << async_samples
            << " asynchronous, `sync` empty in each\n";
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c().Sql(primary, "INSERT INTO async_ids VALUES (1)", seconds(10));
  EXPECT_TRUE(r) << r.error().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(2));
  for (size_t i : replicas) ASSERT_TRUE(c().StartAgent(i));
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] { return (pair = SyncPair()) && Streaming(pair->first, 2); }, seconds(60)));
}

// Quorum mode switched on at runtime: 'ANY 1 (both replicas)' and `sync` = {both, quorum 1};
// then the primary's host is SIGKILLed under a writer: the new primary holds every
// acknowledged id (it must have seen the other replica at or behind it).
TEST_F(SyncCluster, QuorumModeAtRuntimeLosesNoAcknowledgedCommit) {
  std::optional<std::pair<size_t, size_t>> pair;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] { return (pair = SyncPair()) && Streaming(pair->first, 2); }, seconds(90)));
  ASSERT_TRUE(SetConfig("synchronous_mode", "quorum"));
  const size_t primary = pair->first;
  std::vector<std::string> replicas;
  for (size_t i = 0; i < c().size(); ++i) {
    if (i != primary) replicas.push_back(c().node(i).name);
  }
  std::sort(replicas.begin(), replicas.end());
  const std::string want_ssn = "ANY 1 (\"" + replicas[0] + "\",\"" + replicas[1] + "\")";
  std::string ssn, key;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto v = c().SqlValue(primary, "SHOW synchronous_standby_names");
        ssn = v ? *v : "";
        auto k = Etcdctl({"get", kSyncKey, "--print-value-only"});
        key = k ? *k : "";
        auto j = nlohmann::json::parse(key, nullptr, false);
        return ssn == want_ssn && j.is_object() && j.contains("quorum") && j["quorum"] == 1 &&
               j.contains("sync_standby") && j["sync_standby"].is_string() &&
               j["sync_standby"].get<std::string>() == replicas[0] + "," + replicas[1];
      },
      seconds(20)))
      << "synchronous_standby_names " << ssn << ", sync " << key;
  std::cout << "quorum mode: " << ssn << ", sync " << key;
  // Both quorum members answer GET /sync (docs/sync-replication.md, "Display"); the primary not.
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        bool all = c().Get(primary, "/sync").first == 503;
        for (size_t i = 0; i < c().size(); ++i) {
          if (i != primary) all = all && c().Get(i, "/sync").first == 200;
        }
        return all;
      },
      seconds(5)));
  ASSERT_TRUE(c().Sql(primary, "CREATE TABLE IF NOT EXISTS quorum_ids(id bigint PRIMARY KEY)"));
  std::atomic<bool> stop{false};
  std::vector<int64_t> acked;
  std::thread writer([&] {
    for (int64_t id = 1; !stop; ++id) {
      auto r = c().Sql(primary, "INSERT INTO quorum_ids VALUES (" + std::to_string(id) + ")",
                       seconds(5));
      if (r) acked.push_back(id);
    }
  });
  std::this_thread::sleep_for(milliseconds(1500));
  c().KillAgent(primary);
  c().KillPostgres(primary);
  stop = true;
  writer.join();
  ASSERT_GT(acked.size(), 10u) << "the writer got no acknowledgement";
  std::optional<size_t> next;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] { return (next = c().Primary()).has_value() && *next != primary; }, seconds(30)))
      << "no failover in quorum mode";
  std::string list;
  for (int64_t id : acked) list += (list.empty() ? "" : ",") + std::to_string(id);
  auto present =
      c().SqlValue(*next, "SELECT count(*) FROM quorum_ids WHERE id = ANY('{" + list + "}')");
  ASSERT_TRUE(present) << present.error().ToString();
  EXPECT_EQ(std::stoll(*present), static_cast<long long>(acked.size()))
      << "acknowledged ids missing on the new primary";
  std::cout << "quorum mode: " << acked.size() << " acknowledged ids, all on "
            << c().node(*next).name << "\n";
  ASSERT_TRUE(c().StartAgent(primary));
  ASSERT_TRUE(SetConfig("synchronous_mode", true));
}

}  // namespace
}  // namespace pgwarden::testing
