#include "cli/cluster_table.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cluster/conn_url.h"

namespace pgwarden::cli {
namespace {

std::string StateName(const core::Member& m, bool is_leader) {
  switch (m.state) {
    case core::PgState::kRunning:
      // A running replica streams from its upstream (the agent restarts one that cannot).
      return (!is_leader && m.role == core::MemberRole::kReplica) ? "streaming" : "running";
    case core::PgState::kStarting:
      return "starting";
    case core::PgState::kStopping:
      return "stopping";
    case core::PgState::kStopped:
      return "stopped";
    case core::PgState::kCrashed:
      return "crashed";
  }
  return "unknown";
}

std::string TagsText(const core::Tags& t) {
  std::vector<std::string> parts;
  if (t.nofailover) parts.emplace_back("nofailover");
  if (t.nosync) parts.emplace_back("nosync");
  if (t.noloadbalance) parts.emplace_back("noloadbalance");
  if (t.failover_priority != 1)
    parts.push_back("failover_priority: " + std::to_string(t.failover_priority));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// Whole MB, rounded as patronictl does: a replica a few bytes behind shows 0, not 1.
std::string LagMb(const MemberRow& row) {
  if (!row.lag_bytes) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", *row.lag_bytes / 1048576.0);
  return buf;
}

}  // namespace

std::string HostFromConnUrl(const std::string& conn_url) {
  auto address = cluster::ParseConnUrl(conn_url);
  if (!address) return conn_url;
  std::string host =
      address->host.find(':') != std::string::npos ? "[" + address->host + "]" : address->host;
  return address->port ? host + ":" + std::to_string(*address->port) : host;
}

std::string ScheduledRestartText(const std::string& scheduled_restart_json) {
  auto j = nlohmann::json::parse(scheduled_restart_json, nullptr, false);
  if (!j.is_object() || !j.contains("schedule") || !j["schedule"].is_string()) return "";
  std::string text = j["schedule"].get<std::string>();
  if (text.size() > 10 && text[10] == 'T') text[10] = ' ';
  if (j.contains("postgres_version") && j["postgres_version"].is_string()) {
    text += " if version < " + j["postgres_version"].get<std::string>();
  }
  return text;
}

ClusterTable BuildClusterTable(const std::string& scope, const core::ClusterView& view,
                               const std::map<MemberName, std::string>& scheduled_restarts) {
  ClusterTable table;
  table.scope = scope;
  table.system_identifier = view.initialize.value_or("");
  std::optional<Lsn> reference;
  if (view.status) reference = view.status->optime;
  const core::Member* leader = view.leader ? view.FindMember(view.leader->holder) : nullptr;
  if (leader && (!reference || leader->current_lsn > *reference)) reference = leader->current_lsn;
  for (const auto& [name, m] : view.members) {
    MemberRow row;
    const bool is_leader = view.LeaderIs(name);
    row.member = name.str();
    row.host = HostFromConnUrl(m.conn_url);
    bool sync = view.sync &&
                std::find(view.sync->sync_standby.begin(), view.sync->sync_standby.end(), name) !=
                    view.sync->sync_standby.end();
    // Quorum mode (quorum > 0): a listed member is one of the quorum, not complete by itself
    // (Patroni 4's "Quorum Standby").
    row.role = is_leader ? "Leader"
               : sync    ? (view.sync->quorum > 0 ? "Quorum Standby" : "Sync Standby")
                         : "Replica";
    row.state = StateName(m, is_leader);
    row.timeline = m.timeline.value();
    if (!is_leader && reference) {
      Lsn pos = std::max(m.received_lsn, m.replayed_lsn);
      row.lag_bytes = reference->BytesSince(pos);
    }
    row.tags = TagsText(m.tags);
    row.pending_restart = m.pending_restart;
    if (auto it = scheduled_restarts.find(name); it != scheduled_restarts.end()) {
      row.scheduled_restart = ScheduledRestartText(it->second);
    }
    table.rows.push_back(std::move(row));
  }
  if (view.config_json) {
    // Patroni's Cluster.is_paused(); a config that does not parse is reported by the agents.
    auto config = nlohmann::json::parse(*view.config_json, nullptr, false);
    table.paused = config.is_object() && config.contains("pause") && config["pause"].is_boolean() &&
                   config["pause"].get<bool>();
  }
  if (view.failover) {
    const auto& f = *view.failover;
    table.pending = f.leader ? "Switchover from " + f.leader->str() : "Failover";
    if (f.candidate) table.pending += " to " + f.candidate->str();
    if (f.scheduled_at) table.pending += " at " + core::FormatIso8601(*f.scheduled_at);
  }
  return table;
}

std::string RenderTable(const ClusterTable& table) {
  std::vector<std::string> headers = {"Member", "Host", "Role", "State", "TL", "Lag in MB"};
  // Like patronictl, the optional columns appear only when some member has a value.
  bool any_pending = std::any_of(table.rows.begin(), table.rows.end(),
                                 [](const MemberRow& r) { return r.pending_restart; });
  bool any_scheduled = std::any_of(table.rows.begin(), table.rows.end(),
                                   [](const MemberRow& r) { return !r.scheduled_restart.empty(); });
  bool any_tags = std::any_of(table.rows.begin(), table.rows.end(),
                              [](const MemberRow& r) { return !r.tags.empty(); });
  if (any_pending) headers.emplace_back("Pending restart");
  if (any_scheduled) headers.emplace_back("Scheduled restart");
  if (any_tags) headers.emplace_back("Tags");
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : table.rows) {
    std::vector<std::string> line = {
        r.member, r.host, r.role, r.state, r.timeline ? std::to_string(r.timeline) : "", LagMb(r)};
    if (any_pending) line.push_back(r.pending_restart ? "*" : "");
    if (any_scheduled) line.push_back(r.scheduled_restart);
    if (any_tags) line.push_back(r.tags);
    cells.push_back(std::move(line));
  }
  std::vector<size_t> width(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) {
    width[i] = headers[i].size();
    for (const auto& line : cells) width[i] = std::max(width[i], line[i].size());
  }
  auto rule = [&](std::string title) {
    std::string out = "+";
    for (size_t i = 0; i < width.size(); ++i) out += std::string(width[i] + 2, '-') + "+";
    if (!title.empty() && title.size() + 4 < out.size())
      out.replace(1, title.size() + 2, " " + title + " ");
    return out + "\n";
  };
  auto row = [&](const std::vector<std::string>& line) {
    std::string out = "|";
    for (size_t i = 0; i < line.size(); ++i) {
      bool right = i >= 4 && i <= 5;  // numbers
      std::string pad(width[i] - line[i].size(), ' ');
      out += " " + (right ? pad + line[i] : line[i] + pad) + " |";
    }
    return out + "\n";
  };
  std::string title = "Cluster: " + table.scope;
  if (!table.system_identifier.empty()) title += " (" + table.system_identifier + ")";
  std::string out = rule(title) + row(headers) + rule("");
  for (const auto& line : cells) out += row(line);
  out += rule("");
  if (table.paused) out += " Maintenance mode: on\n";  // patronictl's line
  if (!table.pending.empty()) out += " " + table.pending + "\n";
  return out;
}

std::string RenderJson(const ClusterTable& table) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : table.rows) {
    nlohmann::json j = {{"Cluster", table.scope},
                        {"Member", r.member},
                        {"Host", r.host},
                        {"Role", r.role},
                        {"State", r.state}};
    if (r.timeline) j["TL"] = r.timeline;
    if (r.lag_bytes) j["Lag in MB"] = static_cast<double>(*r.lag_bytes) / 1048576.0;
    if (r.pending_restart) j["Pending restart"] = "*";
    if (!r.scheduled_restart.empty()) j["Scheduled restart"] = r.scheduled_restart;
    if (!r.tags.empty()) j["Tags"] = r.tags;
    out.push_back(std::move(j));
  }
  return out.dump(2) + "\n";
}

}  // namespace pgwarden::cli
