// DynamicConfig: the cluster-wide settings every member applies alike. They come from the YAML
// file's `bootstrap.dcs` section when the cluster is created, and from then on from the JSON
// value of etcd's `/<namespace>/<scope>/config` key (Patroni's layout, so patronictl
// show-config/edit-config keep working). Both readers share one validation (ValidateDynamicConfig)
// so the same value is judged alike wherever it comes from.
//
// Plain data: copyable, no I/O, no yaml-cpp or nlohmann headers here.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/ha_timing.h"

namespace pgwarden::config {

// A problem found in a config value: the dotted key path ("bootstrap.dcs.ttl",
// "postgresql.authentication.superuser.username", "bootstrap.initdb[2]") and what is wrong.
struct ConfigProblem {
  std::string path;
  std::string message;
  friend bool operator==(const ConfigProblem&, const ConfigProblem&) = default;
};

struct DynamicPostgresql {
  // PostgreSQL settings (GUCs), values as text exactly as postgresql.conf takes them.
  std::map<std::string, std::string> parameters;
  bool use_pg_rewind = false;  // Patroni's default
  bool use_slots = true;       // Patroni's default
  // Lines of pg_hba.conf; when empty the local postgresql.pg_hba / bootstrap.pg_hba apply.
  std::vector<std::string> pg_hba;

  friend bool operator==(const DynamicPostgresql&, const DynamicPostgresql&) = default;
};

struct DynamicConfig {
  std::chrono::seconds ttl = HaTiming::kDefaultTtl;
  std::chrono::milliseconds loop_wait = HaTiming::kDefaultLoopWait;
  std::chrono::milliseconds retry_timeout = HaTiming::kDefaultRetryTimeout;
  // A replica further behind the primary than this many bytes may not take part in a
  // failover (Patroni's default, 1 MiB).
  uint64_t maximum_lag_on_failover = 1024 * 1024;
  // Patroni's maximum_lag_on_syncnode: > 0, a standby further than this many bytes behind the
  // most advanced eligible standby is not (or no longer) a synchronous standby
  // (docs/sync-replication.md, "maximum_lag_on_syncnode"). -1 (the default) or 0: off.
  int64_t maximum_lag_on_syncnode = -1;
  bool synchronous_mode = false;
  // `synchronous_mode: quorum` (Patroni 4): synchronous_mode is true and commits wait for any
  // synchronous_node_count of the healthy standbys (ANY k); docs/sync-replication.md.
  bool synchronous_quorum = false;
  bool synchronous_mode_strict = false;
  int synchronous_node_count = 1;
  // How long a crashed primary may take to come back in place before a failover (Patroni's
  // default 300 s; 0 = fail over at once). Old name: master_start_timeout.
  std::chrono::milliseconds primary_start_timeout = std::chrono::seconds(300);
  // With synchronous_mode: how long a stop may take before the postmaster is killed.
  // nullopt (absent or 0): no limit.
  std::optional<std::chrono::milliseconds> primary_stop_timeout;
  // Maintenance mode (patronictl pause): no automatic failover or restart.
  bool pause = false;
  DynamicPostgresql postgresql;

  friend bool operator==(const DynamicConfig&, const DynamicConfig&) = default;

  // Patroni-compatible JSON: durations as numbers of seconds ("ttl": 2, "loop_wait": 0.5).
  // Keys pgwarden doesn't know (another tool may have written them) and keys it knows but
  // doesn't implement are kept out of the struct and reported as warnings; wrong types and
  // out-of-range values are errors. FromJson(ToJson(c)) == c for every valid c.
  std::string ToJson() const;
};

struct LoadedDynamicConfig {
  DynamicConfig config;
  std::vector<std::string> warnings;  // "<source>: <key>: ..." one per line
};

// Reads and validates the JSON of etcd's `config` key. `source` names the value in messages
// (e.g. "etcd /service/demo/config"). Error: kInvalidArgument (bad values) or kCorrupt (not
// JSON / not an object), whose message lists every problem, one per line.
Result<LoadedDynamicConfig> DynamicConfigFromJson(std::string_view json,
                                                  std::string_view source = "dynamic config");

// Range and consistency checks of the dynamic settings alone. Paths are relative to the
// dynamic section ("ttl", "postgresql.parameters"); the YAML loader prefixes "bootstrap.dcs.".
std::vector<ConfigProblem> ValidateDynamicConfig(const DynamicConfig& config);

}  // namespace pgwarden::config
