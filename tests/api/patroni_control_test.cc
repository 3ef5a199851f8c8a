// The control endpoints over loopback: every rejected request gets its status and Patroni's
// message and never reaches the ControlPlane; accepted ones reach it once, and its errors map to
// Patroni's statuses. Also: slow control calls do not block health checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/api_fixture.h"

namespace pgwarden::api::testing {
namespace {

using std::chrono::milliseconds;

class ApiControlTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    Publish(PrimarySnapshot());
  }
  // A request that must be refused with `status` and `message`, without calling the agent.
  void ExpectRejected(const std::string& method, const std::string& target, const std::string& body,
                      int status, const std::string& message) {
    size_t before = control_.calls().size();
    HttpResponse res = Send(method, target, body);
    EXPECT_EQ(res.status, status) << method << " " << target << " " << body << ": " << res.body;
    EXPECT_EQ(res.body, message) << method << " " << target << " " << body;
    EXPECT_EQ(control_.calls().size(), before) << "the agent was called for a bad request";
  }
  std::string InOneHour() const { return FormatIso(clock_.SystemNow() + std::chrono::hours(1)); }
  static std::string FormatIso(SystemTime t) {
    std::string s = FormatTimestamp(t);  // "YYYY-MM-DD HH:MM:SS.ffffff+00:00"
    s[10] = 'T';
    return s;
  }
};

TEST_F(ApiControlTest, SwitchoverBadRequests) {
  ExpectRejected("POST", "/switchover", "", 400, "request body must be a non-empty JSON object");
  ExpectRejected("POST", "/switchover", "{}", 400, "request body must be a non-empty JSON object");
  ExpectRejected("POST", "/switchover", "[1,2]", 400, "request body must be a JSON object");
  HttpResponse broken = Send("POST", "/switchover", "{\"leader\": ");
  EXPECT_EQ(broken.status, 400);
  EXPECT_EQ(broken.body.rfind("request body is not valid JSON", 0), 0u) << broken.body;
  ExpectRejected("POST", "/switchover", R"({"candidate":"n2"})", 400,
                 "Switchover could be performed only from a specific leader");
  ExpectRejected("POST", "/switchover", R"({"leader":1})", 400, "\"leader\" must be a string");
  ExpectRejected("POST", "/switchover", R"({"leader":"n1","candidate":"n1"})", 400,
                 "Switchover target and source are the same");
  ExpectRejected("POST", "/switchover", R"({"leader":"n2","candidate":"n3"})", 412,
                 "leader name does not match");
  ExpectRejected("POST", "/switchover", R"({"leader":"n1","candidate":"n9"})", 412,
                 "candidate does not exists");
  ExpectRejected("POST", "/switchover", R"({"leader":"n1","candidate":"n3"})", 412,
                 "switchover is not possible: no good candidates have been found");
  EXPECT_TRUE(control_.calls().empty());
}

TEST_F(ApiControlTest, SwitchoverScheduleRules) {
  ExpectRejected("POST", "/switchover", R"({"leader":"n1","scheduled_at":"2030-01-01T10:00:00"})",
                 400, "Timezone information is mandatory for the scheduled switchover");
  ExpectRejected("POST", "/switchover", R"({"leader":"n1","scheduled_at":"next tuesday"})", 422,
                 "Unable to parse scheduled timestamp. It should be in an unambiguous format, "
                 "e.g. ISO 8601");
  ExpectRejected("POST", "/switchover", R"({"leader":"n1","scheduled_at":42})", 422,
                 "Unable to parse scheduled timestamp. It should be in an unambiguous format, "
                 "e.g. ISO 8601");
  ExpectRejected("POST", "/switchover",
                 R"({"leader":"n1","scheduled_at":"2001-01-01T10:00:00+00:00"})", 422,
                 "Cannot schedule switchover in the past");

  HttpResponse res =
      Send("POST", "/switchover",
           R"({"leader":"n1","candidate":"n2","scheduled_at":")" + InOneHour() + R"("})");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(res.body, "Switchover scheduled");
  ASSERT_EQ(control_.switchovers().size(), 1u);
  const SwitchoverRequest req = control_.switchovers()[0];
  EXPECT_EQ(req.leader, "n1");
  EXPECT_EQ(req.candidate, "n2");
  ASSERT_TRUE(req.scheduled_at.has_value());
  auto delta = *req.scheduled_at - clock_.SystemNow();
  EXPECT_GT(delta, std::chrono::minutes(59));
  EXPECT_LT(delta, std::chrono::minutes(61));
}

TEST_F(ApiControlTest, SwitchoverInPauseNeedsACandidateAndCannotBeScheduled) {
  ApiSnapshot s = PrimarySnapshot();
  s.pause = true;
  Publish(s);
  ExpectRejected("POST", "/switchover", R"({"leader":"n1"})", 400,
                 "Switchover is possible only to a specific candidate in a paused state");
  ExpectRejected("POST", "/switchover",
                 R"({"leader":"n1","candidate":"n2","scheduled_at":")" + InOneHour() + R"("})", 400,
                 "Can't schedule switchover in the paused state");
  EXPECT_EQ(Send("POST", "/switchover", R"({"leader":"n1","candidate":"n2"})").status, 200);
}

TEST_F(ApiControlTest, SwitchoverInSyncModeOnlyToASyncStandby) {
  ApiSnapshot s = PrimarySnapshot();
  s.cluster->synchronous_mode = true;
  s.cluster->sync_standbys = {"n3"};
  Publish(s);
  ExpectRejected("POST", "/switchover", R"({"leader":"n1","candidate":"n2"})", 412,
                 "candidate name does not match with sync_standby");
  // n3 is the only sync standby and is tagged nofailover.
  ExpectRejected("POST", "/switchover", R"({"leader":"n1"})", 412,
                 "switchover is not possible: no good candidates have been found");
  s.cluster->sync_standbys.clear();
  Publish(s);
  ExpectRejected("POST", "/switchover", R"({"leader":"n1"})", 412,
                 "switchover is not possible: can not find sync_standby");
}

TEST_F(ApiControlTest, SwitchoverWithoutOtherMembers) {
  ApiSnapshot s = PrimarySnapshot();
  s.cluster->members.erase(std::remove_if(s.cluster->members.begin(), s.cluster->members.end(),
                                          [](const ClusterMember& m) { return m.name != "n1"; }),
                           s.cluster->members.end());
  Publish(s);
  ExpectRejected("POST", "/switchover", R"({"leader":"n1"})", 412,
                 "switchover is not possible: cluster does not have members except leader");
}

TEST_F(ApiControlTest, SwitchoverWithoutDcsViewIs503) {
  ApiSnapshot s = PrimarySnapshot();
  s.cluster.reset();
  Publish(s);
  ExpectRejected("POST", "/switchover", R"({"leader":"n1"})", 503,
                 "DCS is not accessible: cannot check the request");
}

TEST_F(ApiControlTest, SwitchoverAccepted) {
  HttpResponse res = Send("POST", "/switchover", R"({"leader":"n1","candidate":"n2"})");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "Successfully switched over to \"n2\"");
  EXPECT_EQ(control_.calls(), std::vector<std::string>{"switchover n1 -> n2"});

  res = Send("POST", "/switchover", R"({"leader":"n1"})");  // any healthy candidate
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(control_.calls().back(), "switchover n1 -> *");
  EXPECT_FALSE(control_.switchovers().back().candidate.has_value());
}

TEST_F(ApiControlTest, SwitchoverAgentErrorsMapToPatroniStatuses) {
  struct Case {
    ErrorCode code;
    int status;
    std::string body;
  } cases[] = {
      {ErrorCode::kConflict, 412, "switchover is not possible: no good candidates have been found"},
      {ErrorCode::kUnavailable, 503, "failed to write failover key into DCS"},
      {ErrorCode::kTimeout, 503, "Switchover status unknown: no new leader after 20 s"},
      {ErrorCode::kFailed, 503, "Switchover failed"},
      {ErrorCode::kInvalidArgument, 400, "bad"},
  };
  for (const auto& c : cases) {
    std::string message = c.code == ErrorCode::kTimeout ? "no new leader after 20 s" : c.body;
    control_.FailWith(Error{c.code, message});
    HttpResponse res = Send("POST", "/switchover", R"({"leader":"n1","candidate":"n2"})");
    EXPECT_EQ(res.status, c.status) << ToString(c.code);
    EXPECT_EQ(res.body, c.body) << ToString(c.code);
  }
}

TEST_F(ApiControlTest, Failover) {
  ExpectRejected("POST", "/failover", R"({"leader":"n1"})", 400,
                 "Failover could be performed only to a specific candidate");
  ExpectRejected("POST", "/failover",
                 R"({"candidate":"n2","scheduled_at":")" + InOneHour() + R"("})", 400,
                 "Failover can't be scheduled");
  ExpectRejected("POST", "/failover", R"({"candidate":"n9"})", 412, "candidate does not exists");
  ExpectRejected("POST", "/failover", R"({"candidate":"n3"})", 412,
                 "failover is not possible: no good candidates have been found");
  ExpectRejected("POST", "/failover", R"({"candidate":"n1"})", 412,
                 "failover is not possible: n1 is already the leader");

  HttpResponse res = Send("POST", "/failover", R"({"candidate":"n2"})");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "Successfully failed over to \"n2\"");
  EXPECT_EQ(control_.calls().back(), "failover -> n2");

  // A failover without a leader works on an unlocked cluster, even in sync mode.
  ApiSnapshot s = ReplicaSnapshot();
  s.cluster->leader.reset();
  s.cluster->synchronous_mode = true;
  Publish(s);
  EXPECT_EQ(Send("POST", "/failover", R"({"member":"n2"})").status, 200);

  // With a leader it is a switchover, as in Patroni.
  Publish(PrimarySnapshot());
  res = Send("POST", "/failover", R"({"leader":"n1","candidate":"n2"})");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(control_.calls().back(), "switchover n1 -> n2");
}

TEST_F(ApiControlTest, DeleteSwitchover) {
  HttpResponse res = Send("DELETE", "/switchover", "");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "scheduled switchover deleted");
  control_.FailWith(Error{ErrorCode::kNotFound, ""});
  res = Send("DELETE", "/switchover", "");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.body, "no switchover is scheduled");
  control_.FailWith(Error{ErrorCode::kConflict, "failover key changed"});
  EXPECT_EQ(Send("DELETE", "/switchover", "").status, 409);
}

TEST_F(ApiControlTest, Config) {
  ExpectRejected("PATCH", "/config", "", 400, "request body must be a non-empty JSON object");
  ExpectRejected("PATCH", "/config", "\"ttl\"", 400, "request body must be a JSON object");
  HttpResponse res = Send("PATCH", "/config", R"({"ttl": 20, "postgresql": {"parameters": null}})");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(res.body), nlohmann::json({{"ttl", 20}, {"loop_wait", 10}}));
  EXPECT_EQ(control_.calls().back(), R"(patch {"postgresql":{"parameters":null},"ttl":20})");

  control_.FailWith(Error{ErrorCode::kConflict, "config changed concurrently"});
  res = Send("PATCH", "/config", R"({"ttl": 20})");
  EXPECT_EQ(res.status, 409);
  EXPECT_EQ(res.body, "config changed concurrently");
  control_.FailWith(Error{ErrorCode::kNotFound, "no config in the DCS"});
  EXPECT_EQ(Send("PATCH", "/config", R"({"ttl": 20})").status, 503);
  control_.FailWith(Error{ErrorCode::kUnavailable, "etcd unreachable"});
  EXPECT_EQ(Send("PUT", "/config", R"({"ttl": 20})").status, 502);
  control_.FailWith(std::nullopt);
  res = Send("PUT", "/config", R"({"ttl":25})");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, R"({"ttl":25})");
}

TEST_F(ApiControlTest, Restart) {
  ExpectRejected("POST", "/restart", R"({"when":"now"})", 400,
                 "Unknown filter for the scheduled restart: when");
  ExpectRejected("POST", "/restart", R"({"role":"master"})", 400,
                 "PostgreSQL role should be either primary, standby_leader, or replica");
  ExpectRejected("POST", "/restart", R"({"timeout":"soon"})", 400,
                 "Timeout should be a positive number of seconds");
  ExpectRejected("POST", "/restart", R"({"timeout":0})", 400,
                 "Timeout should be a positive number of seconds");
  ExpectRejected("POST", "/restart", R"({"postgres_version":"15.x"})", 400,
                 "postgres_version \"15.x\" is not a valid PostgreSQL version");
  ExpectRejected("POST", "/restart", R"({"schedule":"2001-01-01T00:00:00Z"})", 422,
                 "Cannot schedule restart in the past");

  HttpResponse res = Send("POST", "/restart", "");  // no body: restart now
  EXPECT_EQ(res.status, 200);
  res = Send(
      "POST", "/restart",
      R"({"role":"primary","timeout":"2min","restart_pending":true,"postgres_version":"15.5"})");
  EXPECT_EQ(res.status, 200);
  ASSERT_EQ(control_.restarts().size(), 2u);
  const RestartRequest r = control_.restarts()[1];
  EXPECT_EQ(r.role, PgRole::kPrimary);
  EXPECT_EQ(r.timeout, std::chrono::seconds(120));
  EXPECT_TRUE(r.restart_pending);
  EXPECT_EQ(r.postgres_version, "15.5");

  res = Send("POST", "/restart", R"({"schedule":")" + InOneHour() + R"("})");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(res.body, "Restart scheduled");
  control_.FailWith(Error{ErrorCode::kConflict, ""});
  res = Send("POST", "/restart", R"({"schedule":")" + InOneHour() + R"("})");
  EXPECT_EQ(res.status, 409);
  EXPECT_EQ(res.body, "Another restart is already scheduled");

  ApiSnapshot s = PrimarySnapshot();
  s.pause = true;
  Publish(s);
  ExpectRejected("POST", "/restart", R"({"schedule":")" + InOneHour() + R"("})", 500,
                 "Can't schedule restart in the paused state");

  control_.FailWith(Error{ErrorCode::kNotFound, ""});
  res = Send("DELETE", "/restart", "");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.body, "no restarts are scheduled");
  control_.FailWith(std::nullopt);
  res = Send("DELETE", "/restart", "");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "scheduled restart deleted");
}

TEST_F(ApiControlTest, ReloadAndReinitialize) {
  HttpResponse res = Send("POST", "/reload", "");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(res.body, "reload scheduled");

  ExpectRejected("POST", "/reinitialize", "", 503, "I am the leader, can not reinitialize");
  Publish(ReplicaSnapshot());
  res = Send("POST", "/reinitialize", R"({"force":true})");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "reinitialize started");
  EXPECT_EQ(control_.calls().back(), "reinitialize force=1 from_leader=0");
  control_.FailWith(Error{ErrorCode::kFailed, "reinitialize is already in progress"});
  res = Send("POST", "/reinitialize", "");
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.body, "reinitialize is already in progress");
}

TEST_F(ApiControlTest, SlowControlCallsDoNotBlockHealthChecks) {
  control_.Hold();
  std::thread switchover([&] {
    HttpResponse res = Send("POST", "/switchover", R"({"leader":"n1","candidate":"n2"})");
    EXPECT_EQ(res.status, 200);
  });
  for (int i = 0; i < 400 && control_.waiting() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_EQ(control_.waiting(), 1);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Get("/primary").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
  control_.Release();
  switchover.join();
}

TEST_F(ApiControlTest, ControlQueueIsBounded) {
  control_.Hold();
  constexpr int kClients = 14;
  std::vector<std::thread> clients;
  std::atomic<int> busy{0};
  std::atomic<int> done{0};
  auto client = [&] {
    HttpResponse res = Send("POST", "/reload", "");
    if (res.status == 503 && res.body.find("too many control requests") != std::string::npos) {
      ++busy;
    } else if (res.status == 202) {
      ++done;
    }
  };
  // The first call runs and is held; then eight wait in the queue and the rest are refused.
  clients.emplace_back(client);
  for (int i = 0; i < 400 && control_.waiting() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_EQ(control_.waiting(), 1);
  for (int i = 1; i < kClients; ++i) clients.emplace_back(client);
  for (int i = 0; i < 400 && busy.load() < kClients - 9; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(busy.load(), kClients - 9);
  control_.Release();
  for (auto& t : clients) t.join();
  EXPECT_EQ(done.load(), 9);
}

TEST(ApiWithoutAgent, ControlRequestsAre503) {
  PatroniApi api(nullptr);
  api.SetSnapshot(std::make_shared<const ApiSnapshot>(PrimarySnapshot()));
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  HttpServer server(options, api.Handler());
  ASSERT_TRUE(server.Start());
  auto res = HttpPost("http://127.0.0.1:" + std::to_string(server.port()) + "/reload", "",
                      milliseconds(2000));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  server.Stop();
}

}  // namespace
}  // namespace pgwarden::api::testing
