// The etcd gateway's JSON, without a server: encoding, defaults, and strict rejection.
#include "dcs/etcd3/etcd_json.h"

#include <gtest/gtest.h>

#include <random>

#include "dcs/etcd3/http_client.h"

namespace pgwarden::dcs::etcd3 {
namespace {

TEST(Base64Test, RoundTripsEveryLengthAndByte) {
  std::mt19937 rng(42);
  for (std::size_t len = 0; len < 70; ++len) {
    std::string bytes(len, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng() & 0xff);
    auto decoded = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(decoded) << len;
    EXPECT_EQ(*decoded, bytes) << len;
  }
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(*Base64Decode("Zm8"), "fo");  // padding optional
}

TEST(Base64Test, RejectsGarbage) {
  EXPECT_EQ(Base64Decode("Zm9v!").error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(Base64Decode("Z").error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(Base64Decode("Zm 9v").error().code, ErrorCode::kCorrupt);
}

TEST(PrefixEndTest, IncrementsTheLastByte) {
  EXPECT_EQ(PrefixEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixEnd("ab"), "ac");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
}

TEST(ParseTest, AbsentFieldsAreDefaultsAndInt64MayBeANumber) {
  auto r = ParseRangeResponse(
      R"({"header":{"revision":"9"},"kvs":[{"key":"YQ==","create_revision":4,"mod_revision":"9"}]})");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->revision, 9);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "a");
  EXPECT_EQ(r->kvs[0].value, "");
  EXPECT_EQ(r->kvs[0].create_revision, 4);
  EXPECT_EQ(r->kvs[0].version, 0);
  EXPECT_EQ(r->kvs[0].lease, 0);
  auto empty = ParseRangeResponse(R"({"header":{"revision":"1"}})");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->kvs.empty());
}

TEST(ParseTest, MalformedAnswersAreCorruptWithTheField) {
  const char* bad[] = {
      "",
      "null",
      R"({"header":{"revision":"12x"}})",
      R"({"header":{"revision":"99999999999999999999"}})",
      R"({"header":{"revision":true}})",
      R"({"header":[]})",
      R"({"header":{"revision":"1"},"kvs":[{"key":5}]})",
      R"({"header":{"revision":"1"},"kvs":[{"key":"YQ==","value":"*"}]})",
  };
  for (const char* body : bad) {
    auto r = ParseRangeResponse(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, ErrorCode::kCorrupt) << body;
    EXPECT_NE(r.error().message.find("range"), std::string::npos) << r.error().message;
  }
  auto field = ParseRangeResponse(R"({"header":{"revision":"x"}})");
  EXPECT_NE(field.error().message.find("'revision'"), std::string::npos);
}

TEST(ParseTest, TxnChecksTheNumberOfRanges) {
  const char* body =
      R"({"header":{"revision":"5"},"succeeded":true,"responses":[{"response_put":{}},)"
      R"({"response_range":{"header":{"revision":"5"},"kvs":[]}}]})";
  auto ok = ParseTxnResponse(body, 1, 0);
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_TRUE(ok->succeeded);
  EXPECT_EQ(ok->ranges.size(), 1u);
  EXPECT_EQ(ok->ranges[0].revision, 5);
  EXPECT_EQ(ParseTxnResponse(body, 2, 0).error().code, ErrorCode::kCorrupt);
  // succeeded absent = false: the failure branch ran, which had no gets.
  auto failed = ParseTxnResponse(R"({"header":{"revision":"5"}})", 1, 0);
  ASSERT_TRUE(failed) << failed.error().ToString();
  EXPECT_FALSE(failed->succeeded);
  EXPECT_EQ(failed->revision, 5);
}

TEST(ParseTest, WatchMessages) {
  auto created = ParseWatchMessage(R"({"result":{"header":{"revision":"7"},"created":true}})");
  ASSERT_TRUE(created);
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->header_revision, 7);
  auto events = ParseWatchMessage(
      R"({"result":{"header":{"revision":"8"},"events":[{"kv":{"key":"YQ==","mod_revision":"8",)"
      R"("version":"1","create_revision":"8","value":"dg=="}},{"type":"DELETE","kv":{"key":"Yg==",)"
      R"("mod_revision":"8"}}]}})");
  ASSERT_TRUE(events) << events.error().ToString();
  ASSERT_EQ(events->events.size(), 2u);
  EXPECT_EQ(events->events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(events->events[0].kv.value, "v");
  EXPECT_EQ(events->events[1].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events->events[1].kv.key, "b");
  auto compacted =
      ParseWatchMessage(R"({"result":{"header":{},"canceled":true,"compact_revision":"3"}})");
  ASSERT_TRUE(compacted);
  EXPECT_EQ(compacted->compact_revision, 3);
  auto error = ParseWatchMessage(R"({"error":{"grpc_code":14,"message":"etcdserver: no leader"}})");
  ASSERT_FALSE(error);
  EXPECT_EQ(error.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(ParseWatchMessage(R"({"result":7})").error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(ParseWatchMessage(R"({"result":{"events":[{"kv":{"key":"YQ=="}}]}})").error().code,
            ErrorCode::kCorrupt);  // an event without mod_revision
}

TEST(ParseTest, KeepAliveAndTimeToLive) {
  EXPECT_EQ(*ParseKeepAliveResponse(R"({"result":{"header":{"revision":"2"},"ID":"42","TTL":"10"}})"
                                    "\n",
                                    42),
            std::chrono::seconds(10));
  EXPECT_EQ(ParseKeepAliveResponse(R"({"result":{"header":{},"ID":"42"}})", 42).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(ParseKeepAliveResponse("oops", 42).error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(
      ParseKeepAliveResponse(
          R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}})", 42)
          .error()
          .code,
      ErrorCode::kUnavailable);
  EXPECT_EQ(
      ParseWatchMessage(R"({"error":{"grpc_code":4,"message":"context deadline"}})").error().code,
      ErrorCode::kTimeout);
  auto ttl = ParseTimeToLiveResponse(R"({"header":{"revision":"2"},"ID":"1","TTL":"-1"})");
  ASSERT_TRUE(ttl);
  EXPECT_EQ(ttl->ttl, std::chrono::seconds(-1));
  EXPECT_EQ(
      ParseLeaseGrantResponse(R"({"header":{"revision":"2"},"ID":"0","TTL":"5"})").error().code,
      ErrorCode::kCorrupt);
}

// Mutated answers (bytes flipped, cut, duplicated) never crash: each parses or is kCorrupt.
TEST(ParseTest, MutatedAnswersNeverCrash) {
  const std::vector<std::string> seeds = {
      R"({"header":{"revision":"9"},"kvs":[{"key":"YQ==","create_revision":"4",)"
      R"("mod_revision":"9","version":"2","value":"dmFs","lease":"7"}],"count":"1"})",
      R"({"header":{"revision":"5"},"succeeded":true,"responses":[{"response_range":)"
      R"({"header":{"revision":"5"},"kvs":[{"key":"YQ==","mod_revision":"5"}]}}]})",
      R"({"result":{"header":{"revision":"8"},"events":[{"type":"DELETE","kv":{"key":"Yg==",)"
      R"("mod_revision":"8"}}]}})",
  };
  std::mt19937 rng(7);
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string body = seeds[static_cast<std::size_t>(i) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const std::size_t at = rng() % body.size();
      switch (rng() % 4) {
        case 0:
          body[at] = static_cast<char>(rng() & 0xff);
          break;
        case 1:
          body.resize(at);
          break;
        case 2:
          body.insert(at, body.substr(at, rng() % 16));
          break;
        default:
          body.erase(at, 1 + rng() % 8);
          break;
      }
    }
    auto txn = ParseTxnResponse(body, 1, 0);
    if (!txn) {
      EXPECT_EQ(txn.error().code, ErrorCode::kCorrupt) << body;
    }
    auto watch = ParseWatchMessage(body);
    if (!watch) {
      EXPECT_EQ(watch.error().code, ErrorCode::kCorrupt) << body;
    }
    auto range = ParseRangeResponse(body);
    if (range) {
      ++parsed;
    } else {
      EXPECT_EQ(range.error().code, ErrorCode::kCorrupt) << body;
    }
  }
  EXPECT_GT(parsed, 0);  // some mutations stay valid: the check is not vacuous
}

TEST(ErrorMappingTest, GatewayErrors) {
  EXPECT_EQ(
      ErrorFromStatus(404, R"({"message":"etcdserver: requested lease not found","code":5})", "x")
          .code,
      ErrorCode::kNotFound);
  EXPECT_EQ(ErrorFromStatus(503, R"({"message":"etcdserver: no leader","code":14})", "x").code,
            ErrorCode::kUnavailable);
  EXPECT_EQ(ErrorFromStatus(500, "<html>", "x").code, ErrorCode::kUnavailable);
  EXPECT_EQ(ErrorFromStatus(404, "Not Found", "x").code, ErrorCode::kCorrupt);
  EXPECT_EQ(ErrorFromStatus(400,
                            R"({"message":"mvcc: required revision has been compacted",)"
                            R"("code":11})",
                            "x")
                .code,
            ErrorCode::kCompacted);
  EXPECT_TRUE(ErrorMeansNotApplied(R"({"message":"etcdserver: no leader"})"));
  EXPECT_FALSE(ErrorMeansNotApplied(R"({"message":"etcdserver: request timed out"})"));
}

TEST(EndpointTest, Parses) {
  auto a = ParseEndpoint("127.0.0.1:2379");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 2379);
  auto b = ParseEndpoint("http://localhost:23790/");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "localhost");
  EXPECT_EQ(b->port, 23790);
  auto v6 = ParseEndpoint("http://[::1]:2379");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  for (const char* bad : {"", "host", ":2379", "host:", "host:0", "host:70000", "host:12ab",
                          "https://h:1", "http://h:1/path"}) {
    EXPECT_EQ(ParseEndpoint(bad).error().code, ErrorCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace pgwarden::dcs::etcd3
