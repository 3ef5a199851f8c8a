#include "proxy/status.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pgwarden::proxy {
namespace {

ProxyStatus Sample() {
  ProxyStatus s;
  s.generation = 12;
  s.dcs_fresh = true;
  s.primary_usable = true;
  s.primary = "n1";
  s.ports.push_back(PortStatus{Role::kPrimary, 5000, {"n1"}});
  s.ports.push_back(PortStatus{Role::kAnyReplica, 5003, {"n2", "n3"}});
  s.members.push_back(MemberStatus{"n1", "10.0.0.1:5432", "primary", 0, false, 4, false});
  s.members.push_back(MemberStatus{"n\"2", "10.0.0.2:5432", "async", 512, true, 1, true});
  s.active_sessions = 5;
  s.held_now = 2;
  s.counters.accepted[RoleIndex(Role::kPrimary)] = 40;
  s.counters.hold_timeouts = 3;
  s.counters.reheld = 6;
  s.counters.bytes_client_to_upstream = 1234;
  return s;
}

TEST(StatusJson, CarriesRoutesSessionsAndCounters) {
  nlohmann::json j = nlohmann::json::parse(RenderStatusJson(Sample()));
  EXPECT_EQ(j["primary"], "n1");
  EXPECT_EQ(j["routes"]["primary"]["port"], 5000);
  EXPECT_EQ(j["routes"]["replica"]["candidates"], nlohmann::json({"n2", "n3"}));
  EXPECT_EQ(j["members"][0]["sessions"], 4);
  EXPECT_EQ(j["members"][1]["name"], "n\"2");
  EXPECT_EQ(j["members"][1]["unreachable"], true);
  EXPECT_EQ(j["held"], 2);
  EXPECT_EQ(j["counters"]["accepted"]["primary"], 40);
  EXPECT_EQ(j["counters"]["hold_timeouts"], 3);
  EXPECT_EQ(j["counters"]["reheld"], 6);
}

TEST(StatusJson, NoPrimaryIsNull) {
  ProxyStatus s;
  nlohmann::json j = nlohmann::json::parse(RenderStatusJson(s));
  EXPECT_TRUE(j["primary"].is_null());
}

TEST(Prometheus, TextFormat) {
  const std::string text = RenderPrometheus(Sample());
  EXPECT_NE(text.find("# TYPE pgwarden_proxy_accepted_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_proxy_accepted_total{role=\"primary\"} 40\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_proxy_held_sessions 2\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_proxy_hold_timeouts_total 3\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_proxy_reheld_total 6\n"), std::string::npos);
  EXPECT_NE(text.find("pgwarden_proxy_bytes_total{direction=\"client_to_backend\"} 1234\n"),
            std::string::npos);
  // Label values are escaped.
  EXPECT_NE(text.find("pgwarden_proxy_member_sessions{member=\"n\\\"2\",role=\"async\"} 1\n"),
            std::string::npos);
  // Every non-comment line is "name[{labels}] value".
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    ASSERT_NE(eol, std::string::npos);
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("# ", 0) == 0) continue;
    EXPECT_EQ(line.rfind("pgwarden_proxy_", 0), 0u) << line;
    EXPECT_NE(line.rfind(' '), std::string::npos) << line;
  }
}

TEST(Http, RequestLines) {
  ASSERT_TRUE(ParseRequestLine("GET /status HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(ParseRequestLine("GET /metrics?x=1 HTTP/1.0\r\n\r\n")->path, "/metrics");
  EXPECT_FALSE(ParseRequestLine(""));
  EXPECT_FALSE(ParseRequestLine("GET\r\n"));
  EXPECT_FALSE(ParseRequestLine("GET  HTTP/1.1\r\n"));
  EXPECT_FALSE(ParseRequestLine("GET / FTP/1.0\r\n"));
  EXPECT_FALSE(ParseRequestLine(std::string("\0\xff\x01 garbage", 12)));
}

TEST(Http, Dispatch) {
  ProxyStatus s = Sample();
  EXPECT_EQ(HandleStatusRequest("GET /status HTTP/1.1\r\n\r\n", s).status, 200);
  EXPECT_EQ(HandleStatusRequest("GET /metrics HTTP/1.1\r\n\r\n", s).content_type,
            "text/plain; version=0.0.4");
  EXPECT_EQ(HandleStatusRequest("POST /status HTTP/1.1\r\n\r\n", s).status, 405);
  EXPECT_EQ(HandleStatusRequest("GET /nope HTTP/1.1\r\n\r\n", s).status, 404);
  EXPECT_EQ(HandleStatusRequest("\x16\x03\x01 tls hello", s).status, 400);
  const std::string wire = SerializeResponse(HttpResponse{404, "text/plain", "abc"});
  EXPECT_EQ(wire,
            "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
            "Connection: close\r\n\r\nabc");
}

}  // namespace
}  // namespace pgwarden::proxy
