// Decide(): the HA decision core. A pure function of (memory, observation, config).
//
// The shell calls it on every tick (at least every loop_wait, and at Decision::wake_at), at once
// when the leader key changes (watch), when a PostgreSQL operation ends and when peer probes
// come back. It carries out the returned actions in order (see core/actions.h for the contract)
// and passes Decision::next back as the memory of the next call.
//
// Decide does no I/O, reads no clock (the time is Observation::now), logs nothing (the reason
// is in Decision::reason) and keeps no state of its own. It never throws.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "core/actions.h"
#include "core/ha_config.h"
#include "core/model.h"

namespace pgwarden::core {

struct Observation {
  SteadyTime now;                      // steady clock: leases, deadlines
  SystemTime wall_now;                 // wall clock: history timestamps, scheduled switchovers
  std::optional<ClusterView> cluster;  // nullopt: etcd could not be read
  LocalPostgres pg;
  LeaseFacts lease;
  std::optional<InFlight> in_flight;  // the PostgreSQL operation running, if any
  std::vector<Outcome> last;          // outcomes since the previous call
  std::optional<PeerProbe> probes;    // the answers to the last ProbePeers, if any
};

// What the core remembers between calls. Only Decide writes it.
struct AgentMemory {
  // Last time a cluster view was read (for the "etcd unreachable for too long" fence).
  std::optional<SteadyTime> last_view_at;
  // When we asked for the peer probes an election (or switchover) waits for.
  std::optional<SteadyTime> probe_requested_at;
  // Leader with PostgreSQL down: when it gives the lock up if PostgreSQL is not back.
  std::optional<SteadyTime> primary_start_deadline;
  // Planned switchover in progress (we are the old leader).
  struct Switchover {
    std::optional<MemberName> candidate;
    SteadyTime deadline;
    int64_t request_revision = 0;
  };
  std::optional<Switchover> switchover;
  // Rewind failed against this timeline of the cluster: do not retry it, re-clone or wait.
  std::optional<Timeline> rewind_failed_on;
  // Last time members/<name> was written (it is rewritten at least every loop_wait).
  std::optional<SteadyTime> member_written_at;
  std::optional<Member> member_written;
  // Last time the leader wrote `status` (rewritten when the position moved, once per loop_wait).
  std::optional<SteadyTime> status_written_at;
  // Since when we wait for the candidate of a failover request (its mod_revision, time).
  std::optional<std::pair<int64_t, SteadyTime>> failover_wait;
  // The leader we last saw (for history's old_leader).
  std::optional<MemberName> last_leader;
  // Synchronous replication (leader): for each standby pg_stat_replication reports as sync,
  // the primary's flush LSN when we first saw it so. It may enter `sync` once it has flushed
  // that far (every commit acknowledged before it became synchronous).
  std::map<MemberName, Lsn> sync_ready_at;
  // Quorum mode (leader): the applied synchronous_standby_names once pg_stat_replication
  // confirms every walsender uses it, and the primary's flush LSN at that moment. Commits past
  // that LSN were acknowledged under this setting; those before it are covered by the `sync`
  // key or by the standbys that have flushed past it.
  std::optional<std::pair<SyncStandbyNames, Lsn>> quorum_since;
};

struct Decision {
  std::vector<Action> actions;  // carried out in order
  std::string reason;           // for the log and the REST API
  AgentMemory next;
  // No action may start after this time (the fence deadline for a leader).
  SteadyTime valid_until;
  // Call Decide again no later than this (the fence deadline, a probe, a timeout, loop_wait).
  SteadyTime wake_at;
  // We hold a valid leader lease and our PostgreSQL is, or becomes, the primary. This is what
  // the REST API's /primary reports.
  bool leader = false;
};

Decision Decide(const AgentMemory& memory, const Observation& observation, const HaConfig& config);

// --- Pieces of the decision, exposed for tests and the REST API ---------------------------------

// The time at which a leader must have stopped accepting writes; nullopt without a confirmed
// lease.
std::optional<SteadyTime> FenceDeadline(const LeaseFacts& lease, const HaConfig& config);

// Whether the local data has diverged from the cluster's history: it holds WAL past the point
// where its timeline ended (a former primary that wrote after the failover). nullopt: cannot
// tell from the history (our timeline's switch is not recorded).
std::optional<bool> DivergedFromHistory(const LocalPostgres& pg, const ClusterView& view);

// Why a member may not become primary through an election, or "" when it may:
// nofailover/priority 0, not a running replica, lag beyond maximum_lag_on_failover.
std::string Ineligibility(const Tags& tags, bool running_replica, Lsn received,
                          const ClusterView& view, const HaConfig& config);

// Synchronous mode, before any probe: whether `name` may take the leader lock after the
// primary is lost: it is the leader that wrote `sync`, or it is listed there (quorum 0), or a
// quorum could vouch for it (quorum > 0: see SyncQuorumAllows). Without a `sync` key (or with
// an empty leader): anyone may.
bool SyncAllowsTakeover(const ClusterView& view, const MemberName& name);

// Synchronous mode with what the candidate has seen: `name`, whose WAL ends at `position`, may
// take the lock only if it is certain to hold every acknowledged commit: it is the leader that
// wrote `sync`, or at least quorum + 1 members of sync_standby vouch for it: itself if listed,
// and each other listed member `seen` (a fresh probe of a running replica) at or behind
// `position`. Every acknowledged commit is on |sync_standby| - quorum of them, so quorum + 1 of
// them include one that holds it. Returns "" or why not.
std::string SyncQuorumRefusal(const ClusterView& view, const MemberName& name, Lsn position,
                              const std::map<MemberName, Lsn>& seen);

// The quorum-mode `sync` value that is safe to write (docs/sync-replication.md, "quorum"): the
// smallest quorum for the set `set` such that every commit acknowledged so far and every commit
// acknowledged under any of `settings` is on |set| - quorum members of `set`. `known_quorum`:
// the smallest such value for the commits so far (from the current key or the caught-up
// standbys). Returns nullopt when no quorum below |set| is safe (the key must list nobody).
std::optional<int> SafeQuorum(const std::vector<MemberName>& set, int known_quorum,
                              const std::vector<SyncStandbyNames>& settings);

// maximum_lag_on_syncnode (docs/sync-replication.md, "maximum_lag_on_syncnode"): which of
// `eligible` (the pg_stat_replication rows of the standbys that could be synchronous) are too
// far behind to be picked, with their lag in bytes. The lag of a row is measured on
// config.sync_lag_position against the most advanced of `eligible` on that position. Empty when
// the rule is off (maximum_lag_on_syncnode <= 0) or fewer than two standbys are eligible: the
// most advanced one always qualifies, so the rule only ever swaps a standby for a better one
// and never leaves the synchronous set empty on its own.
std::map<MemberName, uint64_t> LaggingStandbys(const std::vector<StandbyReplication>& eligible,
                                               const HaConfig& config);

// True when `a` beats `b` in an election: received LSN, then failover_priority, then the
// smaller name.

bool Better(Lsn a_lsn, int a_priority, const MemberName& a, Lsn b_lsn, int b_priority,
            const MemberName& b);

}  // namespace pgwarden::core
