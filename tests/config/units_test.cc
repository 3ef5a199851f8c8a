#include "config/units.h"

#include <gtest/gtest.h>

#include "config/ha_timing.h"

namespace pgwarden::config {
namespace {

using std::chrono::milliseconds;

milliseconds Ms(std::string_view text) {
  Result<milliseconds> d = ParseDuration(text);
  EXPECT_TRUE(d.has_value()) << text << ": " << (d ? "" : d.error().message);
  return d.value_or(milliseconds(-1));
}

std::string DurationError(std::string_view text) {
  Result<milliseconds> d = ParseDuration(text);
  EXPECT_FALSE(d.has_value()) << text;
  return d ? "" : d.error().message;
}

TEST(ParseDuration, BareNumbersAreSecondsAsInPatroni) {
  EXPECT_EQ(Ms("30"), milliseconds(30'000));
  EXPECT_EQ(Ms("0"), milliseconds(0));
  EXPECT_EQ(Ms("0.5"), milliseconds(500));
  EXPECT_EQ(Ms("1.25"), milliseconds(1250));
  EXPECT_EQ(Ms(" 10 "), milliseconds(10'000));
}

TEST(ParseDuration, Units) {
  EXPECT_EQ(Ms("500ms"), milliseconds(500));
  EXPECT_EQ(Ms("5s"), milliseconds(5000));
  EXPECT_EQ(Ms("1.5s"), milliseconds(1500));
  EXPECT_EQ(Ms("1min"), milliseconds(60'000));
  EXPECT_EQ(Ms("2m"), milliseconds(120'000));
  EXPECT_EQ(Ms("1m30s"), milliseconds(90'000));
  EXPECT_EQ(Ms("1h"), milliseconds(3'600'000));
  EXPECT_EQ(Ms("10 seconds"), milliseconds(10'000));
  EXPECT_EQ(Ms("30min"), milliseconds(1'800'000));
}

TEST(ParseDuration, RejectsWhatIsNotADuration) {
  EXPECT_NE(DurationError("-1").find("must not be negative"), std::string::npos);
  EXPECT_NE(DurationError("5 parsecs").find("unknown duration unit `parsecs`"), std::string::npos);
  EXPECT_NE(DurationError("fast").find("expected a duration"), std::string::npos);
  EXPECT_NE(DurationError("").find("got nothing"), std::string::npos);
  EXPECT_NE(DurationError("1.0005s").find("not a whole number of milliseconds"), std::string::npos);
  EXPECT_NE(DurationError("1m30").find("expected a duration"), std::string::npos);
  EXPECT_NE(DurationError("99999999999999999999").find("expected a duration"), std::string::npos);
}

TEST(ParseByteSize, IntegersAndPostgresUnits) {
  EXPECT_EQ(ParseByteSize("1048576").value(), 1048576u);
  EXPECT_EQ(ParseByteSize("16MB").value(), 16u << 20);
  EXPECT_EQ(ParseByteSize("512kB").value(), 512u << 10);
  EXPECT_EQ(ParseByteSize("1GB").value(), 1u << 30);
  EXPECT_EQ(ParseByteSize("0.5MB").value(), 512u << 10);
  EXPECT_FALSE(ParseByteSize("-1").has_value());
  EXPECT_FALSE(ParseByteSize("12 apples").has_value());
  EXPECT_FALSE(ParseByteSize("0.1B").has_value());
}

TEST(FormatDuration, ShortestExactFormReadsBack) {
  for (int64_t ms : {0, 1, 250, 500, 1000, 1500, 2000, 60'000, 90'000, 3'600'000, 86'400'000}) {
    milliseconds d(ms);
    EXPECT_EQ(Ms(FormatDuration(d)), d) << FormatDuration(d);
    EXPECT_EQ(Ms(FormatSeconds(d)), d) << FormatSeconds(d);
  }
  EXPECT_EQ(FormatDuration(milliseconds(500)), "500ms");
  EXPECT_EQ(FormatDuration(milliseconds(2000)), "2s");
  EXPECT_EQ(FormatDuration(milliseconds(60'000)), "1min");
  EXPECT_EQ(FormatSeconds(milliseconds(1250)), "1.25");
  EXPECT_EQ(FormatSeconds(milliseconds(30'000)), "30");
}

// The defaults must satisfy the keep-alive rule for every ttl the validator accepts, or a
// config that sets only ttl would be rejected for keys it never mentioned.
TEST(HaTiming, DerivedKeepaliveSatisfiesTheRuleForEveryValidTtl) {
  for (int64_t s = HaTiming::kMinTtl.count(); s <= HaTiming::kMaxTtl.count(); ++s) {
    HaTiming t = HaTiming::Resolve(std::chrono::seconds(s), HaTiming::kDefaultLoopWait,
                                   HaTiming::kDefaultRetryTimeout, std::nullopt, std::nullopt);
    ASSERT_EQ(t.CheckKeepaliveRule(), std::nullopt) << "ttl " << s;
    ASSERT_EQ(t.CheckLoopRule(), std::nullopt) << "ttl " << s;
  }
}

TEST(HaTiming, DefaultsMeetTheFailoverTarget) {
  HaTiming t;
  EXPECT_EQ(t.ttl, std::chrono::seconds(2));
  EXPECT_EQ(t.keepalive_interval, milliseconds(500));
  EXPECT_EQ(t.keepalive_timeout, milliseconds(500));
  EXPECT_EQ(t.FenceAfter(), milliseconds(1500));
  EXPECT_EQ(t.CheckKeepaliveRule(), std::nullopt);
  EXPECT_EQ(t.CheckLoopRule(), std::nullopt);
  EXPECT_EQ(t.loop_wait + t.retry_timeout + HaTiming::kFenceMargin, t.ttl);
  // Worst-case host-crash failover ~ ttl + detection/election/promotion (~0.5 s): <= 3 s.
  EXPECT_LE(t.ttl + milliseconds(500), milliseconds(3000));
}

TEST(HaTiming, LoopRuleNamesTheNumbers) {
  HaTiming t = HaTiming::Resolve(std::chrono::seconds(2), milliseconds(1000), milliseconds(1000),
                                 std::nullopt, std::nullopt);
  EXPECT_EQ(t.CheckLoopRule(),
            "loop_wait (1s) + retry_timeout (1s) + fence margin (500ms) = 2500ms must not exceed "
            "ttl (2s): a leader must finish one HA loop turn and one etcd request before it has "
            "to fence itself; lower loop_wait or retry_timeout, or raise ttl to at least 3s");
}

TEST(HaTiming, RuleNamesTheNumbersAndWhatWouldFit) {
  HaTiming t = HaTiming::Resolve(std::chrono::seconds(2), HaTiming::kDefaultLoopWait,
                                 HaTiming::kDefaultRetryTimeout, milliseconds(1000), std::nullopt);
  std::optional<std::string> bad = t.CheckKeepaliveRule();
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(*bad,
            "ttl 2s is too short for the keep-alive cadence: 2 x keepalive_interval (1s) + "
            "keepalive_timeout (1s) + fence margin (500ms) = 3500ms must not exceed ttl, so that "
            "one lost keep-alive does not demote the primary; raise ttl to at least 4s or lower "
            "pgwarden.keepalive_interval to at most 250ms");
  t.keepalive_timeout = milliseconds(300);
  bad = t.CheckKeepaliveRule();
  ASSERT_TRUE(bad.has_value());
  EXPECT_NE(bad->find("lower pgwarden.keepalive_interval to at most 600ms"), std::string::npos)
      << *bad;
}

}  // namespace
}  // namespace pgwarden::config
