// JSON and Prometheus renderings of an ApiSnapshot, field for field as Patroni names them
// (patroni/api.py get_postgresql_status / _write_status_response, utils.py cluster_as_json).
#include "api/patroni_status.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace pgwarden::api {

using Json = nlohmann::ordered_json;

namespace {

Json TagsJson(const MemberTags& tags) {
  Json out = Json::object();
  if (tags.nofailover) out["nofailover"] = true;
  if (tags.noloadbalance) out["noloadbalance"] = true;
  if (tags.nosync) out["nosync"] = true;
  if (tags.failover_priority) out["failover_priority"] = *tags.failover_priority;
  for (const auto& [key, value] : tags.user) out[key] = value;
  return out;
}

Json LsnOrNull(const std::optional<Lsn>& lsn) { return lsn ? Json(lsn->value()) : Json(nullptr); }

bool ReportsPostgresDetails(PgState state) {
  return state == PgState::kRunning || state == PgState::kStarting || state == PgState::kRestarting;
}

// Prometheus label values escape backslash, double quote and newline.
std::string EscapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EpochSeconds(const std::optional<SystemTime>& t) {
  if (!t) return "0";
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t->time_since_epoch()).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%" PRId64 ".%06" PRId64, us / 1000000,
                (us % 1000000 + 1000000) % 1000000);
  return buf;
}

// "2.1.0" -> "020100", as patroni_version.
std::string PaddedSemver(const std::string& version) {
  std::string out;
  size_t start = 0;
  while (start <= version.size()) {
    size_t dot = version.find('.', start);
    std::string part = version.substr(start, dot == std::string::npos ? dot : dot - start);
    std::string digits;
    for (char c : part) {
      if (c >= '0' && c <= '9') digits += c;
    }
    if (digits.size() < 2) digits.insert(0, 2 - digits.size(), '0');
    out += digits;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

}  // namespace

std::string StatusJson(const ApiSnapshot& s) {
  const LocalStatus& self = s.self;
  Json out = Json::object();
  out["state"] = std::string(ToString(self.state));
  if (ReportsPostgresDetails(self.state)) {
    out["postmaster_start_time"] = self.postmaster_start_time
                                       ? Json(FormatTimestamp(*self.postmaster_start_time))
                                       : Json(nullptr);
    out["role"] = std::string(ToString(self.role));
    out["server_version"] = self.server_version;
    Json xlog = Json::object();
    if (self.role == PgRole::kPrimary) {
      xlog["location"] = self.xlog_location ? self.xlog_location->value() : 0;
    } else {
      xlog["received_location"] = LsnOrNull(self.received_location);
      xlog["replayed_location"] = LsnOrNull(self.replayed_location);
      xlog["replayed_timestamp"] =
          self.replayed_timestamp ? Json(FormatTimestamp(*self.replayed_timestamp)) : Json(nullptr);
      xlog["paused"] = self.replay_paused;
    }
    out["xlog"] = std::move(xlog);
    if (s.IsSyncStandby()) out["sync_standby"] = true;
    if (s.IsQuorumStandby()) out["quorum_standby"] = true;
    if (self.timeline) out["timeline"] = self.timeline->value();
    if (!self.replication_state.empty()) out["replication_state"] = self.replication_state;
    if (!self.replication.empty()) {
      Json rows = Json::array();
      for (const auto& r : self.replication) {
        rows.push_back(Json{{"usename", r.usename},
                            {"application_name", r.application_name},
                            {"client_addr", r.client_addr},
                            {"state", r.state},
                            {"sync_state", r.sync_state},
                            {"sync_priority", r.sync_priority}});
      }
      out["replication"] = std::move(rows);
    }
  } else {
    out["role"] = std::string(ToString(self.role));
  }
  if (s.pause) out["pause"] = true;
  if (s.ClusterUnlocked()) out["cluster_unlocked"] = true;
  out["dcs_last_seen"] = self.dcs_last_seen;
  if (!self.tags.empty()) out["tags"] = TagsJson(self.tags);
  if (!self.database_system_identifier.empty()) {
    out["database_system_identifier"] = self.database_system_identifier;
  }
  if (self.pending_restart) out["pending_restart"] = true;
  if (self.scheduled_restart) {
    auto scheduled = Json::parse(*self.scheduled_restart, nullptr, false);
    if (scheduled.is_object()) out["scheduled_restart"] = std::move(scheduled);
  }
  out["patroni"] = Json{{"version", self.version}, {"scope", self.scope}, {"name", self.name}};
  return out.dump();
}

std::string ClusterJson(const ApiSnapshot& s) {
  const ClusterView& c = *s.cluster;
  const std::string leader = c.leader.value_or("");
  const uint64_t cluster_lsn = c.leader_lsn ? c.leader_lsn->value() : 0;
  std::vector<const ClusterMember*> sorted;
  for (const auto& m : c.members) sorted.push_back(&m);
  std::sort(sorted.begin(), sorted.end(),
            [](const ClusterMember* a, const ClusterMember* b) { return a->name < b->name; });

  Json members = Json::array();
  for (const ClusterMember* m : sorted) {
    std::string role;
    if (c.leader && m->name == leader) {
      role = c.standby_cluster ? "standby_leader" : "leader";
    } else if (c.synchronous_mode && std::find(c.sync_standbys.begin(), c.sync_standbys.end(),
                                               m->name) != c.sync_standbys.end()) {
      role = c.sync_quorum > 0 ? "quorum_standby" : "sync_standby";  // Patroni 4's word
    } else {
      role = "replica";
    }
    std::string state =
        role != "leader" && !m->replication_state.empty() ? m->replication_state : m->state;
    Json member =
        Json{{"name", m->name}, {"role", role}, {"state", state}, {"api_url", m->api_url}};
    if (!m->host.empty()) {
      member["host"] = m->host;
      if (m->port) member["port"] = *m->port;
    }
    if (m->timeline) member["timeline"] = m->timeline->value();
    if (m->pending_restart) member["pending_restart"] = true;
    if (m->scheduled_restart) {
      auto scheduled = Json::parse(*m->scheduled_restart, nullptr, false);
      if (scheduled.is_object()) member["scheduled_restart"] = std::move(scheduled);
    }
    if (!m->tags.empty()) member["tags"] = TagsJson(m->tags);
    if (!(c.leader && m->name == leader)) {
      auto add = [&](const char* lsn_key, const char* lag_key, const std::optional<Lsn>& lsn) {
        if (!lsn || lsn->value() == 0) {
          member[lsn_key] = "unknown";
          member[lag_key] = "unknown";
        } else {
          member[lag_key] = cluster_lsn >= lsn->value() ? cluster_lsn - lsn->value() : 0;
          member[lsn_key] = lsn->ToString();
        }
      };
      add("receive_lsn", "receive_lag", m->receive_lsn);
      add("replay_lsn", "replay_lag", m->replay_lsn);
      add("lsn", "lag", m->lsn);
    }
    members.push_back(std::move(member));
  }
  Json out = Json{{"members", std::move(members)}};
  if (s.pause) out["pause"] = true;
  if (c.scheduled_switchover) {
    Json sw = Json{{"at", c.scheduled_switchover->at}};
    if (!c.scheduled_switchover->from.empty()) sw["from"] = c.scheduled_switchover->from;
    if (!c.scheduled_switchover->to.empty()) sw["to"] = c.scheduled_switchover->to;
    out["scheduled_switchover"] = std::move(sw);
  }
  out["scope"] = s.self.scope;
  return out.dump();
}

std::string HistoryJson(const ClusterView& c) {
  Json out = Json::array();
  for (const auto& h : c.history) {
    Json line = Json::array({h.timeline, h.lsn, h.reason});
    if (!h.timestamp.empty() || !h.new_leader.empty()) line.push_back(h.timestamp);
    if (!h.new_leader.empty()) line.push_back(h.new_leader);
    out.push_back(std::move(line));
  }
  return out.dump();
}

std::string MetricsText(const ApiSnapshot& s) {
  const LocalStatus& self = s.self;
  const std::string labels =
      "{scope=\"" + EscapeLabel(self.scope) + "\",name=\"" + EscapeLabel(self.name) + "\"}";
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help,
                    const std::string& value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += labels;
    out += ' ';
    out += value;
    out += '\n';
  };
  auto b = [](bool v) { return std::string(v ? "1" : "0"); };
  auto u = [](uint64_t v) { return std::to_string(v); };
  const bool running = self.state == PgState::kRunning;
  const bool details = ReportsPostgresDetails(self.state);
  const bool replica_like = details && self.role != PgRole::kPrimary;

  metric("patroni_version", "gauge", "Patroni semver without periods.", PaddedSemver(self.version));
  metric("patroni_postgres_running", "gauge", "Value is 1 if Postgres is running, 0 otherwise.",
         b(running));
  metric("patroni_postmaster_start_time", "gauge", "Epoch seconds since Postgres started.",
         EpochSeconds(details ? self.postmaster_start_time : std::nullopt));
  metric("patroni_primary", "gauge", "Value is 1 if this node is the leader, 0 otherwise.",
         b(details && self.role == PgRole::kPrimary));
  metric(
      "patroni_xlog_location", "counter",
      "Current location of the Postgres transaction log, 0 if this node is not the leader.",
      u(details && self.role == PgRole::kPrimary && self.xlog_location ? self.xlog_location->value()
                                                                       : 0));
  metric("patroni_standby_leader", "gauge",
         "Value is 1 if this node is the standby_leader, 0 otherwise.",
         b(details && self.role == PgRole::kStandbyLeader));
  metric("patroni_replica", "gauge", "Value is 1 if this node is a replica, 0 otherwise.",
         b(details && self.role == PgRole::kReplica));
  metric("patroni_sync_standby", "gauge", "Value is 1 if this node is a sync standby, 0 otherwise.",
         b(s.IsSyncStandby()));
  metric("patroni_quorum_standby", "gauge",
         "Value is 1 if this node is a quorum standby, 0 otherwise.", b(s.IsQuorumStandby()));
  metric("patroni_xlog_received_location", "counter",
         "Current location of the received Postgres transaction log, 0 if this node is not a "
         "replica.",
         u(replica_like && self.received_location ? self.received_location->value() : 0));
  metric("patroni_xlog_replayed_location", "counter",
         "Current location of the replayed Postgres transaction log, 0 if this node is not a "
         "replica.",
         u(replica_like && self.replayed_location ? self.replayed_location->value() : 0));
  metric("patroni_xlog_replayed_timestamp", "gauge",
         "Current timestamp of the replayed Postgres transaction log, 0 if null.",
         EpochSeconds(replica_like ? self.replayed_timestamp : std::nullopt));
  metric("patroni_xlog_paused", "gauge", "Value is 1 if the Postgres xlog is paused, 0 otherwise.",
         b(replica_like && self.replay_paused));
  metric("patroni_postgres_streaming", "gauge", "Value is 1 if Postgres is streaming, 0 otherwise.",
         b(details && self.replication_state == "streaming"));
  metric("patroni_postgres_in_archive_recovery", "gauge",
         "Value is 1 if Postgres is replicating from archive, 0 otherwise.",
         b(details && self.replication_state == "in archive recovery"));
  metric("patroni_postgres_server_version", "gauge",
         "Version of Postgres (if running), 0 otherwise.",
         std::to_string(details ? self.server_version : 0));
  metric("patroni_cluster_unlocked", "gauge", "Value is 1 if the cluster is unlocked, 0 if locked.",
         b(s.ClusterUnlocked()));
  metric("patroni_failsafe_mode_is_active", "gauge",
         "Value is 1 if failsafe mode is active, 0 if inactive.", "0");
  metric("patroni_postgres_timeline", "counter",
         "Postgres timeline of this node (if running), 0 otherwise.",
         std::to_string(details && self.timeline ? self.timeline->value() : 0));
  metric("patroni_dcs_last_seen", "gauge",
         "Epoch timestamp when DCS was last contacted successfully by Patroni.",
         std::to_string(self.dcs_last_seen));
  metric("patroni_pending_restart", "gauge", "Value is 1 if the node needs a restart, 0 otherwise.",
         b(self.pending_restart));
  metric("patroni_is_paused", "gauge", "Value is 1 if auto failover is disabled, 0 otherwise.",
         b(s.pause));
  const int state_index = self.state == PgState::kUnknown ? -1 : static_cast<int>(self.state);
  metric("patroni_postgres_state", "gauge",
         "Numeric representation of Postgres state (0=initdb, 1=initdb_failed, "
         "2=custom_bootstrap, 3=custom_bootstrap_failed, 4=creating_replica, 5=running, "
         "6=starting, 7=bootstrap_starting, 8=start_failed, 9=restarting, 10=restart_failed, "
         "11=stopping, 12=stopped, 13=stop_failed, 14=crashed).",
         std::to_string(state_index));
  return out;
}

}  // namespace pgwarden::api
