// The read side of the Patroni-compatible API over loopback: health checks per member kind,
// ?lag / ?tag_ / ?replication_state filters, HEAD/OPTIONS, /patroni and /cluster field names,
// /history, /config, /metrics, /liveness, /readiness and routing errors.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "api/api_fixture.h"

namespace pgwarden::api::testing {
namespace {

using Json = nlohmann::json;

struct HealthCase {
  const char* path;
  int primary, replica, sync, noloadbalance, stopped, quorum;
};

// Expected statuses per member kind (Patroni's do_GET). The quorum column: a member of a quorum
// set (sync key with quorum > 0); /sync keeps answering 200 for it (docs/rest-api.md).
const HealthCase kHealth[] = {
    {"/", 200, 503, 503, 503, 503, 503},
    {"/primary", 200, 503, 503, 503, 503, 503},
    {"/master", 200, 503, 503, 503, 503, 503},
    {"/read-write", 200, 503, 503, 503, 503, 503},
    {"/leader", 200, 503, 503, 503, 503, 503},
    {"/standby-leader", 503, 503, 503, 503, 503, 503},
    {"/replica", 503, 200, 200, 503, 503, 200},
    {"/read-only", 200, 200, 200, 503, 503, 200},
    {"/sync", 503, 503, 200, 503, 503, 200},
    {"/synchronous", 503, 503, 200, 503, 503, 200},
    {"/async", 503, 200, 503, 503, 503, 503},
    {"/asynchronous", 503, 200, 503, 503, 503, 503},
    {"/read-only-sync", 200, 503, 200, 503, 503, 200},
    {"/health", 200, 200, 200, 200, 503, 200},
    {"/quorum", 503, 503, 503, 503, 503, 200},
    {"/read-only-quorum", 200, 503, 503, 503, 503, 200},
};

class ApiReadTest : public ApiTest {
 protected:
  void ExpectStatuses(const ApiSnapshot& snapshot, int HealthCase::*column, const char* kind) {
    Publish(snapshot);
    for (const auto& c : kHealth) {
      HttpResponse res = Get(c.path);
      EXPECT_EQ(res.status, c.*column) << kind << " GET " << c.path;
      // Every health endpoint answers with the /patroni document.
      EXPECT_EQ(res.content_type, "application/json") << c.path;
      Json body = Json::parse(res.body, nullptr, false);
      ASSERT_TRUE(body.is_object()) << c.path << ": " << res.body;
      EXPECT_EQ(body["patroni"]["name"], snapshot.self.name) << c.path;
      EXPECT_EQ(HeadStatus(c.path), c.*column) << kind << " HEAD " << c.path;
      EXPECT_EQ(OptionsStatus(c.path), c.*column) << kind << " OPTIONS " << c.path;
    }
  }
};

TEST_F(ApiReadTest, HealthEndpointsOnAPrimary) {
  ExpectStatuses(PrimarySnapshot(), &HealthCase::primary, "primary");
}
TEST_F(ApiReadTest, HealthEndpointsOnAReplica) {
  ExpectStatuses(ReplicaSnapshot(), &HealthCase::replica, "replica");
}
TEST_F(ApiReadTest, HealthEndpointsOnASyncStandby) {
  ExpectStatuses(SyncReplicaSnapshot(), &HealthCase::sync, "sync");
}
TEST_F(ApiReadTest, HealthEndpointsOnAQuorumStandby) {
  ExpectStatuses(QuorumReplicaSnapshot(), &HealthCase::quorum, "quorum");
}
TEST_F(ApiReadTest, QuorumStandbyFilteredLikeAReplica) {
  ApiSnapshot s = QuorumReplicaSnapshot();
  s.self.tags.noloadbalance = true;
  Publish(s);
  EXPECT_EQ(Get("/quorum").status, 503);
  EXPECT_EQ(Get("/read-only-quorum").status, 503);
  s = QuorumReplicaSnapshot();
  Publish(s);
  EXPECT_EQ(Get("/quorum?lag=1kB").status, 503);  // 4 kB behind
  EXPECT_EQ(Get("/quorum?lag=1MB").status, 200);
  EXPECT_EQ(Get("/quorum?tag_dc=west").status, 503);
  s.cluster->synchronous_mode = false;  // key left over from quorum mode: not a standby of it
  Publish(s);
  EXPECT_EQ(Get("/quorum").status, 503);
  s = QuorumReplicaSnapshot();
  s.cluster->sync_standbys = {"n3"};  // quorum set without us
  Publish(s);
  EXPECT_EQ(Get("/quorum").status, 503);
  EXPECT_EQ(Get("/read-only-quorum").status, 503);
  s = QuorumReplicaSnapshot();
  s.cluster.reset();  // no DCS view
  Publish(s);
  EXPECT_EQ(Get("/quorum").status, 503);
}
TEST_F(ApiReadTest, QuorumStandbyInPatroniClusterAndMetrics) {
  Publish(QuorumReplicaSnapshot());
  Json j = Json::parse(Get("/patroni").body);
  EXPECT_EQ(j["quorum_standby"], true);
  Json c = Json::parse(Get("/cluster").body);
  ASSERT_EQ(c["members"].size(), 3u);
  EXPECT_EQ(c["members"][0]["role"], "leader");
  EXPECT_EQ(c["members"][1]["role"], "quorum_standby");
  EXPECT_EQ(c["members"][2]["role"], "quorum_standby");
  const std::string metrics = Get("/metrics").body;
  EXPECT_NE(metrics.find("\npatroni_quorum_standby{scope=\"demo\",name=\"n2\"} 1\n"),
            std::string::npos)
      << metrics;

  // Plain synchronous mode: sync_standby, no quorum_standby.
  Publish(SyncReplicaSnapshot());
  j = Json::parse(Get("/patroni").body);
  EXPECT_FALSE(j.contains("quorum_standby"));
  c = Json::parse(Get("/cluster").body);
  EXPECT_EQ(c["members"][1]["role"], "sync_standby");
  EXPECT_NE(Get("/metrics").body.find("\npatroni_quorum_standby{scope=\"demo\",name=\"n2\"} 0\n"),
            std::string::npos);
}
TEST_F(ApiReadTest, HealthEndpointsOnANoLoadBalanceReplica) {
  ExpectStatuses(NoLoadBalanceSnapshot(), &HealthCase::noloadbalance, "noloadbalance");
}
TEST_F(ApiReadTest, HealthEndpointsWithPostgresStopped) {
  ExpectStatuses(StoppedSnapshot(), &HealthCase::stopped, "stopped");
}

TEST_F(ApiReadTest, PrimaryNeedsTheLockNotJustAReadWritePostgres) {
  ApiSnapshot s = PrimarySnapshot();
  s.self.holds_leader_lock = false;  // e.g. lost the lease, not yet demoted
  Publish(s);
  EXPECT_EQ(Get("/primary").status, 503);
  EXPECT_EQ(Get("/leader").status, 503);
  EXPECT_EQ(Get("/read-write").status, 503);
  EXPECT_EQ(Get("/health").status, 200);

  s = PrimarySnapshot();
  s.self.role = PgRole::kReplica;  // holds the lock, promotion still running
  Publish(s);
  EXPECT_EQ(Get("/primary").status, 503);
  EXPECT_EQ(Get("/leader").status, 200);
}

TEST_F(ApiReadTest, StandbyLeaderOfAStandbyCluster) {
  ApiSnapshot s = PrimarySnapshot();
  s.self.role = PgRole::kStandbyLeader;
  s.cluster->standby_cluster = true;
  Publish(s);
  EXPECT_EQ(Get("/standby-leader").status, 200);
  EXPECT_EQ(Get("/standby_leader").status, 200);
  EXPECT_EQ(Get("/leader").status, 200);
  EXPECT_EQ(Get("/primary").status, 503);
  EXPECT_EQ(Get("/read-only").status, 200);
}

TEST_F(ApiReadTest, LagFilterComparesLeaderPositionWithReplayedPosition) {
  Publish(ReplicaSnapshot());  // 0x1000 = 4096 bytes behind
  EXPECT_EQ(Get("/replica?lag=4095").status, 503);
  EXPECT_EQ(Get("/replica?lag=4096").status, 200);
  EXPECT_EQ(Get("/replica?lag=4kB").status, 200);
  EXPECT_EQ(Get("/replica?lag=3kB").status, 503);
  EXPECT_EQ(Get("/replica?lag=10MB").status, 200);
  EXPECT_EQ(Get("/replica?lag=1GB").status, 200);
  EXPECT_EQ(Get("/async?lag=1kB").status, 503);
  EXPECT_EQ(Get("/async?lag=1MB").status, 200);
  EXPECT_EQ(Get("/read-only?lag=1kB").status, 503);
  EXPECT_EQ(HeadStatus("/replica?lag=100"), 503);

  HttpResponse bad = Get("/replica?lag=ten");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("bad lag \"ten\""), std::string::npos) << bad.body;
  EXPECT_EQ(Get("/replica?lag=10mb").status, 400);  // units are case-sensitive, as Patroni's

  // Without a known leader position nothing counts as lagging.
  ApiSnapshot s = ReplicaSnapshot();
  s.cluster->leader_lsn.reset();
  Publish(s);
  EXPECT_EQ(Get("/replica?lag=0").status, 200);
}

TEST_F(ApiReadTest, TagFiltersMustMatch) {
  Publish(ReplicaSnapshot());
  EXPECT_EQ(Get("/replica?tag_dc=east").status, 200);
  EXPECT_EQ(Get("/replica?tag_dc=west").status, 503);
  EXPECT_EQ(Get("/replica?tag_rack=r1").status, 503);  // not set on this member
  EXPECT_EQ(Get("/replica?tag_dc=east&tag_nofailover=false").status, 200);
  EXPECT_EQ(Get("/replica?tag_nofailover=true").status, 503);
  EXPECT_EQ(OptionsStatus("/replica?tag_dc=west"), 503);
  EXPECT_EQ(Get("/read-only?tag_dc=east").status, 200);

  // Leader endpoints ignore tags (as Patroni does).
  Publish(PrimarySnapshot());
  EXPECT_EQ(Get("/primary?tag_dc=west").status, 200);
  EXPECT_EQ(Get("/leader?tag_dc=west").status, 200);
}

TEST_F(ApiReadTest, ReplicationStateFilter) {
  Publish(ReplicaSnapshot());
  EXPECT_EQ(Get("/replica?replication_state=streaming").status, 200);
  EXPECT_EQ(Get("/replica?replication_state=in%20archive%20recovery").status, 503);
}

TEST_F(ApiReadTest, SyncEndpointsNeedTheDcsView) {
  ApiSnapshot s = SyncReplicaSnapshot();
  s.cluster.reset();
  Publish(s);
  EXPECT_EQ(Get("/sync").status, 503);
  EXPECT_EQ(Get("/async").status, 503);
  EXPECT_EQ(Get("/replica").status, 200);
}

TEST_F(ApiReadTest, PatroniStatusOfAPrimaryHasPatroniFieldNames) {
  Publish(PrimarySnapshot());
  HttpResponse res = Get("/patroni");
  ASSERT_EQ(res.status, 200);
  Json j = Json::parse(res.body);
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["postmaster_start_time"], "2024-08-28 19:39:26.352526+00:00");
  EXPECT_EQ(j["role"], "primary");
  EXPECT_EQ(j["server_version"], 150004);
  EXPECT_EQ(j["xlog"], Json({{"location", 0x3000000}}));
  EXPECT_EQ(j["timeline"], 3);
  ASSERT_EQ(j["replication"].size(), 1u);
  EXPECT_EQ(j["replication"][0], Json({{"usename", "replicator"},
                                       {"application_name", "n2"},
                                       {"client_addr", "10.0.0.2"},
                                       {"state", "streaming"},
                                       {"sync_state", "async"},
                                       {"sync_priority", 0}}));
  EXPECT_EQ(j["dcs_last_seen"], 1724874235);
  EXPECT_EQ(j["database_system_identifier"], "7268616322854375442");
  EXPECT_EQ(j["patroni"], Json({{"version", "0.1.0"}, {"scope", "demo"}, {"name", "n1"}}));
  EXPECT_FALSE(j.contains("cluster_unlocked"));
  EXPECT_FALSE(j.contains("pause"));
  EXPECT_FALSE(j.contains("sync_standby"));
  EXPECT_FALSE(j.contains("tags"));
  EXPECT_FALSE(j.contains("pending_restart"));
  EXPECT_FALSE(j.contains("scheduled_restart"));
}

TEST_F(ApiReadTest, PatroniStatusOfReplicasAndStoppedMembers) {
  ApiSnapshot s = SyncReplicaSnapshot();
  s.pause = true;
  s.self.pending_restart = true;
  s.self.scheduled_restart = R"({"schedule":"2026-11-26T08:15:00+00:00","role":"replica"})";
  s.self.tags.nofailover = true;
  s.self.tags.failover_priority = 2;
  Publish(s);
  Json j = Json::parse(Get("/patroni").body);
  EXPECT_EQ(j["role"], "replica");
  EXPECT_EQ(j["xlog"], Json({{"received_location", 0x3000000 - 0x800},
                             {"replayed_location", 0x3000000 - 0x1000},
                             {"replayed_timestamp", nullptr},
                             {"paused", false}}));
  EXPECT_EQ(j["replication_state"], "streaming");
  EXPECT_EQ(j["sync_standby"], true);
  EXPECT_EQ(j["pause"], true);
  EXPECT_EQ(j["pending_restart"], true);
  EXPECT_EQ(j["scheduled_restart"],
            Json({{"schedule", "2026-11-26T08:15:00+00:00"}, {"role", "replica"}}));
  EXPECT_EQ(j["tags"], Json({{"nofailover", true}, {"failover_priority", 2}, {"dc", "east"}}));
  EXPECT_FALSE(j.contains("replication"));

  ApiSnapshot stopped = StoppedSnapshot();
  stopped.cluster->leader.reset();
  Publish(stopped);
  j = Json::parse(Get("/patroni").body);
  EXPECT_EQ(j["state"], "stopped");
  EXPECT_EQ(j["role"], "replica");
  EXPECT_EQ(j["cluster_unlocked"], true);
  EXPECT_FALSE(j.contains("xlog"));
  EXPECT_FALSE(j.contains("server_version"));
  EXPECT_FALSE(j.contains("timeline"));
  EXPECT_TRUE(j.contains("dcs_last_seen"));

  ApiSnapshot no_dcs = ReplicaSnapshot();
  no_dcs.cluster.reset();
  Publish(no_dcs);
  EXPECT_EQ(Json::parse(Get("/patroni").body)["cluster_unlocked"], true);
}

TEST_F(ApiReadTest, ClusterHasPatroniShape) {
  ApiSnapshot s = SyncReplicaSnapshot();
  s.cluster->scheduled_switchover = ScheduledSwitchover{"2030-09-24T10:36:00+02:00", "n1", "n2"};
  Publish(s);
  HttpResponse res = Get("/cluster");
  ASSERT_EQ(res.status, 200);
  Json j = Json::parse(res.body);
  EXPECT_EQ(j["scope"], "demo");
  ASSERT_EQ(j["members"].size(), 3u);
  const Json& n1 = j["members"][0];
  const Json& n2 = j["members"][1];
  const Json& n3 = j["members"][2];
  EXPECT_EQ(n1, Json({{"name", "n1"},
                      {"role", "leader"},
                      {"state", "running"},
                      {"api_url", "http://10.0.0.1:8008/patroni"},
                      {"host", "10.0.0.1"},
                      {"port", 5432},
                      {"timeline", 3}}));
  EXPECT_EQ(n2["name"], "n2");
  EXPECT_EQ(n2["role"], "sync_standby");
  EXPECT_EQ(n2["state"], "streaming");
  EXPECT_EQ(n2["port"], 5433);
  EXPECT_EQ(n2["tags"], Json({{"dc", "east"}}));
  EXPECT_EQ(n2["lag"], 0x1000);
  EXPECT_EQ(n2["lsn"], "0/2FFF000");
  EXPECT_EQ(n2["receive_lag"], 0x800);
  EXPECT_EQ(n2["receive_lsn"], "0/2FFF800");
  EXPECT_EQ(n2["replay_lag"], 0x1000);
  EXPECT_EQ(n2["replay_lsn"], "0/2FFF000");
  EXPECT_EQ(n3["role"], "replica");
  EXPECT_EQ(n3["lag"], "unknown");
  EXPECT_EQ(n3["lsn"], "unknown");
  EXPECT_FALSE(n3.contains("host"));
  EXPECT_EQ(j["scheduled_switchover"],
            Json({{"at", "2030-09-24T10:36:00+02:00"}, {"from", "n1"}, {"to", "n2"}}));
  EXPECT_FALSE(j.contains("pause"));

  s.cluster.reset();
  Publish(s);
  EXPECT_EQ(Get("/cluster").status, 503);
}

TEST_F(ApiReadTest, ClusterShowsPendingAndScheduledRestartsFromTheMemberKeys) {
  ApiSnapshot s = ReplicaSnapshot();
  for (auto& m : s.cluster->members) m.pending_restart = m.name == "n3";
  for (auto& m : s.cluster->members) {
    if (m.name == "n2") m.scheduled_restart = R"({"schedule":"2026-11-26T08:15:00+00:00"})";
  }
  Publish(s);
  Json j = Json::parse(Get("/cluster").body);
  ASSERT_EQ(j["members"].size(), 3u);
  EXPECT_FALSE(j["members"][0].contains("pending_restart"));
  EXPECT_FALSE(j["members"][1].contains("pending_restart"));
  EXPECT_EQ(j["members"][2]["pending_restart"], true);
  EXPECT_EQ(j["members"][1]["scheduled_restart"],
            Json({{"schedule", "2026-11-26T08:15:00+00:00"}}));
  EXPECT_FALSE(j["members"][0].contains("scheduled_restart"));
  EXPECT_FALSE(j["members"][2].contains("scheduled_restart"));
}

TEST_F(ApiReadTest, HistoryAndConfig) {
  Publish(PrimarySnapshot());
  Json history = Json::parse(Get("/history").body);
  EXPECT_EQ(history, Json::parse(R"([[1,25623960,"no recovery target specified",
                                      "2024-01-02T03:04:05+00:00","n1"],
                                     [2,50331856,"no recovery target specified"]])"));
  HttpResponse config = Get("/config");
  EXPECT_EQ(config.status, 200);
  EXPECT_EQ(config.content_type, "application/json");
  EXPECT_EQ(Json::parse(config.body), Json({{"ttl", 30}, {"loop_wait", 10}}));

  ApiSnapshot s = PrimarySnapshot();
  s.cluster->config_json.reset();
  Publish(s);
  EXPECT_EQ(Get("/config").status, 502);
}

TEST_F(ApiReadTest, MetricsInPrometheusFormat) {
  ApiSnapshot s = SyncReplicaSnapshot();
  s.self.scope = "de\"mo";
  s.pause = true;
  Publish(s);
  HttpResponse res = Get("/metrics");
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type.rfind("text/plain", 0), 0u);
  const std::string labels = "{scope=\"de\\\"mo\",name=\"n2\"}";
  auto value = [&](const std::string& name) -> std::string {
    std::string prefix = name + labels + " ";
    size_t at = res.body.find("\n" + prefix);
    if (at == std::string::npos) return "<missing>";
    at += 1 + prefix.size();
    return res.body.substr(at, res.body.find('\n', at) - at);
  };
  EXPECT_EQ(value("patroni_primary"), "0");
  EXPECT_EQ(value("patroni_replica"), "1");
  EXPECT_EQ(value("patroni_sync_standby"), "1");
  EXPECT_EQ(value("patroni_xlog_location"), "0");
  EXPECT_EQ(value("patroni_xlog_received_location"), std::to_string(0x3000000 - 0x800));
  EXPECT_EQ(value("patroni_xlog_replayed_location"), std::to_string(0x3000000 - 0x1000));
  EXPECT_EQ(value("patroni_postgres_timeline"), "3");
  EXPECT_EQ(value("patroni_dcs_last_seen"), "1724874235");
  EXPECT_EQ(value("patroni_cluster_unlocked"), "0");
  EXPECT_EQ(value("patroni_postgres_running"), "1");
  EXPECT_EQ(value("patroni_pending_restart"), "0");
  EXPECT_EQ(value("patroni_is_paused"), "1");
  EXPECT_EQ(value("patroni_postgres_streaming"), "1");
  EXPECT_EQ(value("patroni_postgres_server_version"), "150004");
  EXPECT_EQ(value("patroni_postmaster_start_time"), "1724873966.352526");
  EXPECT_EQ(value("patroni_version"), "000100");
  EXPECT_EQ(value("patroni_postgres_state"), "5");

  // Every line is a comment (# HELP / # TYPE) or `name{labels} number`; each sample has both.
  std::istringstream lines(res.body);
  std::string line;
  int samples = 0;
  std::set<std::string> helped, typed;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
    } else if (line.rfind("# TYPE ", 0) == 0) {
      typed.insert(line.substr(7, line.find(' ', 7) - 7));
    } else {
      // name{scope="...",name="..."} value
      size_t brace = line.find('{');
      ASSERT_NE(brace, std::string::npos) << line;
      std::string name = line.substr(0, brace);
      ASSERT_FALSE(name.empty()) << line;
      for (char c : name) ASSERT_TRUE((c >= 'a' && c <= 'z') || c == '_') << line;
      ASSERT_EQ(line.compare(brace, labels.size(), labels), 0) << line;
      std::string number = line.substr(brace + labels.size());
      ASSERT_GE(number.size(), 2u) << line;
      ASSERT_EQ(number[0], ' ') << line;
      char* end = nullptr;
      std::strtod(number.c_str() + 1, &end);
      EXPECT_EQ(*end, '\0') << line;
      EXPECT_TRUE(helped.count(name)) << line;
      EXPECT_TRUE(typed.count(name)) << line;
      ++samples;
    }
  }
  EXPECT_GE(samples, 20);

  Publish(PrimarySnapshot());
  res = Get("/metrics");
  EXPECT_NE(res.body.find("\npatroni_primary{scope=\"demo\",name=\"n1\"} 1\n"), std::string::npos);
  EXPECT_NE(res.body.find("\npatroni_xlog_location{scope=\"demo\",name=\"n1\"} 50331648\n"),
            std::string::npos);
}

TEST_F(ApiReadTest, LivenessFollowsTheHaLoop) {
  ApiSnapshot s = PrimarySnapshot();
  s.ttl = std::chrono::seconds(30);
  s.last_ha_loop = clock_.SteadyNow();
  Publish(s);
  EXPECT_EQ(Get("/liveness").status, 200);
  clock_.Advance(std::chrono::seconds(29));
  EXPECT_EQ(Get("/liveness").status, 200);
  clock_.Advance(std::chrono::seconds(2));  // 31 s > ttl on a primary
  HttpResponse dead = Get("/liveness");
  EXPECT_EQ(dead.status, 503);
  EXPECT_NE(dead.body.find("HA loop last ran"), std::string::npos);
  EXPECT_EQ(HeadStatus("/liveness"), 503);

  s.self.role = PgRole::kReplica;  // replicas get 2 * ttl
  Publish(s);
  EXPECT_EQ(Get("/liveness").status, 200);
  clock_.Advance(std::chrono::seconds(30));
  EXPECT_EQ(Get("/liveness").status, 503);

  s.pause = true;  // maintenance mode: a stuck loop is fine
  Publish(s);
  EXPECT_EQ(Get("/liveness").status, 200);

  s.pause = false;
  s.last_ha_loop.reset();
  Publish(s);
  EXPECT_EQ(Get("/liveness").status, 503);
}

TEST_F(ApiReadTest, Readiness) {
  Publish(PrimarySnapshot());
  EXPECT_EQ(Get("/readiness").status, 200);

  ApiSnapshot s = ReplicaSnapshot();  // 4096 bytes behind, limit 1 MiB
  Publish(s);
  EXPECT_EQ(Get("/readiness").status, 200);
  EXPECT_EQ(Get("/readiness?lag=4095").status, 503);
  EXPECT_EQ(Get("/readiness?lag=4095&mode=write").status, 200);  // received: 2048 behind
  s.maximum_lag_on_failover = 100;
  Publish(s);
  HttpResponse lagging = Get("/readiness");
  EXPECT_EQ(lagging.status, 503);
  EXPECT_EQ(lagging.body, "Replication apply lag 4096 exceeds maximum allowable 100\n");

  Publish(StoppedSnapshot());
  EXPECT_EQ(Get("/readiness").body, "PostgreSQL is not running\n");
  s = ReplicaSnapshot();
  s.cluster.reset();
  Publish(s);
  EXPECT_EQ(Get("/readiness").body, "DCS is not accessible\n");
  s = ReplicaSnapshot();
  s.self.replication_state = "in archive recovery";
  Publish(s);
  EXPECT_EQ(Get("/readiness").status, 503);
}

TEST_F(ApiReadTest, RoutingErrors) {
  Publish(PrimarySnapshot());
  EXPECT_EQ(Get("/nope").status, 404);
  EXPECT_EQ(Get("/primary/extra").status, 404);
  EXPECT_EQ(Get("/switchover").status, 405);
  HttpResponse post = Send("POST", "/patroni", "{}");
  EXPECT_EQ(post.status, 405);
  bool allow = false;
  for (const auto& [k, v] : post.headers) {
    if (k == "Allow") allow = v == "GET, HEAD, OPTIONS";
  }
  EXPECT_TRUE(allow);
  EXPECT_EQ(Send("BREW", "/patroni", "").status, 405);
  EXPECT_EQ(Send("DELETE", "/nope", "").status, 404);
}

TEST_F(ApiReadTest, NoSnapshotYetIs503) {
  EXPECT_EQ(Get("/patroni").status, 503);
  EXPECT_EQ(Get("/primary").status, 503);
  EXPECT_EQ(OptionsStatus("/replica"), 503);
}

TEST_F(ApiReadTest, SnapshotSwapsWhileServing) {
  Publish(PrimarySnapshot());
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    bool primary = true;
    while (!stop.load()) {
      Publish(primary ? PrimarySnapshot() : ReplicaSnapshot());
      primary = !primary;
    }
  });
  for (int i = 0; i < 100; ++i) {
    HttpResponse res = Get("/primary");
    ASSERT_TRUE(res.status == 200 || res.status == 503);
    Json j = Json::parse(res.body);
    // The body and the status come from the same snapshot.
    EXPECT_EQ(res.status == 200, j["role"] == "primary");
  }
  stop = true;
  publisher.join();
}

}  // namespace
}  // namespace pgwarden::api::testing
