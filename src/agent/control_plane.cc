// AgentControl: the REST API's control requests.
// Switchover / failover: the request is written to the `failover` key (create-only: one
// operation at a time); the leader's (or, without a leader, the candidate's) decision core
// carries it out. Like Patroni's poll_failover_result, the call then polls the leader key until
// the leadership moved, the request vanished, or time is up.
// PATCH / PUT /config: merged and validated here, then written to the `config` key with a
// compare-and-swap (config_patch.h); every agent applies it from there. Restart, reload and
// reinitialize: handed to the agent's control thread (agent_operations.cc).
#include <thread>

#include "agent/agent_internal.h"

namespace pgwarden::agent {

AgentControl::AgentControl(Agent& agent, std::unique_ptr<dcs::Dcs> dcs, cluster::Keys keys,
                           Duration switchover_timeout, ConfigCheck check)
    : agent_(agent),
      dcs_(std::move(dcs)),
      store_(*dcs_, std::move(keys)),
      timeout_(switchover_timeout),
      check_(std::move(check)) {}

Result<std::string> AgentControl::WaitForLeader(const std::optional<std::string>& old_leader,
                                                const std::optional<std::string>& candidate,
                                                const char* what) {
  const SteadyTime deadline = SteadyClock::now() + timeout_;
  bool request_seen_gone = false;
  while (SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
    auto read = store_.Read();
    if (!read) continue;
    const core::ClusterView& v = read->view;
    const bool has_leader = v.leader.has_value();
    const std::string holder = has_leader ? v.leader->holder.str() : "";
    if (has_leader && (!old_leader || holder != *old_leader) &&
        (!candidate || holder == *candidate)) {
      const core::Member* m = v.FindMember(v.leader->holder);
      if (m && m->role == core::MemberRole::kPrimary && m->state == core::PgState::kRunning) {
        return std::string("Successfully ") + what + " to \"" + holder + "\"";
      }
    }
    if (!v.failover) {
      // Cleared: either done (leader moved; checked above, may need a moment to show running)
      // or refused by the leader's core.
      if (request_seen_gone && has_leader && old_leader && holder == *old_leader) {
        return Fail(ErrorCode::kConflict,
                    std::string(what) + " failed: the leader refused or gave up (see its log)");
      }
      request_seen_gone = true;
    }
  }
  return Fail(ErrorCode::kTimeout,
              std::string(what) + " status unknown: no new leader within " +
                  std::to_string(std::chrono::duration_cast<seconds>(timeout_).count()) + " s");
}

Result<std::string> AgentControl::RequestSwitchover(const api::SwitchoverRequest& request) {
  auto read = store_.Read();
  if (!read) return Fail(read.error());
  const core::ClusterView& v = read->view;
  if (!v.leader) return Fail(ErrorCode::kConflict, "no leader: use /failover");
  if (!request.leader.empty() && v.leader->holder.str() != request.leader) {
    return Fail(ErrorCode::kConflict,
                "leader name does not match: the leader is " + v.leader->holder.str());
  }
  if (request.candidate) {
    const core::Member* m = v.FindMember(MemberName(*request.candidate));
    if (!m)
      return Fail(ErrorCode::kConflict, "candidate " + *request.candidate + " is not a member");
    if (*request.candidate == v.leader->holder.str()) {
      return Fail(ErrorCode::kConflict, "candidate " + *request.candidate + " is the leader");
    }
    if (m->tags.nofailover || m->tags.failover_priority <= 0) {
      return Fail(ErrorCode::kConflict,
                  "candidate " + *request.candidate + " is tagged nofailover");
    }
    if (m->state != core::PgState::kRunning || m->role != core::MemberRole::kReplica) {
      return Fail(ErrorCode::kConflict,
                  "candidate " + *request.candidate + " is not a running replica");
    }
  }
  core::FailoverRequest req;
  req.leader = v.leader->holder;
  if (request.candidate) req.candidate = MemberName(*request.candidate);
  req.scheduled_at = request.scheduled_at;
  if (auto r = store_.RequestFailover(req); !r) {
    if (r.error().code == ErrorCode::kConflict) {
      return Fail(ErrorCode::kConflict, "a switchover or failover is already pending");
    }
    return Fail(r.error());
  }
  agent_.Wake();
  if (request.scheduled_at) {
    return std::string("Switchover scheduled at: ") + request.scheduled_at_text;
  }
  return WaitForLeader(v.leader->holder.str(), request.candidate, "switched over");
}

Result<std::string> AgentControl::RequestFailover(const std::string& candidate) {
  auto read = store_.Read();
  if (!read) return Fail(read.error());
  const core::ClusterView& v = read->view;
  const core::Member* m = v.FindMember(MemberName(candidate));
  if (!m) return Fail(ErrorCode::kConflict, "candidate " + candidate + " is not a member");
  if (v.leader && v.leader->holder.str() == candidate) {
    return Fail(ErrorCode::kConflict, "candidate " + candidate + " is already the leader");
  }
  if (m->tags.nofailover || m->tags.failover_priority <= 0) {
    return Fail(ErrorCode::kConflict, "candidate " + candidate + " is tagged nofailover");
  }
  core::FailoverRequest req;
  if (v.leader) req.leader = v.leader->holder;
  req.candidate = MemberName(candidate);
  if (auto r = store_.RequestFailover(req); !r) {
    if (r.error().code == ErrorCode::kConflict) {
      return Fail(ErrorCode::kConflict, "a switchover or failover is already pending");
    }
    return Fail(r.error());
  }
  agent_.Wake();
  std::optional<std::string> old;
  if (v.leader) old = v.leader->holder.str();
  return WaitForLeader(old, candidate, "failed over");
}

Result<void> AgentControl::CancelScheduledSwitchover() {
  auto read = store_.Read();
  if (!read) return Fail(read.error());
  if (!read->view.failover || !read->view.failover->scheduled_at) {
    return Fail(ErrorCode::kNotFound, "no switchover is scheduled");
  }
  return store_.ClearFailoverRequest(read->view.failover->mod_revision);
}

Result<std::string> AgentControl::PatchConfig(const std::string& patch_json) {
  auto written = PatchConfigKey(*dcs_, store_.keys().config, patch_json, check_);
  if (written) agent_.Wake();
  return written;
}

Result<std::string> AgentControl::ReplaceConfig(const std::string& config_json) {
  auto written = ReplaceConfigKey(*dcs_, store_.keys().config, config_json, check_);
  if (written) agent_.Wake();
  return written;
}

Result<std::string> AgentControl::Restart(const api::RestartRequest& request) {
  return agent_.OperatorRestart(request);
}

Result<void> AgentControl::CancelScheduledRestart() {
  return agent_.OperatorCancelScheduledRestart();
}

Result<void> AgentControl::Reload() { return agent_.OperatorReload(); }

Result<void> AgentControl::Reinitialize(bool force, bool) {
  return agent_.OperatorReinitialize(force);
}

}  // namespace pgwarden::agent
