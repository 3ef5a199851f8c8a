#include "cli/cluster_table.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cluster/codec.h"

namespace pgwarden::cli {
namespace {

core::Member MakeMember(const std::string& name, core::MemberRole role, int port, Lsn pos) {
  core::Member m;
  m.name = MemberName(name);
  m.role = role;
  m.state = core::PgState::kRunning;
  m.conn_url = "postgres://replicator@127.0.0.1:" + std::to_string(port) + "/postgres";
  m.api_url = "http://127.0.0.1:80" + std::to_string(port % 100) + "/patroni";
  m.timeline = Timeline(2);
  if (role == core::MemberRole::kPrimary) {
    m.current_lsn = pos;
  } else {
    m.received_lsn = pos;
    m.replayed_lsn = pos;
  }
  return m;
}

core::ClusterView ThreeMembers() {
  core::ClusterView view;
  view.initialize = "7312345678901234567";
  view.leader = core::LeaderKey{MemberName("n1"), 7, 10, 10};
  view.status = core::LeaderStatus{Lsn(64ull << 20)};
  view.members[MemberName("n1")] =
      MakeMember("n1", core::MemberRole::kPrimary, 5432, Lsn(64ull << 20));
  view.members[MemberName("n2")] =
      MakeMember("n2", core::MemberRole::kReplica, 5433, Lsn(64ull << 20));
  view.members[MemberName("n3")] =
      MakeMember("n3", core::MemberRole::kReplica, 5434, Lsn(32ull << 20));
  view.sync = core::SyncState{MemberName("n1"), {MemberName("n2")}, 3};
  return view;
}

TEST(ClusterTable, RolesStatesAndLagAgainstTheLeaderPosition) {
  auto table = BuildClusterTable("demo", ThreeMembers());
  ASSERT_EQ(table.rows.size(), 3u);
  EXPECT_EQ(table.rows[0].role, "Leader");
  EXPECT_EQ(table.rows[0].state, "running");
  EXPECT_FALSE(table.rows[0].lag_bytes.has_value());
  EXPECT_EQ(table.rows[1].role, "Sync Standby");
  EXPECT_EQ(table.rows[1].state, "streaming");
  EXPECT_EQ(table.rows[1].lag_bytes, 0u);
  EXPECT_EQ(table.rows[2].role, "Replica");
  EXPECT_EQ(table.rows[2].lag_bytes, 32ull << 20);
  EXPECT_EQ(table.rows[2].host, "127.0.0.1:5434");
  EXPECT_EQ(table.rows[0].timeline, 2u);
}

// Quorum mode (docs/sync-replication.md): the members of a `sync` set with quorum > 0 are
// "Quorum Standby" (Patroni 4's word); quorum 0 is the plain rule: "Sync Standby".
TEST(ClusterTable, QuorumSetMembersAreQuorumStandbys) {
  auto view = ThreeMembers();
  view.sync->sync_standby = {MemberName("n2"), MemberName("n3")};
  view.sync->quorum = 1;
  auto table = BuildClusterTable("demo", view);
  EXPECT_EQ(table.rows[1].role, "Quorum Standby");
  EXPECT_EQ(table.rows[2].role, "Quorum Standby");
  view.sync->quorum = 0;
  EXPECT_EQ(BuildClusterTable("demo", view).rows[2].role, "Sync Standby");
}

TEST(ClusterTable, StoppedMemberAndPendingSwitchoverAreShown) {
  auto view = ThreeMembers();
  view.members[MemberName("n3")].state = core::PgState::kStopped;
  view.failover = core::FailoverRequest{MemberName("n1"), MemberName("n2"), std::nullopt, 5};
  auto table = BuildClusterTable("demo", view);
  EXPECT_EQ(table.rows[2].state, "stopped");
  EXPECT_EQ(table.pending, "Switchover from n1 to n2");
  std::string text = RenderTable(table);
  EXPECT_NE(text.find("Cluster: demo (7312345678901234567)"), std::string::npos) << text;
  EXPECT_NE(text.find("| n2     | 127.0.0.1:5433 | Sync Standby | streaming |  2 |         0 |"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Switchover from n1 to n2"), std::string::npos);
}

TEST(ClusterTable, MaintenanceModeLineUnderTheTableOnlyWhenPaused) {
  auto view = ThreeMembers();
  view.config_json = R"({"ttl": 30, "pause": true})";
  auto table = BuildClusterTable("demo", view);
  EXPECT_TRUE(table.paused);
  std::string text = RenderTable(table);
  // patronictl prints the line after the table's closing rule.
  const auto rule_end = text.rfind("+\n");
  ASSERT_NE(rule_end, std::string::npos);
  EXPECT_EQ(text.substr(rule_end + 2), " Maintenance mode: on\n") << text;
  for (const char* config : {R"({"ttl": 30})", R"({"pause": false})", R"({"pause": null})",
                             R"({"pause": "yes"})", "not json", "[]"}) {
    view.config_json = config;
    table = BuildClusterTable("demo", view);
    EXPECT_FALSE(table.paused) << config;
    EXPECT_EQ(RenderTable(table).find("Maintenance mode"), std::string::npos) << config;
  }
  view.config_json.reset();
  EXPECT_FALSE(BuildClusterTable("demo", view).paused);
}

TEST(ClusterTable, PendingRestartColumnOnlyWhenAMemberNeedsARestart) {
  auto view = ThreeMembers();
  EXPECT_EQ(RenderTable(BuildClusterTable("demo", view)).find("Pending restart"),
            std::string::npos);
  view.members[MemberName("n3")].pending_restart = true;
  auto table = BuildClusterTable("demo", view);
  EXPECT_TRUE(table.rows[2].pending_restart);
  std::string text = RenderTable(table);
  EXPECT_NE(text.find("| Lag in MB | Pending restart |"), std::string::npos) << text;
  EXPECT_NE(text.find("|        32 | *               |"), std::string::npos) << text;
  auto json = nlohmann::json::parse(RenderJson(table));
  EXPECT_EQ(json[2]["Pending restart"], "*");
  EXPECT_FALSE(json[1].contains("Pending restart"));
}

TEST(ClusterTable, JsonUsesPatronictlFieldNames) {
  auto json = nlohmann::json::parse(RenderJson(BuildClusterTable("demo", ThreeMembers())));
  ASSERT_EQ(json.size(), 3u);
  EXPECT_EQ(json[0]["Member"], "n1");
  EXPECT_EQ(json[0]["Role"], "Leader");
  EXPECT_EQ(json[2]["Lag in MB"], 32.0);
  EXPECT_EQ(json[1]["Cluster"], "demo");
}

TEST(ClusterTable, LagRoundsToWholeMegabytes) {
  auto view = ThreeMembers();
  view.members[MemberName("n2")].received_lsn = Lsn((64ull << 20) - 4096);
  view.members[MemberName("n2")].replayed_lsn = Lsn((64ull << 20) - 4096);
  std::string text = RenderTable(BuildClusterTable("demo", view));
  EXPECT_NE(text.find("| streaming |  2 |         0 |"), std::string::npos) << text;
}

TEST(ClusterTable, HostFromConnUrl) {
  EXPECT_EQ(HostFromConnUrl("postgres://u:p@10.0.0.1:5432/db?sslmode=require"), "10.0.0.1:5432");
  EXPECT_EQ(HostFromConnUrl("postgresql://127.0.0.1:6000"), "127.0.0.1:6000");
  EXPECT_EQ(HostFromConnUrl("host=a port=1"), "host=a port=1");
}

// Like patronictl: a "Scheduled restart" column only while some member key carries a
// `scheduled_restart` (written by cluster::EncodeMember, read back by ScheduledRestartOfMember).
TEST(ClusterTable, ScheduledRestartColumnFromTheMemberKeys) {
  auto view = ThreeMembers();
  std::string plain = RenderTable(BuildClusterTable("demo", view));
  EXPECT_EQ(plain.find("Scheduled restart"), std::string::npos) << plain;

  const std::string value =
      cluster::EncodeMember(view.members[MemberName("n3")],
                            R"({"schedule":"2026-11-26T08:15:00+00:00","postgres_version":"15.6",)"
                            R"("postmaster_start_time":null})");
  auto decoded = cluster::DecodeMember("/service/demo/members/n3", "n3", value);
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_EQ(*decoded, view.members[MemberName("n3")]) << "the extra field changed the member";
  auto scheduled = cluster::ScheduledRestartOfMember(value);
  ASSERT_TRUE(scheduled.has_value()) << value;
  EXPECT_FALSE(cluster::ScheduledRestartOfMember(cluster::EncodeMember(*decoded)).has_value());

  std::map<MemberName, std::string> restarts = {{MemberName("n3"), *scheduled}};
  auto table = BuildClusterTable("demo", view, restarts);
  EXPECT_EQ(table.rows[2].scheduled_restart, "2026-11-26 08:15:00+00:00 if version < 15.6");
  EXPECT_TRUE(table.rows[0].scheduled_restart.empty());
  std::string text = RenderTable(table);
  EXPECT_NE(text.find("| Scheduled restart "), std::string::npos) << text;
  EXPECT_NE(text.find("| 2026-11-26 08:15:00+00:00 if version < 15.6 |"), std::string::npos)
      << text;
  auto json = nlohmann::json::parse(RenderJson(table));
  EXPECT_EQ(json[2]["Scheduled restart"], "2026-11-26 08:15:00+00:00 if version < 15.6");
  EXPECT_FALSE(json[0].contains("Scheduled restart"));
  EXPECT_EQ(ScheduledRestartText("not json"), "");
}

TEST(ClusterTable, EmptyClusterRendersHeaderOnly) {
  core::ClusterView view;
  auto text = RenderTable(BuildClusterTable("empty", view));
  EXPECT_NE(text.find("Member"), std::string::npos);
}

}  // namespace
}  // namespace pgwarden::cli
