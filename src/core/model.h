// The facts the decision core decides on: what the agent read from etcd (ClusterView), what it
// knows of its own PostgreSQL (LocalPostgres), its lease, and the peers' answers to a probe.
//
// Plain values, no I/O: the agent shell fills them in (src/cluster/ turns the etcd prefix into a
// ClusterView), the core only reads them. Every field a shell cannot know is optional or has a
// documented neutral value, so a partial observation is still a valid one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/types.h"

namespace pgwarden::core {

// --- The cluster as stored in etcd ------------------------------------------------------------

// Member role as published in members/<name> ("role", Patroni's strings).
enum class MemberRole { kUninitialized, kPrimary, kReplica, kDemoted };
// State of a member's PostgreSQL as published ("state", Patroni's strings).
enum class PgState { kStopped, kStarting, kRunning, kStopping, kCrashed };

struct Tags {
  bool nofailover = false;     // never becomes primary
  bool nosync = false;         // never a synchronous standby (issue 4)
  bool noloadbalance = false;  // the proxy sends it no read-only traffic
  int failover_priority = 1;   // higher wins a tie on received LSN; 0 behaves as nofailover
  friend bool operator==(const Tags&, const Tags&) = default;
};

struct Member {
  MemberName name;
  MemberRole role = MemberRole::kUninitialized;
  PgState state = PgState::kStopped;
  std::string api_url;   // REST API, e.g. http://10.0.0.1:8008/patroni
  std::string conn_url;  // postgres://10.0.0.1:5432/postgres
  Timeline timeline;
  Lsn received_lsn;  // replicas: WAL received (flushed) from upstream
  Lsn replayed_lsn;  // replicas: WAL replayed
  Lsn current_lsn;   // primary: current WAL write position
  Tags tags;
  // A changed PostgreSQL parameter waits for a restart (pg_settings.pending_restart); Patroni's
  // `pending_restart: true` in the member key, patronictl's "Pending restart" column.
  bool pending_restart = false;
  int64_t lease = 0;  // the lease the key is attached to (0: none)
  friend bool operator==(const Member&, const Member&) = default;
};

struct LeaderKey {
  MemberName holder;
  int64_t lease = 0;         // etcd lease id the key is attached to
  int64_t mod_revision = 0;  // etcd revision of the last put
  int64_t create_revision = 0;
};

// `status`: written by the leader with each renewal; optime is the reference position for
// maximum_lag_on_failover.
struct LeaderStatus {
  Lsn optime;
};

// One timeline switch (Patroni's history list element: [timeline, switch_lsn, reason, time,
// new_leader]). `timeline` is the timeline that ENDED at `switch_lsn`; the new one is +1.
struct HistoryEntry {
  Timeline timeline;
  Lsn switch_lsn;
  std::string reason;
  std::string time;  // ISO 8601, display only
  MemberName new_leader;
  MemberName old_leader;  // may be empty (unknown)
  friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

// `failover`: a planned switchover (leader set) or a manual failover (only candidate set).
struct FailoverRequest {
  std::optional<MemberName> leader;
  std::optional<MemberName> candidate;
  std::optional<SystemTime> scheduled_at;
  int64_t mod_revision = 0;  // for the compare-and-swap that clears it
};

// `sync` (docs/sync-replication.md): the members of `sync_standby` that may hold every
// acknowledged commit, and `quorum` (Patroni 4's field): every acknowledged commit is held by at
// least |sync_standby| - quorum of them, so a candidate that sees quorum + 1 of them (itself
// included) at or behind its own position holds every acknowledged commit. quorum 0 (absent,
// the plain synchronous mode): each listed member holds every acknowledged commit.
struct SyncState {
  MemberName leader;
  std::vector<MemberName> sync_standby;
  int64_t mod_revision = 0;
  int quorum = 0;
};

struct ClusterView {
  // `initialize`: nullopt = absent (no cluster yet); "" = a bootstrap is in progress; else the
  // PostgreSQL system identifier of the cluster.
  std::optional<std::string> initialize;
  std::optional<LeaderKey> leader;
  std::map<MemberName, Member> members;
  std::optional<LeaderStatus> status;
  std::vector<HistoryEntry> history;  // oldest first
  int64_t history_mod_revision = 0;   // 0: key absent
  std::optional<FailoverRequest> failover;
  std::optional<SyncState> sync;
  std::optional<std::string> config_json;  // dynamic config, raw (the config module parses it)
  int64_t config_mod_revision = 0;
  int64_t revision = 0;  // etcd revision of the read

  // The cluster's current timeline according to its history: last switch + 1, or 1.
  Timeline ClusterTimeline() const;
  const Member* FindMember(const MemberName& name) const;
  bool LeaderIs(const MemberName& name) const { return leader && leader->holder == name; }
};

// --- The local PostgreSQL ---------------------------------------------------------------------

enum class DataDirState {
  kEmpty,             // absent, empty, or a partial leftover the shell will wipe
  kBootstrapPending,  // our InitDb finished but `initialize` does not have its sysid yet
  kInitialized,       // a data directory with a system identifier
};
// One row of the primary's pg_stat_replication, by application_name (= member name).
struct StandbyReplication {
  MemberName name;
  bool streaming = false;  // state = 'streaming'
  bool sync = false;       // sync_state = 'sync' (or 'quorum')
  Lsn flush_lsn;
  // write_lsn / replay_lsn of the row, for maximum_lag_on_syncnode measured on the position
  // synchronous_commit waits for (HaConfig::sync_lag_position); nullopt: not reported, the
  // flush position stands in.
  std::optional<Lsn> write_lsn;
  std::optional<Lsn> replay_lsn;
  friend bool operator==(const StandbyReplication&, const StandbyReplication&) = default;
};

// synchronous_standby_names as the shell last applied it: 'FIRST count ("a","b")' (quorum:
// 'ANY count ("a","b")'); no names and !strict: '' (asynchronous); no names and strict: '*'
// (every commit waits).
struct SyncStandbyNames {
  std::vector<MemberName> names;
  int count = 0;
  bool strict = false;
  bool quorum = false;
  friend bool operator==(const SyncStandbyNames&, const SyncStandbyNames&) = default;
};

enum class ProcessState { kStopped, kStarting, kRunning, kStopping, kCrashed };
enum class PgRole { kPrimary, kReplica };

struct LocalPostgres {
  DataDirState data_dir = DataDirState::kEmpty;
  std::string system_identifier;  // for kBootstrapPending / kInitialized
  ProcessState state = ProcessState::kStopped;
  // Running: pg_is_in_recovery(). Stopped: pg_control's state (in production => primary).
  PgRole role = PgRole::kReplica;
  Timeline timeline;
  Lsn write_lsn;     // primary: pg_current_wal_lsn(); stopped: end of WAL (checkpoint)
  Lsn received_lsn;  // replica: pg_last_wal_receive_lsn()
  Lsn replayed_lsn;  // replica: pg_last_wal_replay_lsn()
  // Where the current timeline began (from its .history file); for the history entry written
  // after a promotion.
  std::optional<Lsn> timeline_start_lsn;
  std::optional<MemberName> upstream;  // the member whose WAL it streams (primary_conninfo)
  // The shell's own divergence check against the current leader (pg_rewind --dry-run or a
  // timeline history comparison). nullopt: the core decides from the cluster history.
  std::optional<bool> diverged;
  // Primary only (synchronous replication, docs/sync-replication.md): pg_stat_replication,
  // pg_current_wal_flush_lsn() (read no earlier than the rows) and the applied
  // synchronous_standby_names (nullopt: unknown, or reset by a restart / config rewrite).
  std::vector<StandbyReplication> replication;
  Lsn flush_lsn;
  std::optional<SyncStandbyNames> sync_standby_names;
  // Running: some pg_settings row has pending_restart (a parameter changed by a reload needs a
  // restart). Published in the member key (Member::pending_restart).
  bool pending_restart = false;

  bool Running() const { return state == ProcessState::kRunning; }
  // Could be accepting writes: a running or starting primary.
  bool MayAcceptWrites() const {
    return role == PgRole::kPrimary &&
           (state == ProcessState::kRunning || state == ProcessState::kStarting);
  }
  // The furthest WAL position this server has.
  Lsn EndLsn() const;
};

// --- Lease and peers --------------------------------------------------------------------------

// This agent's etcd lease, kept alive by the shell on its own never-blocked path.
struct LeaseFacts {
  int64_t id = 0;  // 0: no lease yet
  // Local steady time at which the last keep-alive that etcd confirmed was SENT (or the grant
  // request was sent). etcd extends the lease from when it receives the request, which is no
  // earlier, so the lease cannot expire in etcd before last_confirmed_send + ttl.
  std::optional<SteadyTime> last_confirmed_send;
  bool lost = false;  // etcd said the lease does not exist (expired or revoked)
};

// A peer's answer to a probe of its REST API.
struct PeerStatus {
  bool reachable = false;
  bool running = false;
  PgRole role = PgRole::kReplica;
  Timeline timeline;
  Lsn received_lsn;  // replicas: received; primaries: current write position
  Lsn replayed_lsn;
  Tags tags;
};

struct PeerProbe {
  SteadyTime started_at;  // when the shell sent the first request
  std::map<MemberName, PeerStatus> peers;
};

// UTC ISO 8601 with milliseconds and offset, "2026-11-26T01:02:03.250+00:00" (history
// timestamps, scheduled switchovers). Pure: formats the given time, reads no clock.
std::string FormatIso8601(SystemTime t);

}  // namespace pgwarden::core
