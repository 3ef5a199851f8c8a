#include "core/model.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace pgwarden::core {

Timeline ClusterView::ClusterTimeline() const {
  Timeline tl(1);
  for (const HistoryEntry& e : history) {
    if (e.timeline.value() + 1 > tl.value()) tl = Timeline(e.timeline.value() + 1);
  }
  return tl;
}

const Member* ClusterView::FindMember(const MemberName& name) const {
  auto it = members.find(name);
  return it == members.end() ? nullptr : &it->second;
}

std::string FormatIso8601(SystemTime t) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch());
  const auto day_point = floor<days>(sys_time<milliseconds>(ms));
  const year_month_day ymd(day_point);
  const hh_mm_ss<milliseconds> tod(sys_time<milliseconds>(ms) - day_point);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03d+00:00",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(tod.hours().count()),
                static_cast<int>(tod.minutes().count()), static_cast<int>(tod.seconds().count()),
                static_cast<int>(tod.subseconds().count()));
  return buf;
}

Lsn LocalPostgres::EndLsn() const { return std::max({write_lsn, received_lsn, replayed_lsn}); }

}  // namespace pgwarden::core
