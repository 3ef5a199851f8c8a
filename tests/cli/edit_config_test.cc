// `pgwarden edit-config`'s argument handling: the merge patch built from --set / --pg /
// --apply, the messages for malformed arguments, and the diff shown before applying.
#include "cli/edit_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config/config_edit.h"

namespace pgwarden::cli {
namespace {

using Json = nlohmann::json;

Json Patch(const EditConfigArgs& args) {
  auto p = BuildConfigPatch(args);
  EXPECT_TRUE(p) << p.error().ToString();
  return p ? Json::parse(*p) : Json();
}

TEST(EditConfigArgs, SetTakesDottedPathsAndYamlValues) {
  EditConfigArgs a;
  a.set = {"ttl=5",
           "synchronous_mode=true",
           "postgresql.use_pg_rewind=on",
           "maximum_lag_on_failover=null",
           "loop_wait=0.5",
           "name='007'"};
  Json p = Patch(a);
  EXPECT_EQ(p["ttl"], 5);
  EXPECT_EQ(p["synchronous_mode"], true);
  EXPECT_EQ(p["postgresql"]["use_pg_rewind"], true);
  EXPECT_TRUE(p["maximum_lag_on_failover"].is_null());  // null: the key is removed
  EXPECT_EQ(p["loop_wait"], 0.5);
  EXPECT_EQ(p["name"], "007");
}

TEST(EditConfigArgs, PgSetsParametersKeepingDotsInTheName) {
  EditConfigArgs a;
  a.pg = {"work_mem=8MB", "pg_stat_statements.max=1000", "max_connections=200"};
  Json p = Patch(a);
  EXPECT_EQ(p["postgresql"]["parameters"]["work_mem"], "8MB");
  EXPECT_EQ(p["postgresql"]["parameters"]["pg_stat_statements.max"], 1000);
  EXPECT_EQ(p["postgresql"]["parameters"]["max_connections"], 200);
}

TEST(EditConfigArgs, ApplyIsMergedFirstThenPgAndSetWin) {
  EditConfigArgs a;
  a.apply = "ttl: 10\npostgresql:\n  parameters:\n    work_mem: 4MB\n    shared_buffers: 1GB\n";
  a.pg = {"work_mem=16MB"};
  a.set = {"ttl=3"};
  Json p = Patch(a);
  EXPECT_EQ(p["ttl"], 3);
  EXPECT_EQ(p["postgresql"]["parameters"]["work_mem"], "16MB");
  EXPECT_EQ(p["postgresql"]["parameters"]["shared_buffers"], "1GB");
}

TEST(EditConfigArgs, MalformedArgumentsAreNamed) {
  auto expect_error = [](EditConfigArgs a, const std::string& needle) {
    auto p = BuildConfigPatch(a);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(p.error().message.find(needle), std::string::npos) << p.error().message;
  };
  EditConfigArgs no_eq;
  no_eq.set = {"ttl"};
  expect_error(no_eq, "--set ttl: expected key.path=value");
  EditConfigArgs empty_part;
  empty_part.set = {"postgresql..x=1"};
  expect_error(empty_part, "empty part");
  EditConfigArgs bad_pg;
  bad_pg.pg = {"=5"};
  expect_error(bad_pg, "--pg =5: expected name=value");
  EditConfigArgs list;
  list.apply = "- a\n- b\n";
  list.apply_source = "changes.yml";
  expect_error(list, "changes.yml: expected a mapping");
  expect_error(EditConfigArgs{}, "nothing to change");
}

TEST(EditConfigDiff, ShowsRemovedAndAddedLines) {
  auto merged = config::MergeJsonPatch(std::string(R"({"ttl":2,"loop_wait":0.5})"),
                                       R"({"ttl":5,"loop_wait":null,"synchronous_mode":true})");
  ASSERT_TRUE(merged);
  const std::string diff = config::JsonDiff(R"({"ttl":2,"loop_wait":0.5})", *merged);
  EXPECT_NE(diff.find("-  \"loop_wait\": 0.5"), std::string::npos) << diff;
  EXPECT_NE(diff.find("+  \"synchronous_mode\": true"), std::string::npos) << diff;
  EXPECT_NE(diff.find("-  \"ttl\": 2"), std::string::npos) << diff;
  EXPECT_NE(diff.find("+  \"ttl\": 5"), std::string::npos) << diff;
  EXPECT_EQ(config::JsonDiff(*merged, *merged), "");
}

// `pgwarden show-config`: the etcd config key as YAML, sorted keys, types kept on a round trip.
TEST(ShowConfig, JsonToYamlKeepsTypesAndSortsKeys) {
  const std::string json =
      R"({"ttl":2,"loop_wait":0.5,"synchronous_mode":true,"pause":null,"tags":[],)"
      R"("postgresql":{"parameters":{"max_connections":"100","work_mem":"8MB",)"
      R"("archive_command":"on"},"use_pg_rewind":true},"slots":{}})";
  const std::string yaml = config::JsonToYaml(json);
  EXPECT_EQ(yaml,
            "loop_wait: 0.5\n"
            "pause: ~\n"
            "postgresql:\n"
            "  parameters:\n"
            "    archive_command: \"on\"\n"
            "    max_connections: \"100\"\n"
            "    work_mem: 8MB\n"
            "  use_pg_rewind: true\n"
            "slots: {}\n"
            "synchronous_mode: true\n"
            "tags: []\n"
            "ttl: 2\n");
  // Read back, it is the same document (strings that look like numbers or booleans stay strings).
  auto back = config::YamlToJson(yaml, "show-config");
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(Json::parse(*back), Json::parse(json));
  EXPECT_EQ(config::JsonToYaml("not json"), "not json");
}

}  // namespace
}  // namespace pgwarden::cli
