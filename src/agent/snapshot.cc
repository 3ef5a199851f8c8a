// The REST API's snapshot, built from the agent's observations after each HA turn.
#include "agent/agent_internal.h"
#include "agent/settings.h"

namespace pgwarden::agent {
namespace {

std::string MemberStateText(core::PgState s) {
  switch (s) {
    case core::PgState::kStopped:
      return "stopped";
    case core::PgState::kStarting:
      return "starting";
    case core::PgState::kRunning:
      return "running";
    case core::PgState::kStopping:
      return "stopping";
    case core::PgState::kCrashed:
      return "crashed";
  }
  return "unknown";
}

api::MemberTags ApiTags(const core::Tags& t) {
  api::MemberTags out;
  out.nofailover = t.nofailover;
  out.noloadbalance = t.noloadbalance;
  out.nosync = t.nosync;
  if (t.failover_priority != 1) out.failover_priority = t.failover_priority;
  return out;
}

}  // namespace

std::shared_ptr<const api::ApiSnapshot> BuildSnapshot(const SnapshotInput& in) {
  auto snap = std::make_shared<api::ApiSnapshot>();
  const config::Config& node = *in.node;
  const core::LocalPostgres& l = in.facts->local;
  api::LocalStatus& self = snap->self;
  self.name = node.name;
  self.scope = node.scope;
  const auto& flight = *in.in_flight;
  if (flight && std::holds_alternative<core::CloneFrom>(flight->action)) {
    self.state = api::PgState::kCreatingReplica;
  } else if (flight && std::holds_alternative<core::InitDb>(flight->action)) {
    self.state = api::PgState::kInitdb;
  } else if (l.state == core::ProcessState::kRunning) {
    self.state = api::PgState::kRunning;
  } else if (l.state == core::ProcessState::kStarting ||
             (flight && std::holds_alternative<core::StartPostgres>(flight->action))) {
    self.state = api::PgState::kStarting;
  } else if (l.state == core::ProcessState::kCrashed) {
    self.state = api::PgState::kCrashed;
  } else if (l.state == core::ProcessState::kStopping) {
    self.state = api::PgState::kStopping;
  } else {
    self.state = api::PgState::kStopped;
  }
  if (l.data_dir != core::DataDirState::kInitialized) {
    self.role = api::PgRole::kUninitialized;
  } else if (l.role == core::PgRole::kPrimary) {
    self.role = l.Running() ? api::PgRole::kPrimary : api::PgRole::kDemoted;
  } else {
    self.role = api::PgRole::kReplica;
  }
  self.holds_leader_lock = in.leader;
  if (l.data_dir == core::DataDirState::kInitialized) self.timeline = l.timeline;
  const auto& st = in.facts->status;
  if (st) {
    self.server_version = st->server_version_num;
    self.postmaster_start_time = st->postmaster_start_time;
    self.replay_paused = st->replay_paused;
    self.pending_restart = !st->pending_restart.empty();
    for (const auto& r : st->replication) {
      api::ReplicationRow row;
      row.usename = node.postgresql.authentication.replication.username;
      row.application_name = r.application_name;
      row.client_addr = r.client_addr;
      row.state = r.state;
      row.sync_state = r.sync_state;
      self.replication.push_back(std::move(row));
    }
    if (st->in_recovery) {
      self.replication_state =
          st->wal_receiver && st->wal_receiver->streaming() ? "streaming" : "in archive recovery";
    }
  }
  if (l.role == core::PgRole::kPrimary) {
    self.xlog_location = l.write_lsn;
  } else {
    self.received_location = l.received_lsn;
    self.replayed_location = l.replayed_lsn;
  }
  self.database_system_identifier = l.system_identifier;
  core::Tags tags;
  tags.nofailover = node.tags.nofailover;
  tags.noloadbalance = node.tags.noloadbalance;
  tags.nosync = node.tags.nosync;
  tags.failover_priority = node.tags.failover_priority.value_or(1);
  self.tags = ApiTags(tags);
  self.tags.user = node.tags.user;
  if (in.dcs_last_seen != SystemTime{}) {
    self.dcs_last_seen =
        std::chrono::duration_cast<seconds>(in.dcs_last_seen.time_since_epoch()).count();
  }
  snap->ttl = in.ttl;
  snap->pause = in.pause;
  snap->maximum_lag_on_failover = in.maximum_lag_on_failover;
  snap->last_ha_loop = SteadyClock::now();
  if (*in.view) {
    const core::ClusterView& v = **in.view;
    api::ClusterView c;
    if (v.leader) c.leader = v.leader->holder.str();
    for (const auto& [name, m] : v.members) {
      api::ClusterMember cm;
      cm.name = name.str();
      cm.state = MemberStateText(m.state);
      if (m.role == core::MemberRole::kReplica && m.state == core::PgState::kRunning) {
        cm.state = "streaming";
        cm.replication_state = "streaming";
      }
      if (auto hp = HostPortOfConnUrl(m.conn_url)) {
        cm.host = hp->first;
        cm.port = static_cast<uint16_t>(hp->second);
      }
      cm.api_url = m.api_url;
      if (m.timeline.value() != 0) cm.timeline = m.timeline;
      if (m.role == core::MemberRole::kPrimary) {
        cm.lsn = m.current_lsn;
      } else {
        cm.lsn = std::max(m.received_lsn, m.replayed_lsn);
        cm.receive_lsn = m.received_lsn;
        cm.replay_lsn = m.replayed_lsn;
      }
      cm.tags = ApiTags(m.tags);
      cm.pending_restart = m.pending_restart;
      c.members.push_back(std::move(cm));
    }
    c.synchronous_mode = in.synchronous_mode;
    if (v.sync && v.leader && v.sync->leader == v.leader->holder) {
      for (const auto& s : v.sync->sync_standby) c.sync_standbys.push_back(s.str());
      c.sync_quorum = v.sync->quorum;
    }
    if (v.status) c.leader_lsn = v.status->optime;
    if (v.failover && v.failover->scheduled_at) {
      api::ScheduledSwitchover s;
      s.at = core::FormatIso8601(*v.failover->scheduled_at);
      if (v.failover->leader) s.from = v.failover->leader->str();
      if (v.failover->candidate) s.to = v.failover->candidate->str();
      c.scheduled_switchover = s;
    }
    for (const auto& h : v.history) {
      c.history.push_back(
          {h.timeline.value(), h.switch_lsn.value(), h.reason, h.time, h.new_leader.str()});
    }
    c.config_json = v.config_json;
    snap->cluster = std::move(c);
  }
  return snap;
}

}  // namespace pgwarden::agent
