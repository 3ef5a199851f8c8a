// The operator's view of a cluster: the rows of `pgwarden list`, derived from a ClusterView
// (pure), and their rendering as a table (like `patronictl list`) or as JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"

namespace pgwarden::cli {

struct MemberRow {
  std::string member;
  std::string host;   // host:port from the member's conn_url
  std::string role;   // "Leader", "Sync Standby", "Replica" (patronictl's words)
  std::string state;  // "running", "streaming", "stopped", "starting", "crashed", ...
  uint32_t timeline = 0;
  std::optional<uint64_t> lag_bytes;  // replicas: behind the leader's last known position
  std::string tags;                   // "nofailover, noloadbalance" ...
  bool pending_restart = false;       // a changed parameter waits for a restart
  // "2026-11-26 08:15:00+00:00 if version < 15.6": a restart scheduled on the member (its
  // member key's `scheduled_restart`); empty when none.
  std::string scheduled_restart;
};

struct ClusterTable {
  std::string scope;
  std::string system_identifier;  // from `initialize`
  std::vector<MemberRow> rows;    // sorted by member name
  std::string pending;            // a scheduled or pending switchover/failover, if any
  bool paused = false;            // maintenance mode (`pause: true` in the dynamic config)
};

// Rows for every member in `view`. Lag is measured against the leader's `status` optime (or the
// leader member's current position when `status` is missing). `scheduled_restarts`: member ->
// its member key's "scheduled_restart" object (JSON text; cluster::ClusterRead).
ClusterTable BuildClusterTable(const std::string& scope, const core::ClusterView& view,
                               const std::map<MemberName, std::string>& scheduled_restarts = {});

// The "Scheduled restart" cell for a `scheduled_restart` object, patronictl's way: the time,
// then " if version < X" when it has a postgres_version condition. Empty when unreadable.
std::string ScheduledRestartText(const std::string& scheduled_restart_json);

// "host:port" from "postgres://user@host:port/db?..." (or the input unchanged when it does not
// look like a URL).
std::string HostFromConnUrl(const std::string& conn_url);

// patronictl-style table:
// + Cluster: demo (7312345678901234567) --+---------+----+-----------+
// | Member | Host           | Role    | State     | TL | Lag in MB |
std::string RenderTable(const ClusterTable& table);
// [{"Cluster": "...", "Member": "...", "Host": ..., "Role": ..., "State": ..., "TL": ...,
//   "Lag in MB": ...}, ...] (patronictl list -f json's field names).
std::string RenderJson(const ClusterTable& table);

}  // namespace pgwarden::cli
