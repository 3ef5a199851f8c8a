#include "common/clock.h"

namespace pgwarden {

RealClock& RealClock::Instance() {
  static RealClock clock;
  return clock;
}

FakeClock::FakeClock()
    : steady_base_(SteadyTime(std::chrono::hours(1000))),
      system_base_(SystemTime(std::chrono::seconds(1'800'000'000))) {}

SteadyTime FakeClock::SteadyNow() const { return steady_base_ + Duration(offset_.load()); }
SystemTime FakeClock::SystemNow() const {
  return system_base_ + std::chrono::duration_cast<SystemTime::duration>(Duration(offset_.load()));
}
void FakeClock::Advance(Duration d) { offset_.fetch_add(d.count()); }

}  // namespace pgwarden
