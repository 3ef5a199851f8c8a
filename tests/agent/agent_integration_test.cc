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

#include <nlohmann/json.hpp>
#include <thread>

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
    auto streaming = c().SqlValue(
        *p, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'");
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

  static ClusterHarness* cluster_;
};

ClusterHarness* AgentCluster::cluster_ = nullptr;

TEST_F(AgentCluster, BootstrapsOnePrimaryAndTwoStreamingReplicas) {
  ASSERT_NE(cluster_, nullptr);
  const size_t p = WaitHealthy(seconds(60));
  ASSERT_FALSE(HasFailure());
  // REST: /primary only on the leader, /replica on the others, /cluster lists everybody.
  for (size_t i = 0; i < c().size(); ++i) {
    EXPECT_EQ(c().Get(i, "/primary").first, i == p ? 200 : 503) << c().node(i).name;
    EXPECT_EQ(c().Get(i, "/replica").first, i == p ? 503 : 200) << c().node(i).name;
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

}  // namespace
}  // namespace pgwarden::testing
