// The decision core's internals, shared by its translation units (decide.cc: the turn of each
// role; sync_turn.cc: synchronous and quorum replication on the leader). Not part of the core's
// interface: include core/decide.h.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/decide.h"

namespace pgwarden::core::internal {

// One call of Decide: the inputs plus the decision being built.
class Turn {
 public:
  Turn(const AgentMemory& memory, const Observation& obs, const HaConfig& config)
      : mem_(memory), obs_(obs), cfg_(config), pg_(obs.pg), now_(obs.now) {
    d_.next = memory;
    d_.wake_at = now_ + cfg_.loop_wait;
    d_.valid_until = now_ + cfg_.loop_wait;
    fence_ = FenceDeadline(obs.lease, config);
    lease_ok_ = obs.lease.id != 0 && !obs.lease.lost && fence_ && now_ < *fence_;
    view_ = obs.cluster ? &*obs.cluster : nullptr;
    i_hold_ = view_ && view_->leader && view_->leader->holder == cfg_.name && obs.lease.id != 0 &&
              view_->leader->lease == obs.lease.id;
    promoting_ = InFlightIs<Promote>() ||
                 (InFlightIs<StartPostgres>() &&
                  std::get<StartPostgres>(obs.in_flight->action).role == StartRole::kPrimary);
    writes_ = pg_.MayAcceptWrites() || promoting_;
  }

  Decision Run();

 private:
  template <typename A>
  bool InFlightIs() const {
    return obs_.in_flight && std::holds_alternative<A>(obs_.in_flight->action);
  }
  template <typename A>
  const Outcome* LastOutcome() const {
    for (auto it = obs_.last.rbegin(); it != obs_.last.rend(); ++it) {
      if (std::holds_alternative<A>(it->action)) return &*it;
    }
    return nullptr;
  }
  template <typename A>
  bool LastConflicted() const {
    const Outcome* o = LastOutcome<A>();
    return o && !o->result && o->result.error().code == ErrorCode::kConflict;
  }

  void Act(Action a) { d_.actions.push_back(std::move(a)); }
  void Why(std::string reason) { d_.reason = std::move(reason); }
  void WakeBy(SteadyTime t) { d_.wake_at = std::min(d_.wake_at, std::max(t, now_)); }
  // The decision contains leader-only actions: none may start after the fence deadline.
  void LeaderOnly() {
    if (fence_) d_.valid_until = *fence_;
  }

  bool FenceFirst();
  void NoView();
  void MaybeWriteMember();
  void MaybeUpdateStatus();
  bool DataDirectory();
  bool OperationInFlight();
  void LeaderTurn();
  bool SwitchoverTurn();
  void SwitchoverStoppedTurn();
  void PausedLeaderTurn();
  void FollowerTurn();
  void ElectionTurn();
  bool Diverged(bool conservative) const;
  bool FreshProbes() const;
  void RequestProbes(std::vector<MemberName> peers);
  std::vector<MemberName> OtherMembers() const;
  std::optional<MemberName> CloneSource() const;
  void TakeLeadership(const std::string& why);
  void SyncReplication();
  void QuorumReplication();
  // The standbys that may be synchronous: streaming replicas published as running, not tagged
  // nosync, and not too far behind (maximum_lag_on_syncnode; those left out are named in
  // lag_note_ for the reason).
  std::vector<const StandbyReplication*> SyncCandidates();
  // The positions of the running replicas in the fresh probe answers (empty without).
  std::map<MemberName, Lsn> Seen() const;
  void ClearSyncBeforeWrites();
  bool InSyncKey(const MemberName& name) const;

  const AgentMemory& mem_;
  const Observation& obs_;
  const HaConfig& cfg_;
  const LocalPostgres& pg_;
  const SteadyTime now_;
  Decision d_;
  std::optional<SteadyTime> fence_;
  bool lease_ok_ = false;
  const ClusterView* view_ = nullptr;
  bool i_hold_ = false;
  bool promoting_ = false;  // a promotion or a start as primary is in flight
  bool writes_ = false;     // PostgreSQL accepts writes, or is about to
  std::string lag_note_;    // "; n2 lags 9000 bytes > maximum_lag_on_syncnode 4096", or ""
};

// "1234 bytes": how far `ahead` is past `behind`, for reasons.
std::string Lag(Lsn ahead, Lsn behind);
// A member name as a replication slot name (lower case, [a-z0-9_]).
std::string SlotName(const MemberName& name);

}  // namespace pgwarden::core::internal
