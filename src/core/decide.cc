#include "core/decide.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace pgwarden::core {
namespace {

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

std::string Lag(Lsn ahead, Lsn behind) {
  return std::to_string(ahead.BytesSince(behind)) + " bytes";
}

std::string SlotName(const MemberName& name) {
  std::string out;
  for (char c : name.str()) {
    out += std::isalnum(static_cast<unsigned char>(c))
               ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
               : '_';
  }
  return out;
}

Decision Turn::Run() {
  if (view_) d_.next.last_view_at = now_;
  if (const Outcome* o = LastOutcome<Rewind>(); o && !o->result && view_) {
    d_.next.rewind_failed_on = view_->ClusterTimeline();
  } else if (o && o->result) {
    d_.next.rewind_failed_on.reset();
  }
  if (view_ && view_->leader && view_->leader->holder != cfg_.name) {
    d_.next.last_leader = view_->leader->holder;
  }

  // Fencing comes before anything else: a primary that may have lost its lease stops writes
  // before it does anything at all, in particular before it touches etcd.
  // Maintenance mode does not switch the fence off (docs/ha-core.md, "Maintenance mode").
  if (FenceFirst()) return std::move(d_);
  if (!view_) {
    NoView();
    if (cfg_.pause) d_.reason = "PAUSE: " + d_.reason;
    return std::move(d_);
  }
  if (!DataDirectory() && !OperationInFlight()) {
    if (i_hold_) {
      LeaderTurn();
    } else if (view_->leader && view_->leader->holder == cfg_.name) {
      // Our name on another lease: a previous incarnation of this agent (crashed and
      // restarted). Our PostgreSQL is not accepting writes (FenceFirst), so the key is stale:
      // remove it (compare-and-delete on our name) and let an election run.
      Act(ReleaseLeader{});
      Why("removing the leader key left by our previous incarnation");
    } else if (view_->leader) {
      FollowerTurn();
    } else {
      ElectionTurn();
    }
  }
  if (i_hold_ && lease_ok_) {
    if (fence_) WakeBy(*fence_);
  }
  MaybeWriteMember();
  if (cfg_.pause) d_.reason = "PAUSE: " + d_.reason;
  return std::move(d_);
}

bool Turn::FenceFirst() {
  if (!writes_) return false;
  std::string why;
  if (obs_.lease.id == 0) {
    why = "no etcd lease";
  } else if (obs_.lease.lost) {
    why = "the etcd lease is lost";
  } else if (!fence_ || now_ >= *fence_) {
    why = "no keep-alive confirmed within ttl - fence_margin";
  } else if (!view_ &&
             (!mem_.last_view_at || now_ >= *mem_.last_view_at + cfg_.ttl - cfg_.fence_margin)) {
    why = "etcd unreadable for ttl - fence_margin";
  } else if (LastConflicted<UpdateLeaderStatus>() || LastConflicted<AcquireLeader>() ||
             LastConflicted<WriteInitialize>()) {
    why = "a compare-and-swap on the leader key failed";
  } else if (view_ && view_->leader && !i_hold_) {
    why = "the leader key is held by " + view_->leader->holder.str();
  } else if (view_ && !view_->leader && promoting_) {
    why = "becoming primary without the leader key";
  }
  if (why.empty()) return false;
  Act(StopPostgres{StopMode::kImmediate});
  Why("fencing: " + why + "; stopping PostgreSQL immediately");
  d_.next.switchover.reset();
  d_.next.primary_start_deadline.reset();
  return true;
}

void Turn::NoView() {
  // A primary within its fence deadline keeps running; FenceFirst demotes it in time.
  d_.leader = writes_ && lease_ok_;
  if (writes_) {
    if (fence_) WakeBy(*fence_);
    if (mem_.last_view_at) WakeBy(*mem_.last_view_at + cfg_.ttl - cfg_.fence_margin);
    Why("etcd unreadable; staying primary until the fence deadline");
  } else {
    Why("etcd unreadable; waiting");
  }
}

void Turn::MaybeWriteMember() {
  if (!view_ || obs_.lease.id == 0 || obs_.lease.lost) return;
  Member m;
  m.name = cfg_.name;
  m.api_url = cfg_.api_url;
  m.conn_url = cfg_.conn_url;
  m.tags = cfg_.tags;
  m.lease = obs_.lease.id;
  m.timeline = pg_.timeline;
  m.received_lsn = pg_.received_lsn;
  m.replayed_lsn = pg_.replayed_lsn;
  m.current_lsn = pg_.write_lsn;
  m.pending_restart = pg_.pending_restart;
  switch (pg_.state) {
    case ProcessState::kStopped:
      m.state = PgState::kStopped;
      break;
    case ProcessState::kStarting:
      m.state = PgState::kStarting;
      break;
    case ProcessState::kRunning:
      m.state = PgState::kRunning;
      break;
    case ProcessState::kStopping:
      m.state = PgState::kStopping;
      break;
    case ProcessState::kCrashed:
      m.state = PgState::kCrashed;
      break;
  }
  if (pg_.data_dir != DataDirState::kInitialized) {
    m.role = MemberRole::kUninitialized;
  } else if (pg_.role == PgRole::kPrimary) {
    m.role = pg_.Running() ? MemberRole::kPrimary : MemberRole::kDemoted;
  } else {
    m.role = MemberRole::kReplica;
  }
  const Member* stored = view_->FindMember(cfg_.name);
  bool changed = true;
  if (stored) {
    Member same_lsns = m;
    same_lsns.received_lsn = stored->received_lsn;
    same_lsns.replayed_lsn = stored->replayed_lsn;
    same_lsns.current_lsn = stored->current_lsn;
    changed = !(same_lsns == *stored);
  }
  bool due = !mem_.member_written_at || now_ >= *mem_.member_written_at + cfg_.loop_wait;
  if (!changed && !due) return;
  if (!changed && stored && *stored == m) return;
  Act(WriteMember{m});
  d_.next.member_written_at = now_;
  d_.next.member_written = m;
}

// Data directory and bootstrap. Returns true when the turn is decided.
bool Turn::DataDirectory() {
  const std::optional<std::string>& init = view_->initialize;
  const bool init_open = !init || init->empty();  // no cluster yet, or a bootstrap in progress
  switch (pg_.data_dir) {
    case DataDirState::kEmpty:
      if (InFlightIs<InitDb>() || InFlightIs<CloneFrom>()) {
        Why("creating the data directory");
        return true;
      }
      if (cfg_.pause) {
        // Patroni: no bootstrap and no clone in maintenance mode; a leader key goes.
        if (i_hold_) Act(ReleaseLeader{});
        Why(i_hold_ ? "empty data directory while holding the leader key: releasing it"
                    : "empty data directory: not bootstrapping or cloning while paused");
        return true;
      }
      if (i_hold_) {
        if (init_open && lease_ok_) {
          Act(InitDb{});
          LeaderOnly();
          Why("we won the bootstrap race: initdb");
        } else {
          Act(ReleaseLeader{});
          Why("holding the leader key without a data directory: releasing it");
        }
        return true;
      }
      if (init_open && !view_->leader) {
        if (cfg_.tags.nofailover || cfg_.tags.failover_priority <= 0) {
          Why("no cluster yet; tagged nofailover: waiting for another member to bootstrap it");
          return true;
        }
        if (!lease_ok_) {
          Why("no confirmed lease: cannot race for the bootstrap");
          return true;
        }
        Act(ClaimBootstrap{});
        Act(InitDb{});
        LeaderOnly();
        Why("no cluster yet: racing to bootstrap it");
        return true;
      }
      if (init_open) {
        Why("waiting for " + view_->leader->holder.str() + " to bootstrap the cluster");
        return true;
      }
      if (auto source = CloneSource()) {
        Act(CloneFrom{*source, false});
        Why("empty data directory: cloning from " + source->str());
      } else {
        Why("empty data directory and no running leader to clone from: waiting");
      }
      return true;
    case DataDirState::kBootstrapPending:
      if (obs_.in_flight) {
        Why("waiting for " + ActionName(obs_.in_flight->action));
        return true;
      }
      if (init && *init == pg_.system_identifier) return false;
      if (!init_open) {
        if (auto source = CloneSource()) {
          Act(CloneFrom{*source, true});
          Why("our unfinished bootstrap lost to system " + *init + ": re-cloning from " +
              source->str());
        } else {
          Why("our unfinished bootstrap lost to system " + *init + ": waiting for a leader");
        }
        return true;
      }
      if (i_hold_ && lease_ok_) {
        Act(WriteInitialize{pg_.system_identifier});
        ClearSyncBeforeWrites();
        Act(StartPostgres{StartRole::kPrimary, std::nullopt});
        LeaderOnly();
        Why("bootstrap done: registering system " + pg_.system_identifier +
            " and starting as primary");
        d_.leader = true;
        return true;
      }
      if (!view_->leader && lease_ok_) {
        Act(ClaimBootstrap{});
        LeaderOnly();
        Why("finishing our bootstrap: reclaiming the leader key");
        return true;
      }
      Why("bootstrap pending; waiting for the leader key");
      return true;
    case DataDirState::kInitialized:
      if (init && !init->empty() && *init != pg_.system_identifier) {
        Why("system identifier mismatch: local " + pg_.system_identifier + ", cluster " + *init +
            "; an operator must remove the data directory");
        return true;
      }
      return false;
  }
  return false;
}

// A PostgreSQL operation is running. Returns true when the turn is decided.
bool Turn::OperationInFlight() {
  if (!obs_.in_flight) return false;
  const std::string op = Describe(obs_.in_flight->action);
  if (i_hold_ && lease_ok_) {
    d_.leader = promoting_ || pg_.MayAcceptWrites();
    if (InFlightIs<StartPostgres>() && promoting_) {
      SteadyTime deadline = mem_.primary_start_deadline.value_or(obs_.in_flight->started_at +
                                                                 cfg_.primary_start_timeout);
      d_.next.primary_start_deadline = deadline;
      if (now_ >= deadline) {
        Act(StopPostgres{StopMode::kImmediate});
        Act(ReleaseLeader{});
        d_.leader = false;
        d_.next.primary_start_deadline.reset();
        Why("PostgreSQL did not start within primary_start_timeout: giving the lock up");
        return true;
      }
      WakeBy(deadline);
    }
    if (pg_.MayAcceptWrites()) MaybeUpdateStatus();
    Why("leader; waiting for " + op);
    return true;
  }
  Why("waiting for " + op);
  return true;
}

void Turn::LeaderTurn() {
  d_.next.probe_requested_at.reset();
  if (!lease_ok_) {
    Why("the leader key is ours but the lease is not confirmed: waiting");
    return;
  }
  LeaderOnly();
  const ClusterView& v = *view_;
  if (pg_.Running() && pg_.role == PgRole::kPrimary) {
    d_.leader = true;
    d_.next.primary_start_deadline.reset();
    if (!v.initialize || v.initialize->empty()) {
      Act(WriteInitialize{pg_.system_identifier});
    }
    if (pg_.timeline > v.ClusterTimeline() && pg_.timeline_start_lsn) {
      HistoryEntry e;
      e.timeline = Timeline(pg_.timeline.value() - 1);
      e.switch_lsn = *pg_.timeline_start_lsn;
      e.reason = "promoted " + cfg_.name.str();
      e.new_leader = cfg_.name;
      if (mem_.last_leader && *mem_.last_leader != cfg_.name) e.old_leader = *mem_.last_leader;
      e.time = FormatIso8601(obs_.wall_now);
      Act(AppendHistory{e, v.history_mod_revision});
    }
    MaybeUpdateStatus();
    std::vector<std::string> slots;
    for (const auto& [name, member] : v.members) {
      if (name != cfg_.name) slots.push_back(SlotName(name));
    }
    Act(SyncSlots{slots});
    if (v.failover && SwitchoverTurn()) return;
    Why("leader: primary running, lease renewed");
    SyncReplication();
    return;
  }
  if (mem_.switchover && !pg_.Running()) {
    SwitchoverStoppedTurn();
    return;
  }
  if (cfg_.pause) {
    PausedLeaderTurn();
    return;
  }
  // We hold the lock but PostgreSQL is not a running primary: bring it up within
  // primary_start_timeout, else give the lock up so that a healthy replica can take it.
  SteadyTime deadline = mem_.primary_start_deadline.value_or(now_ + cfg_.primary_start_timeout);
  d_.next.primary_start_deadline = deadline;
  if (now_ >= deadline) {
    if (pg_.MayAcceptWrites()) Act(StopPostgres{StopMode::kImmediate});
    Act(ReleaseLeader{});
    d_.next.primary_start_deadline.reset();
    Why("leader without a running primary for primary_start_timeout: releasing the lock");
    return;
  }
  WakeBy(deadline);
  if (pg_.Running()) {
    // A replica that won the race, and whose promotion has not happened yet (or failed).
    d_.leader = true;
    if (v.failover) Act(ClearFailoverRequest{v.failover->mod_revision});
    ClearSyncBeforeWrites();
    Act(Promote{});
    Why("leader key held: promoting");
    return;
  }
  if (pg_.state == ProcessState::kStarting || pg_.state == ProcessState::kStopping) {
    Why("leader; PostgreSQL is starting or stopping");
    return;
  }
  d_.leader = true;
  if (pg_.role == PgRole::kPrimary) {
    ClearSyncBeforeWrites();
    Act(StartPostgres{StartRole::kPrimary, std::nullopt});
    Why("leader whose PostgreSQL is down: restarting it as primary");
  } else {
    Act(StartPostgres{StartRole::kReplica, std::nullopt});
    Why("leader whose PostgreSQL (a replica) is down: starting it, then promoting");
  }
}

// Maintenance mode, we hold the lock but PostgreSQL is not a running primary. Patroni's
// process_healthy_cluster / unhealthy path: nothing is started or restarted; the key goes so
// that the cluster shows no leader (nobody takes it while paused), unless a manual failover
// to us is under way (the promotion is part of it).
void Turn::PausedLeaderTurn() {
  const ClusterView& v = *view_;
  d_.next.primary_start_deadline.reset();
  if (pg_.Running()) {
    if (v.failover && v.failover->candidate && *v.failover->candidate == cfg_.name) {
      // The request stays until we run as primary (SwitchoverTurn clears it then).
      d_.leader = true;
      ClearSyncBeforeWrites();
      Act(Promote{});
      Why("leader key held after a failover to us: promoting");
      return;
    }
    Act(ReleaseLeader{});
    Why("PostgreSQL is not running as primary: releasing the leader key");
    return;
  }
  if (pg_.state == ProcessState::kStarting || pg_.state == ProcessState::kStopping) {
    Why("leader; PostgreSQL is starting or stopping");
    return;
  }
  Act(ReleaseLeader{});
  Why("PostgreSQL is not running: releasing the leader key (not restarting it while paused)");
}

// The leader with a running primary sees a `failover` request. Returns true when handled.
bool Turn::SwitchoverTurn() {
  const ClusterView& v = *view_;
  const FailoverRequest& req = *v.failover;
  if (req.leader && *req.leader != cfg_.name) {
    Act(ClearFailoverRequest{req.mod_revision});
    Why("clearing a switchover request for leader " + req.leader->str() + ": we are the leader");
    return true;
  }
  if (!req.leader && req.candidate && *req.candidate == cfg_.name) {
    Act(ClearFailoverRequest{req.mod_revision});
    Why("clearing a failover request to us: we are already the leader");
    return true;
  }
  if (cfg_.pause && !req.candidate) {
    Act(ClearFailoverRequest{req.mod_revision});
    Why("switchover refused (paused: only to a specific candidate): clearing the request");
    return true;
  }
  if (req.scheduled_at && *req.scheduled_at > obs_.wall_now) {
    Why("leader; switchover scheduled");
    return true;
  }
  std::string refusal;
  std::optional<MemberName> target;
  auto check = [&](const Member& m) {
    std::string why =
        Ineligibility(m.tags, m.state == PgState::kRunning && m.role == MemberRole::kReplica,
                      std::max(m.received_lsn, m.replayed_lsn), v, cfg_);
    if (m.name == cfg_.name) why = "it is the leader";
    if (why.empty() && cfg_.synchronous_mode && !InSyncKey(m.name)) {
      why = "synchronous_mode is on and it is not a synchronous standby (not listed in sync)";
    }
    return why;
  };
  if (req.candidate) {
    const Member* m = v.FindMember(*req.candidate);
    refusal = m ? check(*m) : "it is not a member";
    if (refusal.empty()) target = *req.candidate;
    refusal = "candidate " + req.candidate->str() + ": " + refusal;
  } else {
    for (const auto& [name, m] : v.members) {
      if (check(m).empty()) {
        target = name;
        break;
      }
    }
    refusal = "no healthy candidate";
  }
  if (!target) {
    Act(ClearFailoverRequest{req.mod_revision});
    Why("switchover refused (" + refusal + "): clearing the request");
    return true;
  }
  d_.next.switchover =
      AgentMemory::Switchover{req.candidate, now_ + cfg_.switchover_timeout, req.mod_revision};
  d_.next.probe_requested_at.reset();
  Act(StopPostgres{StopMode::kFast});
  Why("switchover to " + (req.candidate ? req.candidate->str() : "the healthiest replica") +
      ": stopping PostgreSQL with a shutdown checkpoint");
  return true;
}

// Switchover: our PostgreSQL has stopped (shutdown checkpoint written); release the lock once a
// candidate has received everything, or give up at the deadline.
void Turn::SwitchoverStoppedTurn() {
  const AgentMemory::Switchover& sw = *mem_.switchover;
  const ClusterView& v = *view_;
  if (now_ >= sw.deadline) {
    d_.next.switchover.reset();
    if (v.failover) Act(ClearFailoverRequest{v.failover->mod_revision});
    ClearSyncBeforeWrites();
    Act(StartPostgres{StartRole::kPrimary, std::nullopt});
    d_.leader = true;
    Why("switchover timed out: no candidate caught up; starting again as primary");
    return;
  }
  WakeBy(sw.deadline);
  const Lsn target = pg_.EndLsn();
  if (FreshProbes()) {
    for (const auto& [name, p] : obs_.probes->peers) {
      if (name == cfg_.name || (sw.candidate && name != *sw.candidate)) continue;
      const Member* m = v.FindMember(name);
      if (!m || !p.reachable || !p.running || p.role != PgRole::kReplica) continue;
      if (p.tags.nofailover || p.tags.failover_priority <= 0) continue;
      if (cfg_.synchronous_mode && !InSyncKey(name)) continue;
      if (std::max(p.received_lsn, p.replayed_lsn) < target) continue;
      d_.next.switchover.reset();
      d_.next.probe_requested_at.reset();
      Act(ReleaseLeader{});
      Why("switchover: " + name.str() + " has received everything up to " + target.ToString() +
          "; releasing the leader key");
      return;
    }
  }
  std::vector<MemberName> peers;
  if (sw.candidate) {
    peers.push_back(*sw.candidate);
  } else {
    peers = OtherMembers();
  }
  RequestProbes(peers);
  Why("switchover: waiting for a candidate to receive everything up to " + target.ToString());
}

void Turn::FollowerTurn() {
  const ClusterView& v = *view_;
  const MemberName& leader = v.leader->holder;
  d_.next.primary_start_deadline.reset();
  d_.next.switchover.reset();
  d_.next.probe_requested_at.reset();
  const Member* lm = v.FindMember(leader);
  const bool leader_running =
      lm && lm->state == PgState::kRunning && lm->role == MemberRole::kPrimary;
  if (pg_.state == ProcessState::kStarting || pg_.state == ProcessState::kStopping) {
    Why("following " + leader.str() + "; PostgreSQL is starting or stopping");
    return;
  }
  if (!pg_.Running() && cfg_.pause) {
    Why("following " + leader.str() + "; PostgreSQL is stopped: not starting it while paused");
    return;
  }
  if (!pg_.Running()) {
    if (Diverged(/*conservative=*/pg_.role == PgRole::kPrimary)) {
      const bool rewind_failed =
          d_.next.rewind_failed_on && *d_.next.rewind_failed_on == v.ClusterTimeline();
      if (cfg_.use_pg_rewind && !rewind_failed) {
        if (leader_running) {
          Act(Rewind{leader});
          Why("diverged from " + leader.str() + ": rewinding");
        } else {
          Why("diverged from " + leader.str() + ": waiting for it to run before rewinding");
        }
        return;
      }
      if (!cfg_.use_pg_rewind || cfg_.remove_data_directory_on_rewind_failure) {
        if (leader_running) {
          Act(CloneFrom{leader, true});
          Why(std::string("diverged from ") + leader.str() +
              (cfg_.use_pg_rewind ? " and pg_rewind failed" : " and use_pg_rewind is off") +
              ": re-cloning");
        } else {
          Why("diverged: waiting for the leader to run before re-cloning");
        }
        return;
      }
      Why("diverged from " + leader.str() +
          " and pg_rewind failed; remove_data_directory_on_rewind_failure is off: waiting for "
          "an operator");
      return;
    }
    Act(StartPostgres{StartRole::kReplica, leader});
    Why("starting as a replica of " + leader.str());
    return;
  }
  if (pg_.role == PgRole::kPrimary) {
    // Only reachable without writes (FenceFirst handles the others): nothing to do but wait.
    Why("following " + leader.str() + "; waiting for PostgreSQL to stop");
    return;
  }
  if (Diverged(/*conservative=*/false) && cfg_.pause) {
    Why("diverged from " + leader.str() + "; not stopping it to rewind while paused");
    return;
  }
  if (Diverged(/*conservative=*/false)) {
    Act(StopPostgres{StopMode::kFast});
    Why("diverged from " + leader.str() + ": stopping to rewind");
    return;
  }
  if (!pg_.upstream || *pg_.upstream != leader) {
    Act(Follow{leader});
    Why("following the new leader " + leader.str());
    return;
  }
  Why("replica of " + leader.str());
}

// `status` (the reference for lag) changes only when our position moved, and at most once per
// loop_wait: every write wakes every agent through its watch, so writing it on each turn would
// feed itself (one write per etcd round trip, the idle cluster's etcd growing without end).
void Turn::MaybeUpdateStatus() {
  if (view_->status && view_->status->optime == pg_.write_lsn) return;
  if (view_->status && mem_.status_written_at) {
    const SteadyTime due = *mem_.status_written_at + cfg_.loop_wait;
    if (now_ < due) {
      WakeBy(due);
      return;
    }
  }
  Act(UpdateLeaderStatus{pg_.write_lsn});
  d_.next.status_written_at = now_;
}

void Turn::ElectionTurn() {
  const ClusterView& v = *view_;
  const Timeline cluster_tl = v.ClusterTimeline();
  d_.next.primary_start_deadline.reset();
  d_.next.switchover.reset();
  if (pg_.MayAcceptWrites()) {
    if (pg_.timeline < cluster_tl) {
      Act(StopPostgres{StopMode::kImmediate});
      Why("running primary on timeline " + std::to_string(pg_.timeline.value()) +
          ", behind the cluster's " + std::to_string(cluster_tl.value()) + ": stopping");
      return;
    }
    if (pg_.Running()) {
      Act(AcquireLeader{});
      Act(UpdateLeaderStatus{pg_.write_lsn});
      LeaderOnly();
      d_.leader = true;
      Why("running primary and no leader key: taking it back");
      return;
    }
    Why("no leader; PostgreSQL is starting");
    return;
  }
  if (!pg_.Running()) {
    if (pg_.state == ProcessState::kStarting || pg_.state == ProcessState::kStopping) {
      Why("no leader; PostgreSQL is starting or stopping");
      return;
    }
    if (cfg_.pause) {
      Why("no leader; PostgreSQL is stopped: not starting it while paused");
      return;
    }
    Act(StartPostgres{StartRole::kReplica, std::nullopt});
    Why("no leader: starting PostgreSQL as a replica to take part in the election");
    return;
  }
  if (pg_.role != PgRole::kReplica) {
    Why("no leader; waiting");
    return;
  }
  // A pending manual failover or switchover names who may take the lock.
  const FailoverRequest* req = v.failover ? &*v.failover : nullptr;
  if (req && req->scheduled_at && *req->scheduled_at > obs_.wall_now) req = nullptr;
  if (cfg_.pause && (!req || !req->candidate || *req->candidate != cfg_.name)) {
    // Maintenance mode: no automatic failover. Only a manual failover to a named candidate
    // (that candidate itself) takes the lock.
    d_.next.probe_requested_at.reset();
    Why(req && req->candidate
            ? "no leader; failover requested to " + req->candidate->str() + ": not us"
            : "no leader: no automatic failover while paused");
    return;
  }
  if (req && req->candidate) {
    if (*req->candidate == cfg_.name) {
      if (cfg_.tags.nofailover || cfg_.tags.failover_priority <= 0) {
        Why("failover requested to us, but we are tagged nofailover");
        return;
      }
      if (Diverged(false)) {
        Why("failover requested to us, but our data diverged from the cluster's history");
        return;
      }
      if (cfg_.synchronous_mode && !SyncAllowsTakeover(v, cfg_.name)) {
        Why("failover requested to us, but synchronous_mode is on and we are not listed in "
            "sync: we may lack acknowledged commits");
        return;
      }
      if (cfg_.synchronous_mode) {
        // Quorum form: enough listed members must be seen at or behind us.
        if (std::string r = SyncQuorumRefusal(v, cfg_.name, pg_.EndLsn(), Seen()); !r.empty()) {
          RequestProbes(OtherMembers());
          Why("failover requested to us, but we may lack acknowledged commits: " + r);
          return;
        }
      }
      TakeLeadership("failover requested to us: taking the leader key and promoting");
      return;
    }
    if (!FreshProbes()) {
      RequestProbes(OtherMembers());
      Why("no leader; failover requested to " + req->candidate->str() + ": probing peers");
      return;
    }
    // Wait for the candidate while it is reachable and fit, for switchover_timeout at most
    // (it may be unable to reach etcd); then the request no longer stops an election.
    if (!mem_.failover_wait || mem_.failover_wait->first != req->mod_revision) {
      d_.next.failover_wait = std::make_pair(req->mod_revision, now_);
    }
    const SteadyTime waiting_since = d_.next.failover_wait->second;
    auto it = obs_.probes->peers.find(*req->candidate);
    const bool fit = it != obs_.probes->peers.end() && it->second.reachable && it->second.running &&
                     it->second.role == PgRole::kReplica && !it->second.tags.nofailover &&
                     it->second.tags.failover_priority > 0;
    if (fit && now_ < waiting_since + cfg_.switchover_timeout) {
      Why("no leader; waiting for the requested candidate " + req->candidate->str());
      WakeBy(waiting_since + cfg_.switchover_timeout);
      RequestProbes(OtherMembers());
      return;
    }
    // The candidate is gone, unfit or too slow: an ordinary election.
  }
  std::string why = Ineligibility(cfg_.tags, true, pg_.EndLsn(), v, cfg_);
  if (why.empty() && Diverged(false)) why = "our data diverged from the cluster's history";
  if (why.empty() && cfg_.synchronous_mode && !SyncAllowsTakeover(v, cfg_.name)) {
    why = "synchronous_mode is on and we are not listed in sync (leader " + v.sync->leader.str() +
          ")";
  }
  if (!why.empty()) {
    Why("no leader; not a candidate: " + why);
    return;
  }
  const std::vector<MemberName> others = OtherMembers();
  if (!others.empty() && !FreshProbes()) {
    RequestProbes(others);
    Why("no leader: probing peers before the election");
    return;
  }
  const Lsn mine = pg_.EndLsn();
  std::map<MemberName, Lsn> seen = Seen();
  if (cfg_.synchronous_mode) {
    // Quorum form: certain to hold every acknowledged commit only if enough listed members are
    // seen at or behind us.
    if (std::string r = SyncQuorumRefusal(v, cfg_.name, mine, seen); !r.empty()) {
      RequestProbes(others);
      Why("no leader; not a candidate (yet): " + r);
      return;
    }
    seen[cfg_.name] = mine;
  }
  for (const MemberName& name : others) {
    if (!obs_.probes) break;
    auto it = obs_.probes->peers.find(name);
    if (it == obs_.probes->peers.end() || !it->second.reachable) continue;
    const PeerStatus& p = it->second;
    if (p.running && p.role == PgRole::kPrimary) {
      RequestProbes(others);
      Why("no leader, but " + name.str() + " is running as primary: waiting");
      return;
    }
    const Lsn theirs = std::max(p.received_lsn, p.replayed_lsn);
    if (cfg_.synchronous_mode &&
        (!SyncAllowsTakeover(v, name) || !SyncQuorumRefusal(v, name, theirs, seen).empty())) {
      continue;
    }
    if (Ineligibility(p.tags, p.running && p.role == PgRole::kReplica, theirs, v, cfg_).empty() &&
        Better(theirs, p.tags.failover_priority, name, mine, cfg_.tags.failover_priority,
               cfg_.name)) {
      RequestProbes(others);
      Why("no leader; " + name.str() + " is healthier (" + theirs.ToString() + " vs ours " +
          mine.ToString() + "): waiting for it");
      return;
    }
  }
  TakeLeadership("no leader and we are the healthiest: taking the leader key and promoting");
}

void Turn::TakeLeadership(const std::string& why) {
  if (!lease_ok_) {
    Why("would take the leader key, but our lease is not confirmed");
    return;
  }
  Act(AcquireLeader{});
  if (!view_->initialize || view_->initialize->empty()) {
    Act(WriteInitialize{pg_.system_identifier});
  }
  ClearSyncBeforeWrites();
  Act(Promote{});
  LeaderOnly();
  d_.leader = true;
  d_.next.probe_requested_at.reset();
  Why(why);
}

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

std::map<MemberName, Lsn> Turn::Seen() const {
  std::map<MemberName, Lsn> out;
  if (!FreshProbes()) return out;
  for (const auto& [name, p] : obs_.probes->peers) {
    if (!p.reachable || !p.running || p.role != PgRole::kReplica) continue;
    const Lsn pos = std::max(p.received_lsn, p.replayed_lsn);
    if (pos.value() > 0) out[name] = pos;
  }
  return out;
}

bool Turn::Diverged(bool conservative) const {
  if (pg_.diverged) return *pg_.diverged;
  return DivergedFromHistory(pg_, *view_).value_or(conservative);
}

// Probe answers count only if they were started after we asked (fresh data), and for one
// loop_wait at most.
bool Turn::FreshProbes() const {
  return obs_.probes && mem_.probe_requested_at &&
         obs_.probes->started_at >= *mem_.probe_requested_at &&
         now_ < obs_.probes->started_at + cfg_.loop_wait;
}

// Asks for probes unless a request is still pending (answers come within retry_timeout).
void Turn::RequestProbes(std::vector<MemberName> peers) {
  if (mem_.probe_requested_at && now_ < *mem_.probe_requested_at + cfg_.retry_timeout &&
      !FreshProbes()) {
    WakeBy(*mem_.probe_requested_at + cfg_.retry_timeout);
    return;
  }
  if (FreshProbes() && now_ < obs_.probes->started_at + cfg_.loop_wait / 4) {
    // Just answered: ask again a little later, not in a tight loop.
    WakeBy(obs_.probes->started_at + cfg_.loop_wait / 4);
    return;
  }
  Act(ProbePeers{std::move(peers)});
  d_.next.probe_requested_at = now_;
  WakeBy(now_ + cfg_.retry_timeout);
}

std::vector<MemberName> Turn::OtherMembers() const {
  std::vector<MemberName> out;
  for (const auto& [name, m] : view_->members) {
    if (name != cfg_.name) out.push_back(name);
  }
  return out;
}

std::optional<MemberName> Turn::CloneSource() const {
  if (!view_->leader) return std::nullopt;
  const Member* m = view_->FindMember(view_->leader->holder);
  if (!m || m->state != PgState::kRunning || m->role != MemberRole::kPrimary) return std::nullopt;
  return m->name;
}

}  // namespace

std::optional<SteadyTime> FenceDeadline(const LeaseFacts& lease, const HaConfig& config) {
  if (lease.id == 0 || !lease.last_confirmed_send) return std::nullopt;
  return *lease.last_confirmed_send + config.ttl - config.fence_margin;
}

std::optional<bool> DivergedFromHistory(const LocalPostgres& pg, const ClusterView& view) {
  const Timeline cluster_tl = view.ClusterTimeline();
  if (pg.timeline == cluster_tl) return false;
  if (pg.timeline > cluster_tl) return std::nullopt;
  for (const HistoryEntry& e : view.history) {
    if (e.timeline == pg.timeline) return pg.EndLsn() > e.switch_lsn;
  }
  return std::nullopt;
}

std::string Ineligibility(const Tags& tags, bool running_replica, Lsn received,
                          const ClusterView& view, const HaConfig& config) {
  if (tags.nofailover) return "tagged nofailover";
  if (tags.failover_priority <= 0) return "failover_priority is 0";
  if (!running_replica) return "not a running replica";
  if (view.status && view.status->optime.BytesSince(received) > config.maximum_lag_on_failover) {
    return "lag " + Lag(view.status->optime, received) + " exceeds maximum_lag_on_failover";
  }
  return "";
}

bool Better(Lsn a_lsn, int a_priority, const MemberName& a, Lsn b_lsn, int b_priority,
            const MemberName& b) {
  if (a_lsn != b_lsn) return a_lsn > b_lsn;
  if (a_priority != b_priority) return a_priority > b_priority;
  return a < b;
}

Decision Decide(const AgentMemory& memory, const Observation& observation, const HaConfig& config) {
  return Turn(memory, observation, config).Run();
}

std::string HaConfig::Check() const {
  if (ttl <= Duration::zero()) return "ttl must be positive";
  if (fence_margin <= Duration::zero() || fence_margin >= ttl) {
    return "fence_margin must be positive and below ttl";
  }
  if (loop_wait <= Duration::zero()) return "loop_wait must be positive";
  if (loop_wait + retry_timeout + fence_margin > ttl) {
    return "loop_wait + retry_timeout + fence_margin must not exceed ttl";
  }
  return "";
}

}  // namespace pgwarden::core
