// Parsers and formatters of the API layer.
#include <gtest/gtest.h>

#include "api/http_server.h"
#include "api/patroni_api.h"

namespace pgwarden::api {
namespace {

using std::chrono::seconds;

TEST(ParseByteSize, BytesAndPatroniUnits) {
  EXPECT_EQ(ParseByteSize("0"), 0u);
  EXPECT_EQ(ParseByteSize("1048576"), 1048576u);
  EXPECT_EQ(ParseByteSize("100B"), 100u);
  EXPECT_EQ(ParseByteSize("16kB"), 16u * 1024);
  EXPECT_EQ(ParseByteSize("10MB"), 10u * 1024 * 1024);
  EXPECT_EQ(ParseByteSize("1GB"), uint64_t{1} << 30);
  EXPECT_EQ(ParseByteSize("2TB"), uint64_t{2} << 40);
  EXPECT_EQ(ParseByteSize(" 5MB "), 5u * 1024 * 1024);
  for (const char* bad :
       {"", "MB", "10mb", "10 MB", "-1", "1.5MB", "10KB", "99999999999999999999", "20000000TB"}) {
    EXPECT_FALSE(ParseByteSize(bad).has_value()) << bad;
  }
}

TEST(ParseTimestamp, Iso8601WithZone) {
  const SystemTime base = SystemTime(seconds(1569319200));  // 2019-09-24T10:00:00Z
  EXPECT_EQ(*ParseTimestamp("2019-09-24T10:00:00Z"), base);
  EXPECT_EQ(*ParseTimestamp("2019-09-24T10:00Z"), base);
  EXPECT_EQ(*ParseTimestamp("2019-09-24T12:00+02"), base);
  EXPECT_EQ(*ParseTimestamp("2019-09-24T12:00:00+02:00"), base);
  EXPECT_EQ(*ParseTimestamp("2019-09-24 05:30:00-0430"), base);
  EXPECT_EQ(*ParseTimestamp("2019-09-24T10:00:00.250+00:00"),
            base + std::chrono::milliseconds(250));

  auto no_zone = ParseTimestamp("2019-09-24T10:00:00");
  ASSERT_FALSE(no_zone);
  EXPECT_EQ(no_zone.error().code, ErrorCode::kInvalidArgument);
  for (const char* bad :
       {"", "tomorrow", "2019-13-01T00:00Z", "2019-02-30T00:00Z", "2019-09-24T25:00Z", "2019-09-24",
        "2019-09-24T10:00:00+2", "2019-09-24T10:00:00Zjunk", "2019-09-24T10:00:00.Z"}) {
    auto r = ParseTimestamp(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kCorrupt) << bad;
  }
}

TEST(FormatTimestamp, LikePostgresInUtc) {
  EXPECT_EQ(FormatTimestamp(SystemTime(seconds(1724873966)) + std::chrono::microseconds(352526)),
            "2024-08-28 19:39:26.352526+00:00");
  auto t = *ParseTimestamp("2030-01-02T03:04:05.000006Z");
  EXPECT_EQ(FormatTimestamp(t), "2030-01-02 03:04:05.000006+00:00");
}

TEST(SplitHostPort, Forms) {
  EXPECT_EQ(*SplitHostPort("127.0.0.1:8008"),
            std::make_pair(std::string("127.0.0.1"), uint16_t{8008}));
  EXPECT_EQ(*SplitHostPort("[::1]:80"), std::make_pair(std::string("::1"), uint16_t{80}));
  EXPECT_EQ(*SplitHostPort(":0"), std::make_pair(std::string(""), uint16_t{0}));
  EXPECT_EQ(*SplitHostPort("*:8008"), std::make_pair(std::string("*"), uint16_t{8008}));
  for (const char* bad : {"", "8008", "h:", "h:65536", "h:80x", "::1:80", "[::1]80", "[::1]"}) {
    EXPECT_FALSE(SplitHostPort(bad)) << bad;
  }
}

TEST(Base64Encode, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("admin:s3cret"), "YWRtaW46czNjcmV0");
}

TEST(MemberTags, LookupForTagFilters) {
  MemberTags tags;
  tags.nofailover = true;
  tags.failover_priority = 3;
  tags.user["dc"] = "east";
  EXPECT_EQ(tags.Lookup("nofailover"), "true");
  EXPECT_EQ(tags.Lookup("noloadbalance"), "false");
  EXPECT_EQ(tags.Lookup("failover_priority"), "3");
  EXPECT_EQ(tags.Lookup("dc"), "east");
  EXPECT_FALSE(tags.Lookup("rack").has_value());
}

}  // namespace
}  // namespace pgwarden::api
