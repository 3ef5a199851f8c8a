// The demo's summary: per event, the write outage the application saw, its failed attempts,
// the acknowledged rows missing on the final primary and the time until every member streamed
// again. Pure: built from the application's attempts and the ids read back.
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "demo/demo_app.h"

namespace pgwarden::demo {

struct EventRecord {
  std::string name;                                 // "switchover", "crash"
  SteadyTime started;                               // when the demo triggered it
  std::optional<std::chrono::milliseconds> healed;  // until all members streamed again
  std::string failure;                              // set when the cluster did not recover in time
};

struct EventSummary {
  std::string name;
  Outage outage;
  int lost = 0;  // acknowledged ids (acknowledged during this event's window) not on the primary
  std::optional<std::chrono::milliseconds> healed;
  std::string failure;
};

struct DemoSummary {
  std::optional<std::chrono::milliseconds> startup;  // command -> all members healthy
  std::vector<EventSummary> events;
  int acknowledged = 0;
  int lost = 0;
  int attempts = 0;
};

// Event i's window is [started_i, started_{i+1}) (the last one: until the end). Ids acknowledged
// before the first event count for the first event.
DemoSummary Summarize(const std::vector<Attempt>& attempts, const std::vector<EventRecord>& events,
                      const std::set<int64_t>& ids_on_primary);

// The text printed at the end. Each event line reads
//   "  switchover  outage 1.23 s  failed attempts 3  acknowledged rows lost 0  streaming again
//   after 4.56 s"
std::string RenderSummary(const DemoSummary& s);

}  // namespace pgwarden::demo
