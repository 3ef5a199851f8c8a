// The demo application of the story: every `interval` it opens a NEW connection (or, in
// persistent mode, reuses one and reconnects after an error), inserts one event into
// `log(event_id integer not null)` with a unique increasing id, reads the count, prints
//   2026-11-26 02:45:01.123 Logged a value, overall count: 42
// or the error, and closes. It records every attempt, so that the caller can check that every
// acknowledged id survived a failover and measure the write outage.
//
// Thread-safety: Run() is called from one thread; Attempts() and RequestStop() from any.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace pgwarden::demo {

enum class AppMode { kReconnect, kPersistent };

struct DemoAppOptions {
  std::string dsn;  // libpq conninfo; connect_timeout=2 is added unless it names one
  std::chrono::milliseconds interval{300};
  AppMode mode = AppMode::kReconnect;
  std::chrono::milliseconds duration{0};  // 0: until stopped
  // Bound of one attempt (connect + insert + count): a frozen server costs at most this.
  std::chrono::milliseconds attempt_timeout{3000};
};

struct Attempt {
  SteadyTime start;
  SteadyTime end;                              // when the outcome was known
  std::chrono::system_clock::time_point wall;  // `end` on the wall clock, for display
  int64_t event_id = 0;                        // the id tried (0: never got as far as an insert)
  bool ok = false;                             // the insert was acknowledged (committed)
  SteadyTime acked;                            // when the INSERT's acknowledgement arrived
  // The server that committed the INSERT, as it reported in the same statement (RETURNING):
  // its PostgreSQL port (inet_server_port(), the member behind the proxy) and the timeline
  // it wrote on. A write acknowledged on an older timeline than the current primary's came
  // from a deposed primary (split brain).
  int server_port = 0;
  int64_t timeline = 0;
  int64_t count = 0;  // the count read after the insert
  std::string error;  // when !ok
};

class DemoApp {
 public:
  explicit DemoApp(DemoAppOptions options) : options_(std::move(options)) {}

  // Loops until RequestStop(), `duration`, or `*external_stop` becomes true. `print` receives
  // each output line (without a newline). The first successful connection creates the table if
  // needed and starts the ids after the largest one present.
  void Run(const std::function<void(const std::string&)>& print,
           const std::atomic<bool>* external_stop = nullptr);
  void RequestStop() { stop_ = true; }

  std::vector<Attempt> Attempts() const;

 private:
  void Record(Attempt a);

  DemoAppOptions options_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Attempt> attempts_;
  int64_t next_id_ = 0;  // 0: not yet read from the table
};

// The write outage seen by the application around one event, computed from its attempts.
struct Outage {
  // Largest gap between two consecutive acknowledged writes where the later one completed in
  // [from, to): last success before the failures -> first success after. nullopt when no write
  // succeeded in the window.
  std::optional<std::chrono::milliseconds> gap;
  int failed_attempts = 0;  // attempts that ended in [from, to) without an acknowledgement
  int succeeded = 0;
  std::optional<SteadyTime> first_failure;  // in the window
  std::optional<SteadyTime> recovered;      // the first success after first_failure
};
Outage MeasureOutage(const std::vector<Attempt>& attempts, SteadyTime from, SteadyTime to);

// "2026-11-26 02:45:01.123" (UTC).
std::string FormatWallTime(std::chrono::system_clock::time_point t);

// Adds connect_timeout=<s> to a conninfo (key=value form) unless it has one.
std::string WithConnectTimeout(const std::string& dsn, int seconds);

}  // namespace pgwarden::demo
