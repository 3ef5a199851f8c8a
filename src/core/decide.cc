#include "core/decide.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "core/turn.h"

namespace pgwarden::core {
namespace internal {

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

// Lag(), SlotName(): turn.h.
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

}  // namespace internal

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
    return "lag " + internal::Lag(view.status->optime, received) +
           " exceeds maximum_lag_on_failover";
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
  return internal::Turn(memory, observation, config).Run();
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
