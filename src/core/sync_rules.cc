// The synchronous-replication rules of the decision core that need no Turn: who may take over
// after the primary is lost (the `sync` key's candidate rule), which quorum a `sync` key may
// safely carry, and which standbys lag too far to be synchronous (maximum_lag_on_syncnode;
// docs/sync-replication.md). Pure functions.
#include <algorithm>

#include "core/decide.h"

namespace pgwarden::core {

bool SyncAllowsTakeover(const ClusterView& view, const MemberName& name) {
  if (!view.sync || view.sync->leader.str().empty()) return true;
  const auto& list = view.sync->sync_standby;
  if (name == view.sync->leader) return true;
  if (view.sync->quorum == 0) return std::find(list.begin(), list.end(), name) != list.end();
  return list.size() >= static_cast<size_t>(view.sync->quorum) + 1;
}

std::string SyncQuorumRefusal(const ClusterView& view, const MemberName& name, Lsn position,
                              const std::map<MemberName, Lsn>& seen) {
  if (!view.sync || view.sync->leader.str().empty() || name == view.sync->leader) return "";
  const SyncState& s = *view.sync;
  size_t vouch = 0;
  std::string behind;
  for (const MemberName& m : s.sync_standby) {
    if (m == name) {
      ++vouch;
      continue;
    }
    auto it = seen.find(m);
    if (it == seen.end()) continue;
    if (it->second <= position) {
      ++vouch;
    } else {
      behind += " " + m.str() + " is ahead";
    }
  }
  const size_t need = static_cast<size_t>(s.quorum) + 1;
  if (vouch >= need) return "";
  return "sync (leader " + s.leader.str() + ") needs " + std::to_string(need) + " of its " +
         std::to_string(s.sync_standby.size()) + " listed members at or behind us, " +
         std::to_string(vouch) + " are" + (behind.empty() ? "" : ";" + behind);
}

std::optional<int> SafeQuorum(const std::vector<MemberName>& set, int known_quorum,
                              const std::vector<SyncStandbyNames>& settings) {
  const int n = static_cast<int>(set.size());
  int q = std::max(0, known_quorum);
  for (const SyncStandbyNames& st : settings) {
    // '' and '*' put a commit on no member of the set for sure.
    if (st.names.empty() || st.count <= 0) return std::nullopt;
    int outside = 0;
    for (const MemberName& m : st.names) {
      if (std::find(set.begin(), set.end(), m) == set.end()) ++outside;
    }
    // A commit is on `count` listed standbys, at least count - outside of them in the set.
    q = std::max(q, n - (st.count - outside));
  }
  if (n == 0 || q >= n) return std::nullopt;
  return q;
}

std::map<MemberName, uint64_t> LaggingStandbys(const std::vector<StandbyReplication>& eligible,
                                               const HaConfig& config) {
  std::map<MemberName, uint64_t> out;
  if (config.maximum_lag_on_syncnode <= 0 || eligible.size() < 2) return out;
  auto position = [&](const StandbyReplication& r) {
    switch (config.sync_lag_position) {
      case SyncLagPosition::kWrite:
        return r.write_lsn.value_or(r.flush_lsn);
      case SyncLagPosition::kReplay:
        return r.replay_lsn.value_or(r.flush_lsn);
      case SyncLagPosition::kFlush:
        break;
    }
    return r.flush_lsn;
  };
  Lsn best;
  for (const StandbyReplication& r : eligible) best = std::max(best, position(r));
  const auto max_lag = static_cast<uint64_t>(config.maximum_lag_on_syncnode);
  for (const StandbyReplication& r : eligible) {
    const uint64_t lag = best.BytesSince(position(r));
    if (lag > max_lag) out[r.name] = lag;
  }
  return out;
}

}  // namespace pgwarden::core
