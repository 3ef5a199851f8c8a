// The operator interface end to end: three real `pgwarden agent` processes with PostgreSQL 15
// over one real etcd on loopback, driven through their REST APIs as an operator (or
// `pgwarden edit-config` / `restart` / `reinit`) would:
//   - PATCH /config synchronous_mode on and off: the `sync` key and synchronous_standby_names
//     follow, and the primary's postmaster is the same process throughout (no restart);
//   - PATCH /config postgresql.parameters: reloaded everywhere; a restart-only one shows as
//     pending_restart and POST /restart {"restart_pending": true} clears it;
//   - POST /reload and SIGHUP: a parameter added to the node's YAML file is applied live; a
//     broken file is refused (400) and changes nothing;
//   - PATCH /config ttl: the leader key moves to a lease with the new ttl (checked at etcd), the
//     old lease is revoked, and nobody fails over;
//   - POST /restart on the leader (new postmaster, same leader throughout, no history entry) and
//     on a replica; a scheduled POST /restart runs at its time, or is cancelled (DELETE
//     /restart), or is dropped when its conditions no longer hold; POST /reinitialize on a replica
//     (re-cloned, streams again, has the rows);
//   - a switchover publishes the old leader's member state "stopping" before it stops;
//   - maintenance mode (`pgwarden pause` / `resume`): while paused, the primary's agent killed
//     (SIGKILL, PostgreSQL left running) lets the leader key expire and nobody takes it; after
//     the resume a replica is elected.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "api/http_client.h"
#include "api/restart_schedule.h"
#include "common/process.h"
#include "dcs/etcd3/etcd_dcs.h"
#include "support/cluster_harness.h"

namespace pgwarden::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kPrefix = "/service/itest/";

class OperationsCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.pgwarden_binary = PGWARDEN_BINARY;
    cluster_ = new ClusterHarness(o);
    auto r = cluster_->Start();
    ASSERT_TRUE(r) << r.error().ToString();
    dcs::EtcdOptions eo;
    eo.endpoints = {cluster_->etcd().endpoint()};
    auto etcd = dcs::EtcdDcs::Create(eo);
    ASSERT_TRUE(etcd);
    etcd_ = etcd->release();
  }
  static void TearDownTestSuite() {
    // PGWARDEN_OPS_LOGS=1: every agent's log, to see what the agents did.
    if (std::getenv("PGWARDEN_OPS_LOGS") && cluster_) std::cerr << cluster_->AllLogs(400000);
    delete etcd_;
    etcd_ = nullptr;
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(cluster_ && etcd_);
    // Two streaming rows alone could be a pg_basebackup's WAL stream: each replica must also
    // say it is a running replica.
    ASSERT_TRUE(ClusterHarness::WaitFor(
        [&] {
          auto p = c().Primary();
          if (!p || !Streaming(*p, 2)) return false;
          for (size_t r : Replicas(*p)) {
            if (c().Get(r, "/replica").first != 200) return false;
          }
          return true;
        },
        seconds(60)))
        << "no primary with two streaming replicas";
  }
  void TearDown() override {
    if (HasFailure() && cluster_) std::cerr << cluster_->AllLogs() << "\n";
  }
  ClusterHarness& c() { return *cluster_; }
  dcs::Dcs& etcd() { return *etcd_; }
  // `pgwarden <args...> -c <config_path>`: its exit status and output.
  static ProcessResult Cli(std::vector<std::string> args, const std::string& config_path) {
    Command cmd;
    cmd.argv = {PGWARDEN_BINARY};
    cmd.argv.insert(cmd.argv.end(), args.begin(), args.end());
    cmd.argv.insert(cmd.argv.end(), {"-c", config_path});
    auto out = pgwarden::Run(cmd, seconds(60));
    EXPECT_TRUE(out) << out.error().ToString();
    return out ? *out : ProcessResult{};
  }

  std::pair<int, std::string> Call(size_t i, const std::string& method, const std::string& path,
                                   const std::string& body) {
    api::HttpClientRequest req;
    req.method = method;
    req.url = "http://127.0.0.1:" + std::to_string(c().node(i).api_port) + path;
    req.body = body;
    req.timeout = seconds(60);
    auto r = api::HttpCall(req);
    if (!r) return {0, r.error().ToString()};
    return {r->status, r->body};
  }
  bool Streaming(size_t primary, int n) {
    auto s =
        c().SqlValue(primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'");
    return s && *s == std::to_string(n);
  }
  std::optional<dcs::KeyValue> Key(const std::string& name) {
    auto r = etcd().Get(kPrefix + name);
    if (!r || r->kvs.empty()) return std::nullopt;
    return r->kvs.front();
  }
  std::string Value(const std::string& name) {
    auto kv = Key(name);
    return kv ? kv->value : "";
  }
  std::string SyncStandbys() {
    auto j = Json::parse(Value("sync"), nullptr, false);
    if (!j.is_object() || !j.contains("sync_standby") || !j["sync_standby"].is_string()) return "";
    return j["sync_standby"].get<std::string>();
  }
  std::string Show(size_t i, const std::string& name) {
    auto v = c().SqlValue(i, "SHOW " + name);
    return v ? *v : "<" + v.error().ToString() + ">";
  }
  std::vector<size_t> Replicas(size_t primary) {
    std::vector<size_t> out;
    for (size_t i = 0; i < c().size(); ++i) {
      if (i != primary) out.push_back(i);
    }
    return out;
  }

  static ClusterHarness* cluster_;
  static dcs::Dcs* etcd_;
};

ClusterHarness* OperationsCluster::cluster_ = nullptr;
dcs::Dcs* OperationsCluster::etcd_ = nullptr;

TEST_F(OperationsCluster, PatchConfigSynchronousModeOnAndOffWithoutARestart) {
  const size_t p = *c().Primary();
  const auto pid = c().PostmasterPid(p);
  ASSERT_TRUE(pid);
  const std::string config_before = Value("config");

  // Bad values: 400 naming the key, nothing written.
  auto bad = Call(p, "PATCH", "/config", R"({"loop_wait": "often"})");
  EXPECT_EQ(bad.first, 400) << bad.second;
  EXPECT_NE(bad.second.find("loop_wait"), std::string::npos) << bad.second;
  EXPECT_EQ(Call(p, "PATCH", "/config", "{nope").first, 400);
  EXPECT_EQ(Value("config"), config_before);

  auto on = Call(p, "PATCH", "/config", R"({"synchronous_mode": true})");
  ASSERT_EQ(on.first, 200) << on.second;
  auto answered = Json::parse(on.second, nullptr, false);
  EXPECT_EQ(answered["synchronous_mode"], true) << on.second;
  EXPECT_EQ(answered, Json::parse(Value("config")));
  std::string standby;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        standby = SyncStandbys();
        return !standby.empty() &&
               Show(p, "synchronous_standby_names").find(standby) != std::string::npos;
      },
      seconds(15)))
      << "sync key: " << Value("sync") << ", ssn: " << Show(p, "synchronous_standby_names");
  EXPECT_EQ(c().PostmasterPid(p), pid) << "PostgreSQL was restarted to switch sync mode on";

  auto off = Call(p, "PATCH", "/config", R"({"synchronous_mode": null})");
  ASSERT_EQ(off.first, 200) << off.second;
  EXPECT_FALSE(Json::parse(off.second).contains("synchronous_mode"));
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] { return SyncStandbys().empty() && Show(p, "synchronous_standby_names").empty(); },
      seconds(15)))
      << "sync key: " << Value("sync") << ", ssn: " << Show(p, "synchronous_standby_names");
  EXPECT_EQ(c().PostmasterPid(p), pid) << "PostgreSQL was restarted to switch sync mode off";
}

TEST_F(OperationsCluster, PatchConfigParametersReloadAndPendingRestart) {
  const size_t p = *c().Primary();
  const auto pid = c().PostmasterPid(p);
  auto r = Call(p, "PATCH", "/config",
                R"({"postgresql": {"parameters": {"work_mem": "7MB", "shared_buffers": "24MB"}}})");
  ASSERT_EQ(r.first, 200) << r.second;
  for (size_t i = 0; i < c().size(); ++i) {
    EXPECT_TRUE(ClusterHarness::WaitFor([&] { return Show(i, "work_mem") == "7MB"; }, seconds(10)))
        << c().node(i).name << ": work_mem " << Show(i, "work_mem");
  }
  EXPECT_EQ(c().PostmasterPid(p), pid);
  // shared_buffers needs a restart: /patroni says so, as Patroni does.
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto j = Json::parse(c().Get(p, "/patroni").second, nullptr, false);
        return j.is_object() && j.value("pending_restart", false);
      },
      seconds(10)))
      << c().Get(p, "/patroni").second;
  EXPECT_NE(Show(p, "shared_buffers"), "24MB");
}

// POST /reload and SIGHUP re-read the node's YAML file: a local parameter is applied live; a
// broken file is refused and changes nothing.
TEST_F(OperationsCluster, ReloadRereadsTheConfigFile) {
  const size_t p = *c().Primary();
  const std::vector<size_t> replicas = Replicas(p);
  auto edit = [&](size_t i, const std::string& from, const std::string& to) {
    std::ifstream in(c().node(i).config_path);
    std::stringstream text;
    text << in.rdbuf();
    std::string yaml = text.str();
    const size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << yaml;
    yaml.replace(at, from.size(), to);
    std::ofstream(c().node(i).config_path, std::ios::trunc) << yaml;
  };
  const std::string anchor = "    fsync: \"off\"\n";
  const size_t a = replicas.front(), b = replicas.back();
  const auto pid = c().PostmasterPid(a);

  edit(a, anchor, anchor + "    maintenance_work_mem: 33MB\n");
  auto r = Call(a, "POST", "/reload", "");
  EXPECT_EQ(r.first, 202) << r.second;
  EXPECT_TRUE(ClusterHarness::WaitFor([&] { return Show(a, "maintenance_work_mem") == "33MB"; },
                                      seconds(10)))
      << Show(a, "maintenance_work_mem");
  EXPECT_EQ(c().PostmasterPid(a), pid);

  edit(a, "    maintenance_work_mem: 33MB\n", "    maintenance_work_mem: [34MB\n");
  auto broken = Call(a, "POST", "/reload", "");
  EXPECT_EQ(broken.first, 400) << broken.second;
  EXPECT_NE(broken.second.find("not reloaded"), std::string::npos) << broken.second;
  edit(a, "    maintenance_work_mem: [34MB\n", "");

  // SIGHUP does the same.
  edit(b, anchor, anchor + "    maintenance_work_mem: 35MB\n");
  c().node(b).agent.Signal(SIGHUP);
  EXPECT_TRUE(ClusterHarness::WaitFor([&] { return Show(b, "maintenance_work_mem") == "35MB"; },
                                      seconds(10)))
      << Show(b, "maintenance_work_mem");
  edit(b, "    maintenance_work_mem: 35MB\n", "");
}

TEST_F(OperationsCluster, TtlChangeReachesTheLeaderLeaseWithoutAFailover) {
  const size_t p = *c().Primary();
  const std::string leader = Value("leader");
  ASSERT_EQ(leader, c().node(p).name);
  auto kv = Key("leader");
  ASSERT_TRUE(kv);
  const int64_t old_lease = kv->lease;
  auto before = etcd().LeaseTimeToLive(old_lease);
  ASSERT_TRUE(before);
  EXPECT_EQ(before->granted_ttl, seconds(2));
  const std::string history = Value("history");

  auto r = Call(p, "PATCH", "/config", R"({"ttl": 6})");
  ASSERT_EQ(r.first, 200) << r.second;
  int64_t lease = 0;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto k = Key("leader");
        if (!k || k->lease == old_lease) return false;
        auto s = etcd().LeaseTimeToLive(k->lease);
        lease = k->lease;
        return s && s->granted_ttl == seconds(6);
      },
      seconds(10)))
      << "leader key lease " << std::hex << (Key("leader") ? Key("leader")->lease : 0);
  EXPECT_EQ(Value("leader"), leader);
  auto member = Key("members/" + leader);
  ASSERT_TRUE(member);
  EXPECT_EQ(member->lease, lease) << "the member key stayed on the old lease";
  // The old lease is revoked (not left to expire).
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto s = etcd().LeaseTimeToLive(old_lease);
        return !s || s->ttl.count() < 0;
      },
      seconds(5)));
  // Back to 2 s (the other tests want fast reactions): the lease follows down as well.
  ASSERT_EQ(Call(p, "PATCH", "/config", R"({"ttl": 2})").first, 200);
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto k = Key("leader");
        auto s = k ? etcd().LeaseTimeToLive(k->lease)
                   : Result<dcs::LeaseStatus>(Fail(ErrorCode::kNotFound, "no leader"));
        return s && s->granted_ttl == seconds(2);
      },
      seconds(10)));
  EXPECT_EQ(Value("leader"), leader) << "the leadership moved during a ttl change";
  EXPECT_EQ(Value("history"), history);
  EXPECT_EQ(c().Primary(), p);
}

TEST_F(OperationsCluster, RestartOfTheLeaderKeepsTheLeadership) {
  const size_t p = *c().Primary();
  const std::string leader = c().node(p).name;
  const auto pid = c().PostmasterPid(p);
  const std::string history = Value("history");
  std::atomic<bool> stop{false};
  std::set<std::string> holders;
  std::thread watch([&] {
    while (!stop) {
      holders.insert(Value("leader"));
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  // Filters as Patroni: a role that does not match.
  auto mismatch = Call(p, "POST", "/restart", R"({"role": "replica"})");
  EXPECT_EQ(mismatch.first, 503) << mismatch.second;
  EXPECT_NE(mismatch.second.find("restart conditions are not satisfied"), std::string::npos);
  EXPECT_EQ(c().PostmasterPid(p), pid);

  auto r = Call(p, "POST", "/restart", R"({"restart_pending": true, "role": "primary"})");
  stop = true;
  watch.join();
  ASSERT_EQ(r.first, 200) << r.second;
  EXPECT_NE(r.second.find("restarted successfully"), std::string::npos) << r.second;
  EXPECT_NE(c().PostmasterPid(p), pid);
  EXPECT_EQ(holders, std::set<std::string>{leader}) << "the leader key changed hands";
  EXPECT_EQ(Value("history"), history) << "a restart added a history entry";
  EXPECT_TRUE(ClusterHarness::WaitFor([&] { return c().Primary() == p; }, seconds(10)));
  // The restart applied the pending parameter.
  EXPECT_EQ(Show(p, "shared_buffers"), "24MB");
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto j = Json::parse(c().Get(p, "/patroni").second, nullptr, false);
        return j.is_object() && !j.value("pending_restart", false);
      },
      seconds(10)));
}

TEST_F(OperationsCluster, RestartOfAReplica) {
  const size_t p = *c().Primary();
  const size_t r = Replicas(p).front();
  const auto pid = c().PostmasterPid(r);
  auto answer = Call(r, "POST", "/restart", "");
  ASSERT_EQ(answer.first, 200) << answer.second;
  EXPECT_NE(c().PostmasterPid(r), pid);
  EXPECT_TRUE(ClusterHarness::WaitFor([&] { return Streaming(p, 2); }, seconds(20)));
  EXPECT_EQ(c().Primary(), p);
}

// POST /restart with a schedule ~2 s ahead on every member: a replica restarts at its time (its
// conditions hold), one whose condition fails at that time is cleared without a restart, and the
// leader's is cancelled (DELETE /restart) and never runs. Each is shown in GET /patroni and in the
// member key while it is scheduled, and gone after.
TEST_F(OperationsCluster, ScheduledRestartRunsAtItsTimeUnlessCancelledOrUnmatched) {
  const size_t p = *c().Primary();
  const size_t r1 = Replicas(p).front();
  const size_t r2 = Replicas(p).back();
  // A restart that has just finished (the published postmaster start time may still be the one
  // before it) must not cancel a schedule made right after it (CI hit that once).
  auto now_restart = Call(r1, "POST", "/restart", "{}");
  ASSERT_EQ(now_restart.first, 200) << now_restart.second;
  const auto pid_p = c().PostmasterPid(p);
  const auto pid_r1 = c().PostmasterPid(r1);
  const auto pid_r2 = c().PostmasterPid(r2);
  ASSERT_TRUE(pid_p && pid_r1 && pid_r2);
  // Whole seconds, 2 to 3 s ahead: the agent shows it back exactly as written here.
  const std::string at = api::FormatIsoUtc(
      std::chrono::time_point_cast<seconds>(std::chrono::system_clock::now() + milliseconds(3000)));
  auto schedule = [&](size_t i, const std::string& conditions) {
    return Call(i, "POST", "/restart", R"({"schedule": ")" + at + "\"" + conditions + "}");
  };
  auto scheduled_in_api = [&](size_t i) {
    auto j = Json::parse(c().Get(i, "/patroni").second, nullptr, false);
    return j.is_object() && j.contains("scheduled_restart") ? j["scheduled_restart"] : Json();
  };
  auto scheduled_in_key = [&](size_t i) {
    auto j = Json::parse(Value("members/" + c().node(i).name), nullptr, false);
    return j.is_object() && j.contains("scheduled_restart") ? j["scheduled_restart"] : Json();
  };

  auto a1 = schedule(r1, R"(, "role": "replica")");
  ASSERT_EQ(a1.first, 202) << a1.second;
  EXPECT_EQ(a1.second, "Restart scheduled");
  auto again = schedule(r1, "");
  EXPECT_EQ(again.first, 409) << again.second;
  EXPECT_EQ(again.second, "Another restart is already scheduled");
  auto a2 = schedule(r2, R"(, "role": "primary")");
  ASSERT_EQ(a2.first, 202) << a2.second;
  auto ap = schedule(p, "");
  ASSERT_EQ(ap.first, 202) << ap.second;
  auto cancel = Call(p, "DELETE", "/restart", "");
  EXPECT_EQ(cancel.first, 200) << cancel.second;
  EXPECT_EQ(cancel.second, "scheduled restart deleted");
  cancel = Call(p, "DELETE", "/restart", "");
  EXPECT_EQ(cancel.first, 404) << cancel.second;
  EXPECT_EQ(cancel.second, "no restarts are scheduled");

  // Published while scheduled (both by the control thread's next turn).
  // The published object, once there (null after 2 s without).
  auto wait_for_object = [](const std::function<Json()>& read) {
    Json value;
    ClusterHarness::WaitFor(
        [&] {
          value = read();
          return value.is_object();
        },
        seconds(2));
    return value;
  };
  Json api_view = wait_for_object([&] { return scheduled_in_api(r1); });
  ASSERT_TRUE(api_view.is_object()) << "GET /patroni shows no scheduled_restart";
  EXPECT_EQ(api_view.value("schedule", ""), at) << api_view.dump();
  EXPECT_EQ(api_view.value("role", ""), "replica") << api_view.dump();
  EXPECT_FALSE(api_view.contains("postmaster_start_time")) << api_view.dump();
  Json key_view = wait_for_object([&] { return scheduled_in_key(r1); });
  ASSERT_TRUE(key_view.is_object()) << "the member key shows no scheduled_restart";
  EXPECT_EQ(key_view.value("schedule", ""), at) << key_view.dump();
  EXPECT_TRUE(key_view.contains("postmaster_start_time")) << key_view.dump();
  // Any member's /cluster lists it from the member key, as Patroni's does.
  Json listed = wait_for_object([&] {
    auto j = Json::parse(c().Get(p, "/cluster").second, nullptr, false);
    if (!j.is_object() || !j.contains("members")) return Json();
    for (const auto& m : j["members"]) {
      if (m.value("name", "") == c().node(r1).name && m.contains("scheduled_restart")) {
        return m["scheduled_restart"];
      }
    }
    return Json();
  });
  EXPECT_EQ(listed.value("schedule", ""), at) << listed.dump();
  EXPECT_TRUE(ClusterHarness::WaitFor([&] { return scheduled_in_api(p).is_null(); }, seconds(2)))
      << "the cancelled schedule is still shown";

  // At its time: r1 restarts, and every schedule is gone.
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto pid = c().PostmasterPid(r1);
        return pid && *pid != *pid_r1;
      },
      seconds(12)))
      << "the scheduled restart did not run\n"
      << c().AgentLog(r1);
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        for (size_t i : {p, r1, r2}) {
          if (!scheduled_in_api(i).is_null() || !scheduled_in_key(i).is_null()) return false;
        }
        return true;
      },
      seconds(5)))
      << "a schedule is still published";
  EXPECT_EQ(c().PostmasterPid(r2), pid_r2) << "r2's role condition did not hold: no restart";
  EXPECT_EQ(c().PostmasterPid(p), pid_p) << "the cancelled restart ran";
  EXPECT_NE(c().AgentLog(r2, 200000).find("not restarting, host role mismatch"), std::string::npos);
  EXPECT_EQ(c().Primary(), p);
  EXPECT_TRUE(ClusterHarness::WaitFor([&] { return Streaming(p, 2); }, seconds(20)));
}

TEST_F(OperationsCluster, ReinitializeAReplica) {
  const size_t p = *c().Primary();
  const size_t r = Replicas(p).back();
  ASSERT_TRUE(c().Sql(p, "CREATE TABLE IF NOT EXISTS reinit(id int)"));
  ASSERT_TRUE(c().Sql(p, "INSERT INTO reinit SELECT generate_series(1, 1000)"));
  auto refused = Call(p, "POST", "/reinitialize", "{}");
  EXPECT_EQ(refused.first, 503);
  EXPECT_NE(refused.second.find("I am the leader, can not reinitialize"), std::string::npos)
      << refused.second;
  const auto pid = c().PostmasterPid(r);
  auto answer = Call(r, "POST", "/reinitialize", R"({"force": true})");
  ASSERT_EQ(answer.first, 200) << answer.second;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto n = c().SqlValue(r, "SELECT count(*) FROM reinit");
        return c().PostmasterPid(r) && c().PostmasterPid(r) != pid && n && *n == "1000" &&
               Streaming(p, 2);
      },
      seconds(60)))
      << c().AgentLog(r);
  EXPECT_NE(c().AgentLog(r, 200000).find("reinitialize: wiping the data directory"),
            std::string::npos);
  EXPECT_EQ(c().Primary(), p);
}

// The CLI drives the same endpoints: `pgwarden edit-config`, `reload`, `restart` (now and
// --scheduled), `flush restart`, `list`, with the agent's config file.
TEST_F(OperationsCluster, CliEditConfigReloadRestart) {
  const size_t p = *c().Primary();
  const size_t r = Replicas(p).front();
  auto cli = [&](std::vector<std::string> args) {
    args.push_back("--force");
    return Cli(std::move(args), c().node(r).config_path);
  };
  auto edit =
      cli({"edit-config", "--pg", "work_mem=9MB", "--set", "maximum_lag_on_failover=2097152"});
  EXPECT_EQ(edit.exit_code, 0) << edit.output;
  EXPECT_NE(edit.output.find("+      \"work_mem\": \"9MB\""), std::string::npos) << edit.output;
  EXPECT_NE(edit.output.find("Configuration changed"), std::string::npos) << edit.output;
  EXPECT_TRUE(ClusterHarness::WaitFor([&] { return Show(p, "work_mem") == "9MB"; }, seconds(10)));
  auto config = Json::parse(Value("config"));
  EXPECT_EQ(config["maximum_lag_on_failover"], 2097152) << config.dump();

  // Read-only commands: show-config (the key as YAML), dsn (patronictl's connection string).
  auto read_only = [&](std::vector<std::string> args) {
    return Cli(std::move(args), c().node(r).config_path);
  };
  auto yaml = read_only({"show-config"});
  EXPECT_EQ(yaml.exit_code, 0) << yaml.output;
  EXPECT_NE(yaml.output.find("\n    work_mem: 9MB\n"), std::string::npos) << yaml.output;
  EXPECT_NE(yaml.output.find("\nmaximum_lag_on_failover: 2097152\n"), std::string::npos)
      << yaml.output;
  auto dsn = read_only({"dsn"});
  EXPECT_EQ(dsn.output, "host=127.0.0.1 port=" + std::to_string(c().node(p).pg_port) + "\n");
  auto dsn_replica = read_only({"dsn", c().node(r).name});
  EXPECT_EQ(dsn_replica.output,
            "host=127.0.0.1 port=" + std::to_string(c().node(r).pg_port) + "\n");
  auto dsn_unknown = read_only({"dsn", "nobody"});
  EXPECT_NE(dsn_unknown.exit_code, 0);
  EXPECT_NE(dsn_unknown.output.find("no member nobody"), std::string::npos) << dsn_unknown.output;

  const std::string before = Value("config");
  auto bad = cli({"edit-config", "--set", "ttl=1"});
  EXPECT_NE(bad.exit_code, 0) << bad.output;
  EXPECT_NE(bad.output.find("ttl"), std::string::npos) << bad.output;
  EXPECT_EQ(Value("config"), before);
  auto same = cli({"edit-config", "--pg", "work_mem=9MB"});
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("Not changed"), std::string::npos) << same.output;

  auto reload = cli({"reload", c().node(r).name});
  EXPECT_EQ(reload.exit_code, 0) << reload.output;
  EXPECT_NE(reload.output.find("reload scheduled"), std::string::npos) << reload.output;

  const auto pid = c().PostmasterPid(r);
  auto restart = cli({"restart", c().node(r).name});
  EXPECT_EQ(restart.exit_code, 0) << restart.output;
  EXPECT_NE(c().PostmasterPid(r), pid);
  auto unknown = cli({"restart", "nobody"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("member nobody does not exist"), std::string::npos)
      << unknown.output;

  // restart --scheduled, the list's "Scheduled restart" column, flush restart.
  auto list = [&] { return Cli({"list"}, c().node(r).config_path).output; };
  const std::string later = api::FormatIsoUtc(std::chrono::time_point_cast<seconds>(
      std::chrono::system_clock::now() + std::chrono::hours(1)));
  auto scheduled = cli({"restart", c().node(r).name, "--scheduled", later});
  EXPECT_EQ(scheduled.exit_code, 0) << scheduled.output;
  EXPECT_NE(scheduled.output.find("Success: restart scheduled on member " + c().node(r).name),
            std::string::npos)
      << scheduled.output;
  std::string shown;
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        shown = list();
        return shown.find(later.substr(0, 10) + " " + later.substr(11, 8)) != std::string::npos;
      },
      seconds(5)))
      << shown;
  // With --force (as patronictl) a second schedule replaces the first; a time without a zone is
  // local time.
  auto again = cli({"restart", c().node(r).name, "--scheduled", "2099-01-01T12:00:00"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        shown = list();
        return shown.find("| 2099-01-01 ") != std::string::npos;
      },
      seconds(5)))
      << shown;
  auto flush = cli({"flush", "restart"});
  EXPECT_EQ(flush.exit_code, 0) << flush.output;
  EXPECT_NE(flush.output.find("Success: flush scheduled restart for member " + c().node(r).name),
            std::string::npos)
      << flush.output;
  EXPECT_NE(flush.output.find("No scheduled restart for member " + c().node(p).name),
            std::string::npos)
      << flush.output;
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] { return list().find("Scheduled restart") == std::string::npos; }, seconds(5)));
  EXPECT_TRUE(ClusterHarness::WaitFor([&] { return Streaming(p, 2); }, seconds(20)));
}

TEST_F(OperationsCluster, SwitchoverPublishesStoppingFirst) {
  const size_t p = *c().Primary();
  const std::string leader = c().node(p).name;
  auto watch = etcd().WatchPrefix(kPrefix + "members/" + leader);
  std::atomic<bool> stop{false};
  std::vector<std::string> states;
  std::thread watcher([&] {
    while (!stop) {
      auto batch = watch->Next(milliseconds(200));
      if (!batch) continue;
      for (const auto& e : batch->events) {
        if (e.type != dcs::WatchEvent::Type::kPut) continue;
        auto j = Json::parse(e.kv.value, nullptr, false);
        if (j.is_object() && j.contains("state")) states.push_back(j["state"].get<std::string>());
      }
    }
  });
  auto r = Call(p, "POST", "/switchover", Json{{"leader", leader}}.dump());
  std::this_thread::sleep_for(milliseconds(500));
  stop = true;
  watch->Cancel();
  watcher.join();
  ASSERT_EQ(r.first, 200) << r.second;
  std::string seen;
  for (const auto& s : states) seen += s + " ";
  auto stopping = std::find(states.begin(), states.end(), "stopping");
  ASSERT_NE(stopping, states.end()) << "member states of " << leader << ": " << seen;
  // "stopping" came before the member was seen stopped.
  auto stopped = std::find(states.begin(), states.end(), "stopped");
  EXPECT_TRUE(stopped == states.end() || stopping < stopped) << seen;
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] { return c().Primary() && *c().Primary() != p && Streaming(*c().Primary(), 2); },
      seconds(30)));
}

// `pgwarden remove` deletes a stopped cluster's keys (and only under its own prefix); it
// refuses while a member is registered, and without --force it wants the typed confirmations.
TEST_F(OperationsCluster, CliRemoveDeletesOnlyAStoppedClustersKeys) {
  const size_t r = Replicas(*c().Primary()).front();
  // A node file for another, stopped cluster "gone" in the same etcd.
  std::ifstream in(c().node(r).config_path);
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  const size_t at = yaml.find("scope: itest");
  ASSERT_NE(at, std::string::npos) << yaml;
  yaml.replace(at, std::string("scope: itest").size(), "scope: gone");
  const std::string path = c().node(r).dir + "/gone.yml";
  std::ofstream(path) << yaml;
  for (const std::string key : {"/service/gone/config", "/service/gone/initialize",
                                "/service/gone/history", "/service/gonex/config"}) {
    ASSERT_TRUE(etcd().Put(key, "{}"));
  }
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "remove");
    return Cli(std::move(args), path);
  };
  auto count = [&](const std::string& prefix) {
    auto got = etcd().Get(prefix, true);
    return got ? got->kvs.size() : size_t{999};
  };

  // A registered member (even one whose value is not a member): refused, nothing deleted.
  ASSERT_TRUE(etcd().Put("/service/gone/members/ghost", "not json"));
  auto refused = run({"--force"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("still has registered members (ghost)"), std::string::npos)
      << refused.output;
  EXPECT_EQ(count("/service/gone/"), 4u);
  ASSERT_TRUE(etcd().Delete("/service/gone/members/ghost"));

  // No typed confirmation (stdin is empty): aborted, nothing deleted.
  auto aborted = run({});
  EXPECT_NE(aborted.exit_code, 0);
  EXPECT_NE(aborted.output.find("Aborted"), std::string::npos) << aborted.output;
  EXPECT_EQ(count("/service/gone/"), 3u);

  auto removed = run({"--force"});
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  EXPECT_NE(removed.output.find("Removed cluster gone (3 keys under /service/gone/)"),
            std::string::npos)
      << removed.output;
  EXPECT_EQ(count("/service/gone/"), 0u);
  EXPECT_EQ(count("/service/gonex/"), 1u) << "a sibling prefix must survive";
  EXPECT_FALSE(Value("config").empty()) << "the running cluster's keys must survive";

  // The running cluster itself: refused while its agents run.
  auto kept = Cli({"remove", "--force"}, c().node(r).config_path);
  EXPECT_NE(kept.exit_code, 0);
  EXPECT_NE(kept.output.find("still has registered members"), std::string::npos) << kept.output;
  EXPECT_FALSE(Value("leader").empty());
  etcd().Delete("/service/gonex/", true);
}

TEST_F(OperationsCluster, PausedClusterDoesNotFailOverUntilResumed) {
  const size_t p = *c().Primary();
  const std::string leader = c().node(p).name;
  const size_t r = Replicas(p).front();
  auto cli = [&](std::vector<std::string> args) {
    return Cli(std::move(args), c().node(r).config_path);
  };
  auto pause = cli({"pause", "--wait", "--timeout", "20"});
  ASSERT_EQ(pause.exit_code, 0) << pause.output;
  EXPECT_NE(pause.output.find("Success: cluster management is paused"), std::string::npos)
      << pause.output;
  EXPECT_EQ(Json::parse(Value("config"))["pause"], true) << Value("config");
  for (size_t i = 0; i < c().size(); ++i) {
    auto j = Json::parse(c().Get(i, "/patroni").second, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.value("pause", false)) << c().node(i).name << ": " << j.dump();
  }
  auto list = cli({"list"});
  EXPECT_NE(list.output.find("\n Maintenance mode: on\n"), std::string::npos) << list.output;
  auto again = cli({"pause"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("Cluster is already paused"), std::string::npos) << again.output;
  // The paused leader keeps its key (ttl is 2 s) and its primary.
  const int64_t lease = Key("leader") ? Key("leader")->lease : 0;
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(Value("leader"), leader);
  EXPECT_EQ(Key("leader") ? Key("leader")->lease : 0, lease);
  EXPECT_EQ(c().Primary(), p);

  // The primary's agent dies; its PostgreSQL keeps running. The key expires, nobody takes it.
  c().KillAgent(p);
  ASSERT_TRUE(ClusterHarness::WaitFor([&] { return !Key("leader"); }, seconds(10)))
      << "the leader key of the killed agent did not expire";
  const auto expired_at = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < expired_at + seconds(6)) {  // 3 x ttl
    ASSERT_FALSE(Key("leader")) << "paused, yet " << Value("leader") << " took the leader key";
    for (size_t i : Replicas(p)) {
      ASSERT_EQ(c().SqlValue(i, "SELECT pg_is_in_recovery()").value_or("?"), "t")
          << c().node(i).name << " was promoted while paused";
    }
    std::this_thread::sleep_for(milliseconds(200));
  }

  auto resume = cli({"resume", "--wait", "--timeout", "20"});
  ASSERT_EQ(resume.exit_code, 0) << resume.output;
  EXPECT_NE(resume.output.find("Success: cluster management is resumed"), std::string::npos)
      << resume.output;
  EXPECT_FALSE(Json::parse(Value("config")).contains("pause")) << Value("config");
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        const std::string l = Value("leader");
        return !l.empty() && l != leader;
      },
      seconds(20)))
      << "no new leader after the resume";
  const std::string elected = Value("leader");
  EXPECT_NE(elected, leader);
  // The old primary's agent comes back: it demotes, rewinds and follows the new leader.
  ASSERT_TRUE(c().StartAgent(p));
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto np = c().Primary();
        return np && c().node(*np).name == elected && Streaming(*np, 2);
      },
      seconds(60)))
      << "the cluster did not converge on " << elected;
}

}  // namespace
}  // namespace pgwarden::testing
