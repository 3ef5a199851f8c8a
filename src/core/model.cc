#include "core/model.h"

#include <algorithm>

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

Lsn LocalPostgres::EndLsn() const { return std::max({write_lsn, received_lsn, replayed_lsn}); }

}  // namespace pgwarden::core
