// The HA agent end to end: three real `pgwarden agent` processes, each with a real PostgreSQL 15,
// over one real etcd, all on loopback (tests/support/cluster_harness.h). The cases share one
// cluster and run in order (bootstrap first); each leaves the cluster with one primary and two
// streaming replicas for the next.
//
// Replication is asynchronous here: a failover may lose what the primary acknowledged but had
// not yet shipped, at most maximum_lag_on_failover (1 MB) of WAL. So "every acknowledged row
// survives" is asserted for rows that the replicas had received before the fault (the test
// waits for that); rows written in the last instant before a crash are counted, not asserted.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "launch/host.h"
#include "support/cluster_harness.h"

namespace pgwarden::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

class AgentCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.pgwarden_binary = PGWARDEN_BINARY;
    cluster_ = new ClusterHarness(o);
    auto r = cluster_->Start();
    ASSERT_TRUE(r) << r.error().ToString();
  }
  static void TearDownTestSuite() {
    // PGWARDEN_AGENT_LOGS=1 prints every agent's log (for reading a green run too).
    if (cluster_ && std::getenv("PGWARDEN_AGENT_LOGS")) std::cerr << cluster_->AllLogs(200000);
    delete cluster_;
    cluster_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure() && cluster_) std::cerr << cluster_->AllLogs() << "\n";
  }

  ClusterHarness& c() { return *cluster_; }

  // One primary (by /primary) whose SQL says it is not in recovery, and every other node a
  // replica that streams from it (pg_stat_replication on the primary lists all of them).
  bool Healthy(size_t* primary_out = nullptr) {
    auto p = c().Primary();
    if (!p) return false;
    auto rec = c().SqlValue(*p, "SELECT pg_is_in_recovery()");
    if (!rec || *rec != "f") return false;
    auto streaming =
        c().SqlValue(*p, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'");
    if (!streaming || *streaming != std::to_string(c().size() - 1)) return false;
    for (size_t i = 0; i < c().size(); ++i) {
      if (i == *p) continue;
      auto r = c().SqlValue(i, "SELECT pg_is_in_recovery()");
      if (!r || *r != "t") return false;
    }
    if (primary_out) *primary_out = *p;
    return true;
  }

  size_t WaitHealthy(seconds timeout) {
    size_t p = 0;
    EXPECT_TRUE(ClusterHarness::WaitFor([&] { return Healthy(&p); }, timeout))
        << "cluster not healthy within " << timeout.count() << " s";
    return p;
  }

  // Inserts `n` rows tagged `tag` into t on node i; the number acknowledged.
  int Write(size_t i, const std::string& tag, int n) {
    int ok = 0;
    for (int k = 0; k < n; ++k) {
      auto r = c().Sql(i, "INSERT INTO t(tag) VALUES ('" + tag + "')", milliseconds(2000));
      if (r) ++ok;
    }
    return ok;
  }
  int Count(size_t i, const std::string& tag) {
    auto v = c().SqlValue(i, "SELECT count(*) FROM t WHERE tag = '" + tag + "'");
    return v ? std::stoi(*v) : -1;
  }
  // Waits until every replica has replayed the primary's current WAL position.
  bool WaitReplicated(size_t primary, seconds timeout) {
    auto lsn = c().SqlValue(primary, "SELECT pg_current_wal_lsn()");
    if (!lsn) return false;
    return ClusterHarness::WaitFor(
        [&] {
          for (size_t i = 0; i < c().size(); ++i) {
            if (i == primary) continue;
            auto ok = c().SqlValue(i, "SELECT pg_last_wal_replay_lsn() >= '" + *lsn + "'");
            if (!ok || *ok != "t") return false;
          }
          return true;
        },
        timeout);
  }

  // Waits for a primary other than `old` for which `ready` holds (e.g. it accepted a write).
  std::optional<size_t> WaitNewPrimary(size_t old, seconds timeout,
                                       const std::function<bool(size_t)>& ready = {}) {
    std::optional<size_t> np;
    const bool found = ClusterHarness::WaitFor(
        [&] {
          np = c().Primary();
          return np && *np != old && (!ready || ready(*np));
        },
        timeout);
    return found ? np : std::nullopt;
  }

  static ClusterHarness* cluster_;
};

ClusterHarness* AgentCluster::cluster_ = nullptr;

TEST_F(AgentCluster, BootstrapsOnePrimaryAndTwoStreamingReplicas) {
  ASSERT_NE(cluster_, nullptr);
  const size_t p = WaitHealthy(seconds(60));
  ASSERT_FALSE(HasFailure());
  // REST: /primary only on the leader, /replica on the others, /cluster lists everybody.
  // (The agents publish their API snapshot after each HA turn: give them a moment to see what
  // SQL already shows.)
  for (size_t i = 0; i < c().size(); ++i) {
    EXPECT_TRUE(ClusterHarness::WaitFor(
        [&] {
          return c().Get(i, "/primary").first == (i == p ? 200 : 503) &&
                 c().Get(i, "/replica").first == (i == p ? 503 : 200);
        },
        seconds(5)))
        << c().node(i).name << ": /primary " << c().Get(i, "/primary").first << ", /replica "
        << c().Get(i, "/replica").first << " " << c().Get(i, "/replica").second;
  }
  auto [code, body] = c().Get(p, "/cluster");
  ASSERT_EQ(code, 200) << body;
  auto j = nlohmann::json::parse(body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << body;
  ASSERT_EQ(j["members"].size(), 3u) << body;
  int leaders = 0;
  for (const auto& m : j["members"]) leaders += m.value("role", "") == "leader";
  EXPECT_EQ(leaders, 1) << body;
  // Every node shares the system identifier the leader wrote to `initialize`.
  auto sysid = c().SqlValue(p, "SELECT system_identifier::text FROM pg_control_system()");
  ASSERT_TRUE(sysid);
  for (size_t i = 0; i < c().size(); ++i) {
    auto s = c().SqlValue(i, "SELECT system_identifier::text FROM pg_control_system()");
    EXPECT_TRUE(s && *s == *sysid);
  }
  auto created = c().Sql(p, "CREATE TABLE t (id bigserial PRIMARY KEY, tag text)");
  ASSERT_TRUE(created) << created.error().ToString();
}

// Planned switchover to a named candidate, then to "any healthy replica": the lock moves, the
// old primary follows the new one, and nothing acknowledged is lost (a switchover waits until
// the candidate has received the shutdown checkpoint).
TEST_F(AgentCluster, SwitchoverWithAndWithoutCandidate) {
  size_t p = WaitHealthy(seconds(30));
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(Write(p, "before-switchover", 20), 20);
  const size_t candidate = (p + 1) % c().size();
  const std::string leader = c().node(p).name;
  const std::string body =
      R"({"leader":")" + leader + R"(","candidate":")" + c().node(candidate).name + R"("})";
  const auto t0 = Clock::now();
  auto [code, answer] = c().Post(p, "/switchover", body);
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  ASSERT_EQ(code, 200) << answer;
  std::cerr << "switchover to " << c().node(candidate).name << " answered in " << took << " ms\n";
  size_t np = WaitHealthy(seconds(40));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(np, candidate);
  EXPECT_EQ(Count(np, "before-switchover"), 20);
  EXPECT_EQ(Write(np, "after-switchover", 5), 5);

  // Without a candidate: any healthy replica.
  const std::string body2 = R"({"leader":")" + c().node(np).name + R"("})";
  auto [code2, answer2] = c().Post(np, "/switchover", body2);
  ASSERT_EQ(code2, 200) << answer2;
  size_t np2 = WaitHealthy(seconds(40));
  ASSERT_FALSE(HasFailure());
  EXPECT_NE(np2, np);
  EXPECT_EQ(Count(np2, "before-switchover"), 20);
  EXPECT_EQ(Count(np2, "after-switchover"), 5);

  // A bad request changes nothing.
  auto [bad, why] = c().Post(np2, "/switchover",
                             R"({"leader":")" + c().node(np2).name + R"(","candidate":"nobody"})");
  EXPECT_TRUE(bad == 400 || bad == 412) << bad << " " << why;
  EXPECT_EQ(c().Primary(), np2);
}

// A host crash: the primary's agent and its PostgreSQL die together. A replica takes over
// within a few seconds (ttl 2 s + election); every row the replicas had received is there;
// the old node, restarted, rewinds and streams from the new primary.
TEST_F(AgentCluster, HostCrashFailsOverAndTheOldPrimaryRejoins) {
  size_t p = WaitHealthy(seconds(30));
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(Write(p, "before-crash", 50), 50);
  ASSERT_TRUE(WaitReplicated(p, seconds(10)));
  // Rows acknowledged in the last instant may be lost in async mode (<= 1 MB of WAL): counted.
  const int last_instant = Write(p, "last-instant", 5);
  const auto t0 = Clock::now();
  c().KillAgent(p);
  c().KillPostgres(p);
  const std::optional<size_t> np = WaitNewPrimary(p, seconds(20), [&](size_t n) {
    return c().Sql(n, "INSERT INTO t(tag) VALUES ('first-after-crash')").has_value();
  });
  ASSERT_TRUE(np) << "no new primary";
  const auto outage = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  std::cerr << "host crash: " << c().node(*np).name << " accepted a write " << outage
            << " ms after the crash; last-instant rows kept: " << Count(*np, "last-instant") << "/"
            << last_instant << "\n";
  EXPECT_LT(outage, 10000);
  EXPECT_EQ(Count(*np, "before-crash"), 50);

  ASSERT_TRUE(c().StartAgent(p));
  size_t np2 = WaitHealthy(seconds(60));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(np2, *np);
  auto rec = c().SqlValue(p, "SELECT pg_is_in_recovery()");
  EXPECT_TRUE(rec && *rec == "t");
  EXPECT_EQ(Write(np2, "after-rejoin", 3), 3);
  ASSERT_TRUE(WaitReplicated(np2, seconds(10)));
  EXPECT_EQ(Count(p, "after-rejoin"), 3);
}

// A freeze (SIGSTOP of the primary's agent and PostgreSQL) longer than ttl: the others elect a
// new primary; when the old one resumes it must never accept a write again, and it ends up as
// a replica of the new primary. Rows acknowledged by the new primary are never lost.
TEST_F(AgentCluster, FrozenPrimaryNeverAcceptsWritesAfterResuming) {
  size_t p = WaitHealthy(seconds(30));
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(Write(p, "before-freeze", 20), 20);
  ASSERT_TRUE(WaitReplicated(p, seconds(10)));
  // The whole host: the agent, its watchdog (which would otherwise fence the frozen PostgreSQL
  // and spare the agent's own check on resume) and PostgreSQL.
  const launch::FrozenHost host = launch::FreezeHost(c().node(p).agent.pid(), c().node(p).data_dir);
  c().node(p).frozen = true;
  const std::optional<size_t> np = WaitNewPrimary(p, seconds(20));
  const bool elected = np.has_value();
  int acked_by_new = 0;
  if (elected) acked_by_new = Write(*np, "new-primary", 20);
  // Resume: the agent first (as after a VM pause both resume; the agent's fence check runs
  // before anything else), then PostgreSQL.
  launch::ThawHost(host);
  c().node(p).frozen = false;
  ASSERT_TRUE(elected) << "no new primary while the old one was frozen";
  ASSERT_EQ(acked_by_new, 20);
  std::this_thread::sleep_for(milliseconds(300));
  // A writer against the old primary's port, for 3 s after it resumed: every write must fail.
  int old_writes = 0;
  const auto until = Clock::now() + seconds(3);
  while (Clock::now() < until) {
    auto w =
        c().Sql(p, "INSERT INTO t(tag) VALUES ('old-primary-after-resume')", milliseconds(500));
    if (w) ++old_writes;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(old_writes, 0) << "the resumed old primary accepted writes";
  size_t np2 = WaitHealthy(seconds(60));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(np2, *np);
  EXPECT_EQ(Count(np2, "new-primary"), 20);
  EXPECT_EQ(Count(np2, "before-freeze"), 20);
  EXPECT_EQ(Count(np2, "old-primary-after-resume"), 0);
}

// A process that exists and is not a zombie (an exited postmaster may wait to be reaped).
bool Running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

// Only the agent freezes (a stall, a stuck syscall) while PostgreSQL keeps running as primary:
// the watchdog process fences PostgreSQL before the lease can expire, so the old primary stops
// accepting writes before a replica is promoted (docs/watchdog.md). Without it this is split
// brain: the old primary would accept writes until the agent resumes.
TEST_F(AgentCluster, WatchdogFencesPostgresWhenOnlyTheAgentFreezes) {
  size_t p = WaitHealthy(seconds(30));
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(Write(p, "before-agent-freeze", 10), 10);
  ASSERT_TRUE(WaitReplicated(p, seconds(10)));
  const std::optional<pid_t> old_postmaster = c().PostmasterPid(p);
  ASSERT_TRUE(old_postmaster.has_value());
  c().FreezeAgent(p);
  c().node(p).frozen = true;
  const std::optional<size_t> np = WaitNewPrimary(p, seconds(20));
  const bool elected = np.has_value();
  // At the promotion the old postmaster is already gone, and nothing writes on its port.
  const bool old_alive = Running(*old_postmaster);
  auto w = c().Sql(p, "INSERT INTO t(tag) VALUES ('old-primary-agent-frozen')", milliseconds(500));
  c().ThawAgent(p);
  c().node(p).frozen = false;
  ASSERT_TRUE(elected) << "no new primary while the old primary's agent was frozen";
  EXPECT_FALSE(old_alive) << "the old postmaster still ran when the new primary was there";
  EXPECT_FALSE(w.has_value()) << "the old primary accepted a write after the promotion";
  size_t np2 = WaitHealthy(seconds(60));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(Count(np2, "before-agent-freeze"), 10);
  EXPECT_EQ(Count(np2, "old-primary-agent-frozen"), 0);
}

// etcd goes away: the primary cannot renew its lease and stops accepting writes within ttl;
// when etcd returns the cluster recovers to one primary and two streaming replicas.
TEST_F(AgentCluster, LossOfEtcdDemotesThePrimaryAndTheClusterRecovers) {
  size_t p = WaitHealthy(seconds(30));
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(Write(p, "before-etcd-loss", 10), 10);
  ASSERT_TRUE(WaitReplicated(p, seconds(10)));
  const auto t0 = Clock::now();
  c().etcd().Kill();
  // Writes must stop within ttl (2 s) of the last renewal; allow some slack for the check.
  bool stopped = ClusterHarness::WaitFor(
      [&] {
        return !c().Sql(p, "INSERT INTO t(tag) VALUES ('during-etcd-loss')", milliseconds(300));
      },
      seconds(4));
  const auto demoted_after = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  std::cerr << "etcd loss: writes stopped " << demoted_after << " ms after etcd died\n";
  EXPECT_TRUE(stopped);
  EXPECT_LT(demoted_after, 2500);
  // Nobody accepts writes while etcd is down.
  std::this_thread::sleep_for(seconds(1));
  for (size_t i = 0; i < c().size(); ++i) {
    EXPECT_FALSE(c().Sql(i, "INSERT INTO t(tag) VALUES ('no-etcd')", milliseconds(300)))
        << c().node(i).name;
  }
  auto r = c().etcd().Start();
  ASSERT_TRUE(r) << r.error().ToString();
  size_t np = WaitHealthy(seconds(60));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(Count(np, "before-etcd-loss"), 10);
  EXPECT_EQ(Write(np, "after-etcd-returns", 3), 3);
}

// SIGTERM of the leader's agent: it stops PostgreSQL, releases the leader key and exits 0; a
// replica takes over without waiting for the lease to expire.
TEST_F(AgentCluster, GracefulStopOfTheLeaderHandsOverAtOnce) {
  size_t p = WaitHealthy(seconds(30));
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(Write(p, "before-stop", 5), 5);
  ASSERT_TRUE(WaitReplicated(p, seconds(10)));
  const auto t0 = Clock::now();
  EXPECT_EQ(c().StopAgent(p), 0);
  EXPECT_FALSE(c().PostmasterPid(p)) << "PostgreSQL still runs after the agent stopped";
  const std::optional<size_t> np = WaitNewPrimary(p, seconds(15), [&](size_t n) {
    return c().Sql(n, "INSERT INTO t(tag) VALUES ('after-stop')").has_value();
  });
  ASSERT_TRUE(np);
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  std::cerr << "graceful stop: " << c().node(*np).name << " accepted a write " << took
            << " ms after SIGTERM\n";
  EXPECT_EQ(Count(*np, "before-stop"), 5);
  ASSERT_TRUE(c().StartAgent(p));
  WaitHealthy(seconds(60));
}

// A configuration the loader rejects: the loader's message, exit status 2, nothing started.
TEST(AgentCommand, BadConfigExitsTwoAndStartsNothing) {
  TempDir dir("agent-badcfg");
  const std::string path = dir.Sub("bad.yml");
  {
    std::ofstream out(path);
    out << "scope: s\nname: n1\nrestapi: {listen: 127.0.0.1:notaport}\n";
  }
  Command cmd;
  cmd.argv = {PGWARDEN_BINARY, "agent", "-c", path};
  auto r = pgwarden::Run(cmd, std::chrono::seconds(10));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 2) << r->output;
  EXPECT_NE(r->output.find("restapi.listen"), std::string::npos) << r->output;
  EXPECT_NE(r->output.find("bad.yml"), std::string::npos) << r->output;
}

}  // namespace
}  // namespace pgwarden::testing
