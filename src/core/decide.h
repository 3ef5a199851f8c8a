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
  // Since when we wait for the candidate of a failover request (its mod_revision, time).
  std::optional<std::pair<int64_t, SteadyTime>> failover_wait;
  // The leader we last saw (for history's old_leader).
  std::optional<MemberName> last_leader;
  // Synchronous replication (leader): for each standby pg_stat_replication reports as sync,
  // the primary's flush LSN when we first saw it so. It may enter `sync` once it has flushed
  // that far (every commit acknowledged before it became synchronous).
  std::map<MemberName, Lsn> sync_ready_at;
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

// True when `a` beats `b` in an election: received LSN, then failover_priority, then the
// smaller name.
// Synchronous mode: whether `name` may take the leader lock after the primary is lost: it is
// listed in `sync`, or is the leader that wrote it. Without a `sync` key: anyone may.
bool SyncAllowsTakeover(const ClusterView& view, const MemberName& name);

bool Better(Lsn a_lsn, int a_priority, const MemberName& a, Lsn b_lsn, int b_priority,
            const MemberName& b);

}  // namespace pgwarden::core
