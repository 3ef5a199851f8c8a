// The leader's management of synchronous replication: the `sync` key and
// synchronous_standby_names, plain (FIRST n) and quorum (ANY k) modes, in the order that keeps
// every acknowledged commit on a member that can be promoted (docs/sync-replication.md).
#include <algorithm>
#include <utility>

#include "core/turn.h"

namespace pgwarden::core::internal {

bool Turn::InSyncKey(const MemberName& name) const {
  const auto& s = view_->sync;
  return s && s->leader == cfg_.name &&
         std::find(s->sync_standby.begin(), s->sync_standby.end(), name) != s->sync_standby.end();
}

// Before our PostgreSQL starts accepting writes with synchronous_standby_names reset (a
// promotion, a start as primary), `sync` must list nobody but us: from then on only we are
// known to hold every acknowledged commit. The CAS compares the revision read, not the
// writer, so a key left by a former leader never blocks us. A failed write skips the rest.
void Turn::ClearSyncBeforeWrites() {
  if (!cfg_.synchronous_mode) return;
  const auto& s = view_->sync;
  if (s && s->leader == cfg_.name && s->sync_standby.empty()) return;
  Act(WriteSync{{}, s ? s->mod_revision : 0});
}

// The leader with a running primary: keep synchronous_standby_names and `sync` such that every
// member listed in `sync` holds every acknowledged commit (docs/sync-replication.md):
//  1. shrink `sync` to its members that stay picked and are reported synchronous (CAS);
//  2. then change synchronous_standby_names to the picked set;
//  3. grow `sync` with a picked standby only once PostgreSQL reports it synchronous under the
//     applied setting and it has flushed what the primary had flushed when it became so.
void Turn::SyncReplication() {
  if (cfg_.synchronous_mode && cfg_.synchronous_quorum) {
    QuorumReplication();
    return;
  }
  d_.next.quorum_since.reset();
  const ClusterView& v = *view_;
  const auto& s = v.sync;
  const int64_t rev = s ? s->mod_revision : 0;
  // A key written in quorum mode (quorum > 0) does not say that each listed member holds every
  // commit: treat it as listing nobody (it is rewritten first).
  const bool ours = s && s->leader == cfg_.name && s->quorum == 0;
  if (!cfg_.synchronous_mode) {
    d_.next.sync_ready_at.clear();
    if (s && (!ours || !s->sync_standby.empty())) Act(WriteSync{{}, rev});
    // Back to asynchronous (after `sync` lists nobody). An unknown setting (nullopt) is left
    // alone: the shell's restarts and config rewrites leave synchronous_standby_names empty.
    if (pg_.sync_standby_names && !(*pg_.sync_standby_names == SyncStandbyNames{})) {
      Act(SetSynchronousStandbys{{}, 0, false});
    }
    return;
  }
  const std::vector<MemberName> key = ours ? s->sync_standby : std::vector<MemberName>{};
  auto contains = [](const std::vector<MemberName>& set, const MemberName& n) {
    return std::find(set.begin(), set.end(), n) != set.end();
  };
  const SyncStandbyNames* applied = pg_.sync_standby_names ? &*pg_.sync_standby_names : nullptr;
  // Standbys reported synchronous under the applied setting, and since when.
  std::map<MemberName, const StandbyReplication*> sync_rows;
  for (const StandbyReplication& r : pg_.replication) {
    if (r.sync && r.streaming && applied && contains(applied->names, r.name)) {
      sync_rows[r.name] = &r;
    }
  }
  std::map<MemberName, Lsn> ready_at;
  for (const auto& [name, row] : sync_rows) {
    auto it = mem_.sync_ready_at.find(name);
    ready_at[name] = it != mem_.sync_ready_at.end() ? it->second : pg_.flush_lsn;
  }
  d_.next.sync_ready_at = ready_at;
  auto ready = [&](const MemberName& n) {
    auto it = sync_rows.find(n);
    return it != sync_rows.end() && it->second->flush_lsn >= ready_at[n];
  };
  // Candidates: members already in `sync` first (no churn), then those already synchronous,
  // then by flushed position, then by name.
  std::vector<const StandbyReplication*> cands = SyncCandidates();
  std::sort(cands.begin(), cands.end(), [&](const auto* a, const auto* b) {
    const bool ka = contains(key, a->name), kb = contains(key, b->name);
    if (ka != kb) return ka;
    const bool sa = sync_rows.count(a->name) > 0, sb = sync_rows.count(b->name) > 0;
    if (sa != sb) return sa;
    if (a->flush_lsn != b->flush_lsn) return a->flush_lsn > b->flush_lsn;
    return a->name < b->name;
  });
  std::vector<MemberName> picked;
  const size_t want_count = static_cast<size_t>(std::max(1, cfg_.synchronous_node_count));
  for (const auto* c : cands) {
    if (picked.size() < want_count) picked.push_back(c->name);
  }
  std::sort(picked.begin(), picked.end());
  const SyncStandbyNames want{picked, static_cast<int>(picked.size()),
                              picked.empty() && cfg_.synchronous_mode_strict};

  // 1. Shrink.
  std::vector<MemberName> shrunk;
  for (const MemberName& n : key) {
    if (contains(picked, n) && sync_rows.count(n)) shrunk.push_back(n);
  }
  const bool shrink = !ours || shrunk != key;
  if (shrink) Act(WriteSync{shrunk, rev});
  // 2. Change synchronous_standby_names.
  if (!applied || !(*applied == want)) {
    Act(SetSynchronousStandbys{want.names, want.count, want.strict});
    WakeBy(now_ + cfg_.loop_wait / 4);
    Why("leader: synchronous standbys -> " +
        SynchronousStandbyNamesValue(SetSynchronousStandbys{want.names, want.count, want.strict}) +
        " (sync keeps " + std::to_string(shrunk.size()) + ")" + lag_note_);
    return;
  }
  // 3. Grow, in a later decision than the shrink (the CAS needs the new revision).
  std::vector<MemberName> grown = shrunk;
  for (const MemberName& n : picked) {
    if (!contains(grown, n) && ready(n)) grown.push_back(n);
  }
  std::sort(grown.begin(), grown.end());
  if (grown.size() < picked.size()) WakeBy(now_ + cfg_.loop_wait / 4);
  if (shrink || grown == shrunk) return;
  Act(WriteSync{grown, rev});
  Why("leader: recording the synchronous standbys in sync");
}

std::vector<const StandbyReplication*> Turn::SyncCandidates() {
  std::vector<const StandbyReplication*> out;
  std::vector<StandbyReplication> eligible;
  for (const StandbyReplication& r : pg_.replication) {
    const Member* m = view_->FindMember(r.name);
    if (!r.streaming || r.name == cfg_.name || !m || m->tags.nosync ||
        m->state != PgState::kRunning || m->role != MemberRole::kReplica) {
      continue;
    }
    out.push_back(&r);
    eligible.push_back(r);
  }
  const std::map<MemberName, uint64_t> lagging = LaggingStandbys(eligible, cfg_);
  lag_note_.clear();
  for (const auto& [name, lag] : lagging) {
    lag_note_ += "; " + name.str() + " lags " + std::to_string(lag) +
                 " bytes > maximum_lag_on_syncnode " + std::to_string(cfg_.maximum_lag_on_syncnode);
  }
  std::erase_if(out, [&](const StandbyReplication* r) { return lagging.count(r->name) > 0; });
  return out;
}

// Quorum mode (docs/sync-replication.md, "Quorum commit"): synchronous_standby_names =
// 'ANY k (every healthy standby)' and `sync` = {set, quorum} such that every acknowledged
// commit is on |set| - quorum members of the set. Each decision computes the key that is safe
// for what is known (SafeQuorum) and writes it (CAS) BEFORE a new setting is applied; the key
// covers the applied and the new setting during the change, and is tightened only once
// pg_stat_replication shows every walsender on the new setting and the standbys have flushed
// past the primary's flush LSN of that moment.
void Turn::QuorumReplication() {
  const ClusterView& v = *view_;
  const auto& s = v.sync;
  const int64_t rev = s ? s->mod_revision : 0;
  const bool ours = s && s->leader == cfg_.name;
  d_.next.sync_ready_at.clear();
  auto contains = [](const std::vector<MemberName>& set, const MemberName& n) {
    return std::find(set.begin(), set.end(), n) != set.end();
  };
  const std::vector<MemberName> key = ours ? s->sync_standby : std::vector<MemberName>{};
  const int key_quorum = ours ? s->quorum : 0;

  // The target: every standby that may be synchronous (SyncCandidates).
  std::vector<MemberName> cands;
  for (const StandbyReplication* r : SyncCandidates()) cands.push_back(r->name);
  std::sort(cands.begin(), cands.end());
  cands.erase(std::unique(cands.begin(), cands.end()), cands.end());
  SyncStandbyNames want;
  if (cands.empty()) {
    want.strict = cfg_.synchronous_mode_strict;
  } else {
    want.names = cands;
    want.count = std::min(static_cast<int>(cands.size()), std::max(1, cfg_.synchronous_node_count));
    want.quorum = true;
  }

  // Is the applied setting in force in every walsender? A walsender reports 'quorum' / 'sync'
  // only once it has loaded a setting that lists its standby.
  const SyncStandbyNames* applied = pg_.sync_standby_names ? &*pg_.sync_standby_names : nullptr;
  std::optional<Lsn> since;
  if (applied) {
    if (mem_.quorum_since && mem_.quorum_since->first == *applied) {
      since = mem_.quorum_since->second;
    } else {
      bool consistent = true;
      for (const StandbyReplication& r : pg_.replication) {
        if (r.streaming && !applied->names.empty() && r.sync != contains(applied->names, r.name)) {
          consistent = false;
        }
      }
      if (consistent) since = pg_.flush_lsn;
    }
  }
  d_.next.quorum_since.reset();
  if (applied && since) d_.next.quorum_since = std::make_pair(*applied, *since);

  // What is known of the commits acknowledged so far, for a candidate set: the current key
  // (each added member raises the quorum by one), or the standbys that flushed past `since`
  // (commits after `since` follow the applied setting, which SafeQuorum adds).
  auto known_quorum = [&](const std::vector<MemberName>& set) {
    int added = 0;
    for (const MemberName& n : set) added += contains(key, n) ? 0 : 1;
    int best = ours ? key_quorum + added : static_cast<int>(set.size());
    if (since) {
      int caught = 0;
      for (const StandbyReplication& r : pg_.replication) {
        if (contains(set, r.name) && r.flush_lsn >= *since) ++caught;
      }
      best = std::min(best, static_cast<int>(set.size()) - caught);
    }
    return best;
  };
  auto write_key = [&](const std::vector<MemberName>& set,
                       const std::vector<SyncStandbyNames>& settings) {
    std::optional<int> q = SafeQuorum(set, known_quorum(set), settings);
    std::vector<MemberName> names = q ? set : std::vector<MemberName>{};
    const int quorum = q ? *q : 0;
    if (ours && names == key && quorum == key_quorum) return false;
    Act(WriteSync{names, rev, quorum});
    return true;
  };
  auto same = [](const SyncStandbyNames& a, const SyncStandbyNames& b) {
    // 'FIRST n' and 'ANY n' of n names are the same rule.
    const bool equivalent = a.quorum == b.quorum || a.names.size() == static_cast<size_t>(a.count);
    return a.names == b.names && a.count == b.count && a.strict == b.strict && equivalent;
  };

  if (!applied || !same(*applied, want)) {
    // A change: first a key safe under both settings (nobody, if the applied one is not
    // confirmed), then the new setting; a failed CAS skips the change.
    if (applied && since) {
      std::vector<MemberName> set = applied->names;
      for (const MemberName& n : want.names) {
        if (!contains(set, n)) set.push_back(n);
      }
      std::sort(set.begin(), set.end());
      write_key(set, {*applied, want});
    } else if (!ours || !key.empty()) {
      Act(WriteSync{{}, rev, 0});
    }
    const SetSynchronousStandbys set{want.names, want.count, want.strict, want.quorum};
    Act(set);
    WakeBy(now_ + cfg_.loop_wait / 4);
    Why("leader: synchronous standbys -> " + SynchronousStandbyNamesValue(set) + lag_note_);
    return;
  }
  if (!since) {
    if (!ours) Act(WriteSync{{}, rev, 0});
    WakeBy(now_ + cfg_.loop_wait / 4);
    Why("leader: waiting for every walsender to load synchronous_standby_names");
    return;
  }
  const bool key_still_covers =
      ours && !key.empty() && SafeQuorum(key, key_quorum, {*applied}) == key_quorum;
  if (!SafeQuorum(applied->names, known_quorum(applied->names), {*applied}) && key_still_covers) {
    // The set cannot be narrowed yet (standbys catching up): the current key stays valid.
    WakeBy(now_ + cfg_.loop_wait / 4);
    return;
  }
  if (write_key(applied->names, {*applied})) {
    Why("leader: recording the quorum of synchronous standbys in sync");
  }
  // Not yet the tightest key (standbys still catching up): look again soon.
  const int best = static_cast<int>(want.names.size()) - want.count;
  if (!want.names.empty() && (key != want.names || key_quorum != best)) {
    WakeBy(now_ + cfg_.loop_wait / 4);
  }
}

}  // namespace pgwarden::core::internal
