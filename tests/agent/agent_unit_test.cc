// The agent's pure pieces: settings derived from the node config, conn_url parsing, slot
// names, and the parsing of a peer's /patroni answer.
#include <gtest/gtest.h>

#include "agent/agent_internal.h"
#include "agent/settings.h"

namespace pgwarden::agent {
namespace {

config::Config Node() {
  auto loaded = config::LoadConfigString(R"(
scope: s
name: node-1
restapi: {listen: 127.0.0.1:8008}
etcd3: {hosts: [127.0.0.1:2379]}
bootstrap:
  dcs:
    ttl: 2s
    postgresql:
      parameters: {wal_level: replica, max_connections: 50}
  pg_hba:
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - local all all trust
    - bogus
postgresql:
  listen: 127.0.0.1:5433
  data_dir: /tmp/x/data
  authentication:
    superuser: {username: postgres, password: pw}
    replication: {username: replicator, password: rpw}
  parameters: {max_connections: 70, port: 9999, unix_socket_directories: "/tmp/s1, /tmp/s2", fsync: "off"}
)",
                                         "node.yml");
  EXPECT_TRUE(loaded) << (loaded ? "" : loaded.error().message);
  return loaded ? loaded->config : config::Config{};
}

TEST(AgentSettings, HaConfigFitsTheCoreTimingRule) {
  config::Config node = Node();
  std::string adjusted;
  core::HaConfig ha = MakeHaConfig(node, node.bootstrap.dcs, &adjusted);
  EXPECT_EQ(ha.Check(), "");
  EXPECT_EQ(ha.ttl, seconds(2));
  if (!adjusted.empty()) {
    EXPECT_LE(ha.loop_wait + ha.retry_timeout + ha.fence_margin, ha.ttl) << adjusted;
  }
  EXPECT_EQ(ha.name, MemberName("node-1"));
  EXPECT_EQ(ha.api_url, "http://127.0.0.1:8008/patroni");
  EXPECT_EQ(ha.conn_url, "postgres://127.0.0.1:5433/postgres");
}

// maximum_lag_on_syncnode reaches the core, measured on the position synchronous_commit makes
// commits wait for (Patroni's choice of pg_stat_replication column).
TEST(AgentSettings, SyncNodeLagAndItsPositionFromSynchronousCommit) {
  config::Config node = Node();
  config::DynamicConfig dynamic = node.bootstrap.dcs;
  EXPECT_EQ(MakeHaConfig(node, dynamic, nullptr).maximum_lag_on_syncnode, -1);
  EXPECT_EQ(MakeHaConfig(node, dynamic, nullptr).sync_lag_position, core::SyncLagPosition::kFlush);
  dynamic.maximum_lag_on_syncnode = 16 << 20;
  dynamic.postgresql.parameters["synchronous_commit"] = "remote_apply";
  core::HaConfig ha = MakeHaConfig(node, dynamic, nullptr);
  EXPECT_EQ(ha.maximum_lag_on_syncnode, 16 << 20);
  EXPECT_EQ(ha.sync_lag_position, core::SyncLagPosition::kReplay);
  node.postgresql.parameters["synchronous_commit"] = "'Remote_Write'";  // the local one wins
  EXPECT_EQ(MakeHaConfig(node, dynamic, nullptr).sync_lag_position, core::SyncLagPosition::kWrite);
  node.postgresql.parameters["synchronous_commit"] = "on";
  EXPECT_EQ(MakeHaConfig(node, dynamic, nullptr).sync_lag_position, core::SyncLagPosition::kFlush);
}

TEST(AgentSettings, LocalParametersWinAndListenSettingsStayLocal) {
  config::Config node = Node();
  auto p = ManagedParameters(node, node.bootstrap.dcs);
  EXPECT_EQ(p["max_connections"], "70");
  EXPECT_EQ(p["wal_level"], "replica");
  EXPECT_EQ(p.count("port"), 0u);
  EXPECT_EQ(p.count("unix_socket_directories"), 0u);
  auto o = MakePostgresOptions(node);
  EXPECT_EQ(o.socket_dir, "/tmp/s1");
  EXPECT_EQ(o.port, 5433);
  EXPECT_FALSE(o.sync_to_disk);
  EXPECT_EQ(o.log_file, "/tmp/x/data.log");
}

TEST(AgentSettings, HbaLinesParsedAndBadOnesReported) {
  config::Config node = Node();
  std::vector<std::string> problems;
  auto hba = HbaEntries(node, node.bootstrap.dcs, &problems);
  ASSERT_EQ(hba.size(), 2u);
  EXPECT_EQ(hba[0].address, "127.0.0.1/32");
  EXPECT_EQ(hba[1].type, "local");
  EXPECT_EQ(hba[1].method, "trust");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("bogus"), std::string::npos);
}

TEST(AgentSettings, ConnUrlHostPort) {
  EXPECT_EQ(HostPortOfConnUrl("postgres://127.0.0.1:5433/postgres"),
            std::make_pair(std::string("127.0.0.1"), 5433));
  EXPECT_EQ(HostPortOfConnUrl("postgres://u@[::1]:6000/db"),
            std::make_pair(std::string("::1"), 6000));
  EXPECT_EQ(HostPortOfConnUrl("postgres://h/db"), std::make_pair(std::string("h"), 5432));
  EXPECT_FALSE(HostPortOfConnUrl("nonsense"));
  EXPECT_FALSE(HostPortOfConnUrl("postgres://h:99999/db"));
}

TEST(AgentSettings, SlotNamesAreSanitized) {
  EXPECT_EQ(SlotNameFor(MemberName("Node-1.a")), "node_1_a");
}

TEST(PeerStatus, ParsesPatroniReplicaAndPrimary) {
  auto r = ParsePeerStatus(R"({"state":"running","role":"replica","timeline":3,
    "xlog":{"received_location":100,"replayed_location":90},"tags":{"nofailover":true}})");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->reachable);
  EXPECT_TRUE(r->running);
  EXPECT_EQ(r->role, core::PgRole::kReplica);
  EXPECT_EQ(r->timeline, Timeline(3));
  EXPECT_EQ(r->received_lsn, Lsn(100));
  EXPECT_EQ(r->replayed_lsn, Lsn(90));
  EXPECT_TRUE(r->tags.nofailover);
  auto p = ParsePeerStatus(R"({"state":"running","role":"primary","xlog":{"location":500}})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->role, core::PgRole::kPrimary);
  EXPECT_EQ(p->received_lsn, Lsn(500));
}

TEST(PeerStatus, RejectsGarbage) {
  EXPECT_FALSE(ParsePeerStatus("not json"));
  EXPECT_FALSE(ParsePeerStatus("[1,2]"));
  auto odd = ParsePeerStatus(R"({"state":5,"xlog":{"location":"x"}})");
  EXPECT_FALSE(odd && odd->running);
}

}  // namespace
}  // namespace pgwarden::agent
