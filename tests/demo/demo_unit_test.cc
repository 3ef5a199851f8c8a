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

// An acknowledgement from `port` on `timeline`, `ms` after kT0.
Attempt AckFrom(int ms, int64_t id, int port, int64_t timeline) {
  Attempt a = At(ms, true, id);
  a.acked = a.end;
  a.server_port = port;
  a.timeline = timeline;
  return a;
}

TEST(Summarize, FreezeCountsAcknowledgementsOfTheDeposedPrimaryAfterTheThaw) {
  FreezeFacts f;
  f.old_leader = "n1";
  f.old_port = 5001;
  f.new_leader = "n2";
  f.new_timeline = 3;
  f.thawed = kT0 + milliseconds(7000);
  f.frozen_for = milliseconds(6000);
  f.failover = milliseconds(4000);
  std::vector<Attempt> attempts = {
      AckFrom(500, 1, 5001, 2),    // the old primary before the freeze: fine
      AckFrom(5000, 2, 5002, 3),   // the new primary during the freeze: fine
      AckFrom(7100, 3, 5001, 2),   // the thawed old primary: split brain
      AckFrom(7400, 4, 5003, 2),   // an older timeline elsewhere after the thaw: split brain
      AckFrom(7700, 5, 5002, 3),   // the new primary: fine
      AckFrom(20000, 6, 5001, 4),  // after the window (n1 primary again later): not this event
  };
  std::vector<EventRecord> events = {
      {"freeze", kT0 + milliseconds(1000), milliseconds(9000), "", f},
      {"switchover", kT0 + milliseconds(15000), milliseconds(1000), ""}};
  DemoSummary s = Summarize(attempts, events, {1, 2, 3, 4, 5, 6});
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_EQ(s.events[0].stale_acks, 2);
  EXPECT_EQ(s.events[1].stale_acks, 0);
  EXPECT_EQ(s.stale_acks, 2);
  const std::string text = RenderSummary(s);
  EXPECT_NE(text.find("    frozen old primary n1 (6.00 s): writes it acknowledged after the "
                      "promotion 2 (new leader n2 on timeline 3 after 4.00 s)"),
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
