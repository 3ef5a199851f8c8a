// Time, injected. Leases, deadlines and timeouts use the monotonic clock (SteadyTime); the
// wall clock (SystemTime) is only for display and for timestamps that leave the process
// (history entries, scheduled switchovers). Code that needs "now" takes a Clock&, so tests
// and the simulation drive time with FakeClock.
#pragma once

#include <atomic>
#include <chrono>

namespace pgwarden {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;
using SystemTime = std::chrono::system_clock::time_point;
using Duration = std::chrono::nanoseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Thread-safe. Implementations must be monotonic for SteadyNow().
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime SteadyNow() const = 0;
  virtual SystemTime SystemNow() const = 0;
};

// The process clocks.
class RealClock final : public Clock {
 public:
  SteadyTime SteadyNow() const override { return SteadyClock::now(); }
  SystemTime SystemNow() const override { return std::chrono::system_clock::now(); }
  static RealClock& Instance();
};

// A clock that moves only when told to. Thread-safe: reads and Advance() may race.
// Starts at an arbitrary non-zero point so that "time zero" bugs show up.
class FakeClock final : public Clock {
 public:
  FakeClock();
  SteadyTime SteadyNow() const override;
  SystemTime SystemNow() const override;
  void Advance(Duration d);

 private:
  std::atomic<Duration::rep> offset_{0};
  SteadyTime steady_base_;
  SystemTime system_base_;
};

}  // namespace pgwarden
