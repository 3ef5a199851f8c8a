// The pure pieces of the demo: the outage measure and the summary's loss accounting.
#include <gtest/gtest.h>

#include "demo/demo_app.h"
#include "demo/summary.h"

namespace pgwarden::demo {
namespace {

using std::chrono::milliseconds;

const SteadyTime kT0{};

Attempt At(int ms, bool ok, int64_t id) {
  Attempt a;
  a.start = kT0 + milliseconds(ms - 5);
  a.end = kT0 + milliseconds(ms);
  a.ok = ok;
  a.event_id = id;
  return a;
}

TEST(MeasureOutage, GapFromLastSuccessBeforeToFirstSuccessAfter) {
  std::vector<Attempt> attempts = {At(0, true, 1),     At(300, true, 2),  At(600, false, 3),
                                   At(2600, false, 4), At(3000, true, 5), At(3300, true, 6)};
  Outage o = MeasureOutage(attempts, kT0 + milliseconds(500), kT0 + milliseconds(10000));
  ASSERT_TRUE(o.gap);
  EXPECT_EQ(*o.gap, milliseconds(2700));  // 300 -> 3000
  EXPECT_EQ(o.failed_attempts, 2);
  EXPECT_EQ(o.succeeded, 2);
  ASSERT_TRUE(o.first_failure && o.recovered);
  EXPECT_EQ(*o.first_failure, kT0 + milliseconds(600));
  EXPECT_EQ(*o.recovered, kT0 + milliseconds(3000));
}

TEST(MeasureOutage, NoFailureIsTheLargestNormalGap) {
  std::vector<Attempt> attempts = {At(0, true, 1), At(300, true, 2), At(900, true, 3)};
  Outage o = MeasureOutage(attempts, kT0 + milliseconds(100), kT0 + milliseconds(10000));
  ASSERT_TRUE(o.gap);
  EXPECT_EQ(*o.gap, milliseconds(600));
  EXPECT_EQ(o.failed_attempts, 0);
  EXPECT_FALSE(o.first_failure);
}

TEST(MeasureOutage, NothingSucceededInTheWindow) {
  std::vector<Attempt> attempts = {At(0, true, 1), At(300, false, 2), At(600, false, 3)};
  Outage o = MeasureOutage(attempts, kT0 + milliseconds(100), kT0 + milliseconds(10000));
  EXPECT_FALSE(o.gap);
  EXPECT_EQ(o.failed_attempts, 2);
}

TEST(Summarize, CountsAcknowledgedIdsMissingOnThePrimaryPerEvent) {
  std::vector<Attempt> attempts = {At(0, true, 1),    At(300, true, 2),  At(600, false, 3),
                                   At(1000, true, 4), At(1300, true, 5), At(1600, false, 6),
                                   At(2300, true, 7)};
  std::vector<EventRecord> events = {{"switchover", kT0 + milliseconds(500), milliseconds(900), ""},
                                     {"crash", kT0 + milliseconds(1400), milliseconds(4000), ""}};
  // 2 (acknowledged before the first event) and 7 (during the crash) are missing; 3 and 6
  // failed, so their absence is no loss.
  DemoSummary s = Summarize(attempts, events, {1, 4, 5});
  EXPECT_EQ(s.acknowledged, 5);
  EXPECT_EQ(s.lost, 2);
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_EQ(s.events[0].lost, 1);
  EXPECT_EQ(s.events[1].lost, 1);
  EXPECT_EQ(s.events[1].outage.failed_attempts, 1);
  EXPECT_EQ(*s.events[1].outage.gap, milliseconds(1000));  // 1300 -> 2300
  const std::string text = RenderSummary(s);
  EXPECT_NE(text.find("switchover  outage 0.70 s  failed attempts 1  acknowledged rows lost 1  "
                      "streaming again after 0.90 s"),
            std::string::npos)
      << text;
}

TEST(WithConnectTimeout, AddsOneUnlessPresent) {
  EXPECT_EQ(WithConnectTimeout("host=a", 2), "host=a connect_timeout=2");
  EXPECT_EQ(WithConnectTimeout("host=a connect_timeout=5", 2), "host=a connect_timeout=5");
  EXPECT_EQ(WithConnectTimeout("postgresql://a/db", 2), "postgresql://a/db?connect_timeout=2");
  EXPECT_EQ(WithConnectTimeout("postgresql://a/db?x=1", 2),
            "postgresql://a/db?x=1&connect_timeout=2");
}

}  // namespace
}  // namespace pgwarden::demo
