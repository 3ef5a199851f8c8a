#include "demo/summary.h"

#include <cstdio>

namespace pgwarden::demo {
namespace {

std::string Seconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace

DemoSummary Summarize(const std::vector<Attempt>& attempts, const std::vector<EventRecord>& events,
                      const std::set<int64_t>& ids_on_primary) {
  DemoSummary s;
  s.attempts = static_cast<int>(attempts.size());
  for (const Attempt& a : attempts) {
    if (!a.ok) continue;
    ++s.acknowledged;
    if (!ids_on_primary.contains(a.event_id)) ++s.lost;
  }
  for (size_t i = 0; i < events.size(); ++i) {
    const SteadyTime from = events[i].started;
    const SteadyTime to = i + 1 < events.size() ? events[i + 1].started : SteadyTime::max();
    EventSummary e;
    e.name = events[i].name;
    e.outage = MeasureOutage(attempts, from, to);
    e.healed = events[i].healed;
    e.failure = events[i].failure;
    for (const Attempt& a : attempts) {
      const bool mine = (a.end >= from || i == 0) && a.end < to;
      if (a.ok && mine && !ids_on_primary.contains(a.event_id)) ++e.lost;
    }
    if (const auto& f = events[i].freeze) {
      e.freeze = f;
      for (const Attempt& a : attempts) {
        if (!a.ok || a.acked < f->thawed || a.acked >= to) continue;
        const bool old_server = f->old_port != 0 && a.server_port == f->old_port;
        const bool old_timeline = a.timeline != 0 && a.timeline < f->new_timeline;
        if (old_server || old_timeline) ++e.stale_acks;
      }
      s.stale_acks += e.stale_acks;
    }
    s.events.push_back(std::move(e));
  }
  return s;
}

std::string RenderSummary(const DemoSummary& s) {
  std::string out = "Summary\n";
  if (s.startup) out += "  start-up: all members healthy after " + Seconds(*s.startup) + "\n";
  out += "  application: " + std::to_string(s.attempts) + " attempts, " +
         std::to_string(s.acknowledged) + " acknowledged writes, " + std::to_string(s.lost) +
         " lost\n";
  for (const EventSummary& e : s.events) {
    char name[32];
    std::snprintf(name, sizeof name, "%-11s", e.name.c_str());
    out += "  " + std::string(name) + " outage " +
           (e.outage.gap ? Seconds(*e.outage.gap) : std::string("n/a (no write succeeded)")) +
           "  failed attempts " + std::to_string(e.outage.failed_attempts) +
           "  acknowledged rows lost " + std::to_string(e.lost) + "  streaming again after " +
           (e.healed ? Seconds(*e.healed) : std::string("never")) + "\n";
    if (e.freeze) {
      const FreezeFacts& f = *e.freeze;
      out += "    frozen old primary " + f.old_leader + " (" + Seconds(f.frozen_for) +
             "): writes it acknowledged after the promotion " + std::to_string(e.stale_acks) +
             " (new leader " + f.new_leader + " on timeline " + std::to_string(f.new_timeline) +
             (f.failover ? " after " + Seconds(*f.failover) : std::string()) + ")\n";
    }
    if (!e.failure.empty()) out += "    (" + e.failure + ")\n";
  }
  out +=
      "  (outage: the longest time between two acknowledged writes, i.e. the last success\n"
      "   before the interruption to the first success after it, the attempt interval included)\n";
  return out;
}

}  // namespace pgwarden::demo
