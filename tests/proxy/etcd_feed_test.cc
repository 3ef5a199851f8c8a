// BuildTopology (etcd cluster view -> routing snapshot) and EndpointOfConnUrl; the feed's
// threads are exercised end to end by proxy_cluster_test.
#include "proxy/etcd_feed.h"

#include <gtest/gtest.h>

namespace pgwarden::proxy {
namespace {

using core::MemberRole;
using core::PgState;

core::Member M(const std::string& name, MemberRole role, PgState state, uint16_t port,
               uint64_t received = 0) {
  core::Member m;
  m.name = MemberName(name);
  m.role = role;
  m.state = state;
  m.conn_url = "postgres://10.0.0.1:" + std::to_string(port) + "/postgres";
  m.received_lsn = Lsn(received);
  return m;
}

core::ClusterView View() {
  core::ClusterView v;
  v.leader = core::LeaderKey{MemberName("n1"), 7, 10, 10};
  v.members[MemberName("n1")] = M("n1", MemberRole::kPrimary, PgState::kRunning, 5001);
  v.members[MemberName("n2")] = M("n2", MemberRole::kReplica, PgState::kRunning, 5002, 900);
  v.members[MemberName("n3")] = M("n3", MemberRole::kReplica, PgState::kRunning, 5003, 1000);
  v.status = core::LeaderStatus{Lsn(1000)};
  return v;
}

std::vector<std::string> Names(const std::vector<Backend>& v) {
  std::vector<std::string> out;
  for (const Backend& b : v) out.push_back(b.name.str());
  return out;
}

TEST(BuildTopology, PrimaryOnlyWhenTheLeaderRunsAsPrimary) {
  auto v = View();
  Topology t = BuildTopology(v, 3);
  ASSERT_TRUE(t.primary);
  EXPECT_EQ(t.primary->name.str(), "n1");
  EXPECT_EQ(t.primary->endpoint, (Endpoint{"10.0.0.1", 5001}));
  EXPECT_EQ(t.generation, 3u);

  auto starting = v;
  starting.members[MemberName("n1")].state = PgState::kStarting;
  EXPECT_FALSE(BuildTopology(starting, 1).primary);
  auto demoted = v;
  demoted.members[MemberName("n1")].role = MemberRole::kDemoted;
  EXPECT_FALSE(BuildTopology(demoted, 1).primary);
  auto still_replica = v;  // leader key taken, promotion not done yet
  still_replica.members[MemberName("n1")].role = MemberRole::kReplica;
  Topology sr = BuildTopology(still_replica, 1);
  EXPECT_FALSE(sr.primary);
  EXPECT_EQ(Names(sr.async_replicas), (std::vector<std::string>{"n2", "n3"}))
      << "the leader is never a replica backend";
  auto no_leader = v;
  no_leader.leader.reset();
  Topology nl = BuildTopology(no_leader, 1);
  EXPECT_FALSE(nl.primary) << "a member saying primary without the leader key is not used";
  auto no_member_key = v;
  no_member_key.members.erase(MemberName("n1"));
  EXPECT_FALSE(BuildTopology(no_member_key, 1).primary);
  auto bad_url = v;
  bad_url.members[MemberName("n1")].conn_url = "garbage";
  EXPECT_FALSE(BuildTopology(bad_url, 1).primary);
}

TEST(BuildTopology, AStoppingLeaderIsNotRoutable) {
  // The agent publishes state "stopping" before a planned switchover stops PostgreSQL: the
  // proxy holds new primary-port clients from that moment on, with or without a switchover
  // request in etcd (the request-based hold is the fallback for agents that do not publish it).
  auto v = View();
  v.members[MemberName("n1")].state = PgState::kStopping;
  for (bool hold_for_switchover : {false, true}) {
    Topology t = BuildTopology(v, 1, hold_for_switchover);
    EXPECT_FALSE(t.primary);
    EXPECT_EQ(Names(t.async_replicas), (std::vector<std::string>{"n2", "n3"}));
  }
  // A stopping replica takes no new clients either.
  auto r = View();
  r.members[MemberName("n2")].state = PgState::kStopping;
  EXPECT_EQ(Names(BuildTopology(r, 1).async_replicas), (std::vector<std::string>{"n3"}));
}

TEST(BuildTopology, SyncAsyncLagAndTags) {
  auto v = View();
  v.sync = core::SyncState{MemberName("n1"), {MemberName("n3"), MemberName("n1")}, 5};
  v.members[MemberName("n2")].tags.noloadbalance = true;
  v.members[MemberName("n4")] = M("n4", MemberRole::kReplica, PgState::kStopped, 5004);
  Topology t = BuildTopology(v, 1);
  EXPECT_EQ(Names(t.sync_replicas), (std::vector<std::string>{"n3"}));
  EXPECT_EQ(Names(t.async_replicas), (std::vector<std::string>{"n2"})) << "stopped n4 left out";
  EXPECT_EQ(t.async_replicas[0].lag_bytes, 100u);
  EXPECT_TRUE(t.async_replicas[0].noloadbalance);
  EXPECT_EQ(t.sync_replicas[0].lag_bytes, 0u);
  // A sync standby that is not running is no backend at all.
  v.members[MemberName("n3")].state = PgState::kCrashed;
  EXPECT_TRUE(BuildTopology(v, 1).sync_replicas.empty());
}

TEST(BuildTopology, PendingSwitchoverHidesThePrimaryWhenAsked) {
  auto v = View();
  v.failover = core::FailoverRequest{MemberName("n1"), std::nullopt, std::nullopt, 9};
  EXPECT_TRUE(SwitchoverPending(v));
  EXPECT_TRUE(BuildTopology(v, 1, false).primary);
  Topology held = BuildTopology(v, 1, true);
  EXPECT_FALSE(held.primary);
  EXPECT_EQ(Names(held.async_replicas), (std::vector<std::string>{"n2", "n3"}));
  v.failover = core::FailoverRequest{std::nullopt, MemberName("n2"), std::nullopt, 9};
  EXPECT_TRUE(SwitchoverPending(v)) << "failover to a candidate";
  v.failover = core::FailoverRequest{std::nullopt, MemberName("n1"), std::nullopt, 9};
  EXPECT_FALSE(SwitchoverPending(v)) << "the leader is the candidate: nothing happens";
  v.failover = core::FailoverRequest{MemberName("n2"), std::nullopt, std::nullopt, 9};
  EXPECT_FALSE(SwitchoverPending(v)) << "names another leader: stale";
  v.failover = core::FailoverRequest{MemberName("n1"), std::nullopt, SystemTime{}, 9};
  EXPECT_FALSE(SwitchoverPending(v)) << "scheduled: not now";
  EXPECT_TRUE(BuildTopology(v, 1, true).primary);
}

TEST(EndpointOfConnUrl, Forms) {
  EXPECT_EQ(EndpointOfConnUrl("postgres://u:p@h1:5433/db"), (Endpoint{"h1", 5433}));
  EXPECT_EQ(EndpointOfConnUrl("postgresql://[::1]:6000/db?x=1"), (Endpoint{"::1", 6000}));
  EXPECT_EQ(EndpointOfConnUrl("postgres://127.0.0.1:5432"), (Endpoint{"127.0.0.1", 5432}));
  EXPECT_FALSE(EndpointOfConnUrl("postgres://h1/db"));  // no port: not guessed
  EXPECT_FALSE(EndpointOfConnUrl("postgres://h1:0/db"));
  EXPECT_FALSE(EndpointOfConnUrl("postgres://h1:99999/db"));
  EXPECT_FALSE(EndpointOfConnUrl("h1:5432"));
  EXPECT_FALSE(EndpointOfConnUrl(""));
}

}  // namespace
}  // namespace pgwarden::proxy
