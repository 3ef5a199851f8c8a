#include "common/clock.h"

#include <gtest/gtest.h>

namespace pgwarden {
namespace {

TEST(FakeClock, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  auto t0 = clock.SteadyNow();
  auto w0 = clock.SystemNow();
  EXPECT_EQ(clock.SteadyNow(), t0);
  clock.Advance(std::chrono::milliseconds(1500));
  EXPECT_EQ(clock.SteadyNow() - t0, std::chrono::milliseconds(1500));
  EXPECT_EQ(clock.SystemNow() - w0, std::chrono::milliseconds(1500));
}

TEST(RealClock, IsMonotonic) {
  auto& clock = RealClock::Instance();
  auto a = clock.SteadyNow();
  auto b = clock.SteadyNow();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace pgwarden
