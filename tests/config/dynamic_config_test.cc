#include "config/dynamic_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"

namespace pgwarden::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::string_view kSource = "etcd /service/demo/config";

TEST(DynamicConfigJson, RoundTripKeepsEveryField) {
  DynamicConfig c;
  c.ttl = seconds(5);
  c.loop_wait = milliseconds(500);
  c.retry_timeout = milliseconds(1250);
  c.maximum_lag_on_failover = 16u << 20;
  c.maximum_lag_on_syncnode = 4u << 20;
  c.synchronous_mode = true;
  c.synchronous_mode_strict = true;
  c.synchronous_node_count = 2;
  c.primary_start_timeout = seconds(0);
  c.primary_stop_timeout = seconds(30);
  c.pause = true;
  c.postgresql.use_pg_rewind = true;
  c.postgresql.use_slots = false;
  c.postgresql.parameters = {{"max_connections", "100"}, {"wal_level", "replica"}};
  c.postgresql.pg_hba = {"host all all 127.0.0.1/32 trust"};

  std::string json = c.ToJson();
  Result<LoadedDynamicConfig> back = DynamicConfigFromJson(json, kSource);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->config, c);
  EXPECT_THAT(back->warnings, ::testing::IsEmpty());
  EXPECT_THAT(json, HasSubstr("\"loop_wait\":0.5"));
  EXPECT_THAT(json, HasSubstr("\"ttl\":5"));

  DynamicConfig defaults;
  back = DynamicConfigFromJson(defaults.ToJson(), kSource);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->config, defaults);
}

// Patroni 4's quorum commit: `synchronous_mode: quorum` (docs/sync-replication.md).
TEST(DynamicConfigJson, QuorumModeRoundTrips) {
  Result<LoadedDynamicConfig> r = DynamicConfigFromJson(
      R"({"synchronous_mode": "quorum", "synchronous_node_count": 2})", kSource);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->config.synchronous_mode);
  EXPECT_TRUE(r->config.synchronous_quorum);
  EXPECT_EQ(r->config.synchronous_node_count, 2);
  EXPECT_THAT(r->config.ToJson(), HasSubstr("\"synchronous_mode\":\"quorum\""));
  Result<LoadedDynamicConfig> back = DynamicConfigFromJson(r->config.ToJson(), kSource);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->config, r->config);
  // Back to plain synchronous mode: quorum is off again.
  r = DynamicConfigFromJson(R"({"synchronous_mode": true})", kSource);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->config.synchronous_mode);
  EXPECT_FALSE(r->config.synchronous_quorum);
  EXPECT_FALSE(DynamicConfigFromJson(R"({"synchronous_mode": "sometimes"})", kSource));
}

// What Patroni (or patronictl edit-config) leaves in etcd: whole seconds as integers, keys
// pgwarden does not implement, and maybe keys from a newer tool.
TEST(DynamicConfigJson, ReadsPatroniWrittenValue) {
  Result<LoadedDynamicConfig> r = DynamicConfigFromJson(
      R"({"ttl": 30, "loop_wait": 10, "retry_timeout": 10, "maximum_lag_on_failover": 1048576,
          "postgresql": {"use_pg_rewind": true, "parameters": {"max_connections": 100,
          "hot_standby": "on", "wal_log_hints": true}},
          "failsafe_mode": true, "slots": {"s1": {"type": "physical"}}, "pause": true,
          "shiny_new_feature": 1})",
      kSource);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->config.ttl, seconds(30));
  EXPECT_EQ(r->config.loop_wait, seconds(10));
  EXPECT_TRUE(r->config.pause);
  EXPECT_TRUE(r->config.postgresql.use_pg_rewind);
  EXPECT_EQ(r->config.postgresql.parameters.at("max_connections"), "100");
  EXPECT_EQ(r->config.postgresql.parameters.at("hot_standby"), "on");
  EXPECT_EQ(r->config.postgresql.parameters.at("wal_log_hints"), "true");
  EXPECT_THAT(r->warnings,
              ElementsAre("etcd /service/demo/config: shiny_new_feature: unknown key "
                          "`shiny_new_feature`; ignored",
                          "etcd /service/demo/config: accepted but not implemented by pgwarden "
                          "yet, so ignored: `failsafe_mode`, `slots`"));
}

// Patroni's maximum_lag_on_syncnode: -1 (the default) and 0 are off; a byte size turns it on.
TEST(DynamicConfigJson, MaximumLagOnSyncnode) {
  Result<LoadedDynamicConfig> r = DynamicConfigFromJson("{}", kSource);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->config.maximum_lag_on_syncnode, -1);
  EXPECT_THAT(r->config.ToJson(), HasSubstr("\"maximum_lag_on_syncnode\":-1"));
  for (const auto& [json, want] : std::vector<std::pair<std::string, int64_t>>{
           {R"({"maximum_lag_on_syncnode": -1})", -1},
           {R"({"maximum_lag_on_syncnode": 0})", 0},
           {R"({"maximum_lag_on_syncnode": 15000000})", 15000000},
           {R"({"maximum_lag_on_syncnode": "16MB"})", 16 << 20},
       }) {
    r = DynamicConfigFromJson(json, kSource);
    ASSERT_TRUE(r.has_value()) << json << ": " << r.error().message;
    EXPECT_EQ(r->config.maximum_lag_on_syncnode, want) << json;
    EXPECT_THAT(r->warnings, ::testing::IsEmpty()) << json;  // implemented: no warning
  }
  r = DynamicConfigFromJson(R"({"maximum_lag_on_syncnode": -2})", kSource);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message,
            "etcd /service/demo/config: maximum_lag_on_syncnode: expected -1 (off, the default), "
            "0 (off) or a size in bytes such as `1048576` or `16MB`, got `-2`");
  r = DynamicConfigFromJson(R"({"maximum_lag_on_syncnode": "lots"})", kSource);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("maximum_lag_on_syncnode: expected a size in bytes"));
  r = DynamicConfigFromJson(R"({"maximum_lag_on_syncnode": "9000000TB"})", kSource);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("(too large)"));
  DynamicConfig c;
  c.maximum_lag_on_syncnode = -5;
  EXPECT_THAT(ValidateDynamicConfig(c),
              ElementsAre(ConfigProblem{"maximum_lag_on_syncnode",
                                        "must be -1 (off), 0 (off) or a size in bytes, got -5"}));
}

TEST(DynamicConfigJson, BadValuesAreAllReported) {
  Result<LoadedDynamicConfig> r = DynamicConfigFromJson(
      R"({"ttl": "soon", "loop_wait": -1, "synchronous_mode": "maybe",
          "postgresql": {"parameters": {"a": [1]}, "use_slots": 3}})",
      kSource);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message,
            "etcd /service/demo/config: ttl: expected a duration: a number of seconds or a number "
            "with a unit (ms, s, min, h), e.g. `500ms`, `5s`, `1min`; got `soon`\n"
            "etcd /service/demo/config: loop_wait: must not be negative, got `-1`\n"
            "etcd /service/demo/config: synchronous_mode: expected true or false, got `maybe`\n"
            "etcd /service/demo/config: postgresql.parameters.a: expected a single value (text), "
            "got a list\n"
            "etcd /service/demo/config: postgresql.use_slots: expected true or false, got `3`");
}

TEST(DynamicConfigJson, RangeRulesAreTheYamlOnes) {
  Result<LoadedDynamicConfig> r =
      DynamicConfigFromJson(R"({"ttl": 1, "loop_wait": 0.01})", kSource);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message,
            "etcd /service/demo/config: ttl: must be between 2s and 1h (etcd grants no lease "
            "shorter than 2s with its default timing), got 1s\n"
            "etcd /service/demo/config: loop_wait: must be at least 100ms, got 10ms");
}

TEST(DynamicConfigJson, NotJsonOrNotAnObjectIsCorrupt) {
  Result<LoadedDynamicConfig> r = DynamicConfigFromJson("{\"ttl\": ", kSource);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  EXPECT_THAT(r.error().message, ::testing::StartsWith("etcd /service/demo/config: invalid JSON"));
  r = DynamicConfigFromJson("[1, 2]", kSource);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(r.error().message, "etcd /service/demo/config: expected a JSON object, got a list");
}

TEST(ValidateDynamicConfig, DefaultsAreValid) {
  EXPECT_THAT(ValidateDynamicConfig(DynamicConfig{}), ::testing::IsEmpty());
}

TEST(ValidateDynamicConfig, LoopTurnAndOneRequestFitBeforeTheFence) {
  DynamicConfig c;
  c.ttl = seconds(3);
  c.loop_wait = seconds(1);
  c.retry_timeout = milliseconds(1500);  // 1s + 1.5s + 0.5s = 3s: just fits
  EXPECT_THAT(ValidateDynamicConfig(c), ::testing::IsEmpty());
  c.retry_timeout = milliseconds(1501);
  EXPECT_THAT(ValidateDynamicConfig(c),
              ElementsAre(ConfigProblem{
                  "loop_wait",
                  "loop_wait (1s) + retry_timeout (1501ms) + fence margin (500ms) = 3001ms must "
                  "not exceed ttl (3s): a leader must finish one HA loop turn and one etcd "
                  "request before it has to fence itself; lower loop_wait or retry_timeout, or "
                  "raise ttl to at least 4s"}));
}

TEST(ResolveHaTiming, AppliesLocalKeepaliveSettingsToDynamicTtl) {
  DynamicConfig d;
  d.ttl = seconds(3);
  PgwardenSettings p;
  Result<HaTiming> t = ResolveHaTiming(d, p);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->keepalive_interval, milliseconds(750));
  p.keepalive_interval = milliseconds(1200);
  t = ResolveHaTiming(d, p);
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(t.error().message, HasSubstr("ttl 3s is too short for the keep-alive cadence"));
}

}  // namespace
}  // namespace pgwarden::config
