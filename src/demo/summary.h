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

// What the demo learnt during a `freeze` event, for the split-brain check.
struct FreezeFacts {
  std::string old_leader;  // the frozen primary
  int old_port = 0;        // its PostgreSQL port
  std::string new_leader;
  int64_t new_timeline = 0;  // the new primary's timeline, read from it after its promotion
  SteadyTime thawed;         // SIGCONT sent; the new promotion happened before
  std::chrono::milliseconds frozen_for{0};
  std::optional<std::chrono::milliseconds> failover;  // freeze -> new leader seen
};

struct EventRecord {
  std::string name;                                 // "switchover", "crash", "freeze"
  SteadyTime started;                               // when the demo triggered it
  std::optional<std::chrono::milliseconds> healed;  // until all members streamed again
  std::string failure;                              // set when the cluster did not recover in time
  std::optional<FreezeFacts> freeze;                // set for a `freeze` event
};

struct EventSummary {
  std::string name;
  Outage outage;
  int lost = 0;  // acknowledged ids (acknowledged during this event's window) not on the primary
  std::optional<std::chrono::milliseconds> healed;
  std::string failure;
  std::optional<FreezeFacts> freeze;
  // Freeze only: writes the application saw acknowledged, at or after the thaw and within the
  // event's window, by the frozen old primary (its port) or on a timeline older than the new
  // primary's. Sound because the old primary was stopped from before its lease ran out until
  // the thaw, and the thaw came after the new promotion: any such acknowledgement was given by
  // a deposed primary after the promotion.
  int stale_acks = 0;
};

struct DemoSummary {
  std::optional<std::chrono::milliseconds> startup;  // command -> all members healthy
  std::vector<EventSummary> events;
  int acknowledged = 0;
  int lost = 0;
  int attempts = 0;
  int stale_acks = 0;  // over every freeze event
};

// Event i's window is [started_i, started_{i+1}) (the last one: until the end). Ids acknowledged
// before the first event count for the first event.
DemoSummary Summarize(const std::vector<Attempt>& attempts, const std::vector<EventRecord>& events,
                      const std::set<int64_t>& ids_on_primary);

// The text printed at the end. Each event line reads
//   "  switchover  outage 1.23 s  failed attempts 3  acknowledged rows lost 0  streaming again
//   after 4.56 s"
// and a freeze event adds
//   "    frozen old primary n1 (6.00 s): writes it acknowledged after the promotion 0 (new
//   leader n2 on timeline 3 after 4.10 s)"
std::string RenderSummary(const DemoSummary& s);

}  // namespace pgwarden::demo
