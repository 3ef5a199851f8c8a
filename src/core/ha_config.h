// HaConfig: the settings the decision core needs, as plain values with std::chrono durations.
// Defaults and validation belong to the config module (src/config/); the core is correct for
// any config that satisfies IsValid() (the timing rule in docs/ha-core.md).
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"
#include "common/types.h"
#include "core/model.h"

namespace pgwarden::core {

// The position of a pg_stat_replication row that maximum_lag_on_syncnode measures: the one
// commits wait for under the server's synchronous_commit (Patroni: remote_write -> write_lsn,
// remote_apply -> replay_lsn, anything else -> flush_lsn).
enum class SyncLagPosition { kWrite, kFlush, kReplay };

struct HaConfig {
  // Who we are, as published in members/<name>.
  MemberName name;
  std::string api_url;
  std::string conn_url;
  Tags tags;

  // Lease TTL: how long the leader key outlives its holder's last renewal.
  Duration ttl = seconds(5);
  // The periodic tick: the shell calls Decide at least this often (and at once on events).
  Duration loop_wait = seconds(1);
  // Bound of one etcd request / peer probe / retry period.
  Duration retry_timeout = seconds(2);
  // A primary stops accepting writes at last_confirmed_send + ttl - fence_margin: the margin
  // covers the time an immediate stop takes and clock-rate differences between hosts.
  Duration fence_margin = seconds(1);
  // Candidates further behind the leader's last status optime may not take the lock.
  uint64_t maximum_lag_on_failover = 1 << 20;
  // A leader whose PostgreSQL is down restarts it this long before giving the lock up.
  Duration primary_start_timeout = seconds(30);
  // A switchover gives up (and the old primary starts again) after this long.
  Duration switchover_timeout = seconds(30);
  bool use_pg_rewind = true;
  bool remove_data_directory_on_rewind_failure = false;
  // Synchronous replication (docs/sync-replication.md): the leader keeps
  // synchronous_node_count healthy replicas (not tagged nosync) synchronous and records in
  // `sync` those guaranteed to hold every acknowledged commit; only they may take over.
  bool synchronous_mode = false;
  // With no synchronous standby available, writes block ('*') instead of going asynchronous.
  bool synchronous_mode_strict = false;
  int synchronous_node_count = 1;
  // `synchronous_mode: quorum` (with synchronous_mode true): synchronous_standby_names =
  // 'ANY k (all healthy standbys)', k = synchronous_node_count; `sync` records the set and
  // its quorum (docs/sync-replication.md).
  bool synchronous_quorum = false;
  // Patroni's maximum_lag_on_syncnode (docs/sync-replication.md): > 0, a standby further than
  // this many bytes behind the most advanced eligible standby is not picked as a synchronous
  // standby (a current one is dropped through the usual shrink-first path); <= 0: off. With a
  // single eligible standby the rule does nothing (a deliberate difference from Patroni).
  int64_t maximum_lag_on_syncnode = -1;
  SyncLagPosition sync_lag_position = SyncLagPosition::kFlush;
  // Maintenance mode (`pause: true`, patronictl pause; docs/ha-core.md "Maintenance mode"): no
  // automatic failover, promotion, start, stop, restart, rewind or re-clone; a manual failover
  // or a switchover to a named candidate still works, and the lease fence still applies.
  bool pause = false;

  // The timing rule (docs/ha-core.md): ttl > fence_margin > 0, loop_wait > 0 and
  // loop_wait + retry_timeout + fence_margin <= ttl, so that a leader renews (and decides)
  // several times within one ttl. Returns "" or what is wrong.
  std::string Check() const;
};

}  // namespace pgwarden::core
