// The actions the decision core asks the shell to carry out, and what the shell reports back.
//
// Contract with the shell (see docs/ha-core.md):
//  - A Decision's actions run in order. When one fails, the rest of that decision is skipped
//    (e.g. [AcquireLeader, Promote]: a lost compare-and-swap means no promotion).
//  - No action of a Decision may START after the decision's `valid_until`: a decision taken by
//    a leader is only good while its lease is; an agent frozen between deciding and acting
//    must not act on a stale decision when it resumes. Such an action is reported as kTimeout.
//  - Every action is idempotent: the core repeats an action until the observation shows its
//    effect, so the shell may run it twice.
//  - etcd actions are quick (bounded by the request timeout) and report their outcome in the
//    next Observation's `last`. PostgreSQL actions (start, stop, promote, rewind, clone,
//    initdb) are long: the shell starts them and reports them as `in_flight` until they end;
//    their outcome then comes in `last`. A StopPostgres preempts an operation in flight (it is
//    how a leader fences itself while a promotion or start still runs).
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/types.h"
#include "core/model.h"

namespace pgwarden::core {

// --- etcd (carried out by src/cluster/) --------------------------------------------------------

// Bootstrap race: atomically create `initialize` = "" (if absent) and `leader` = us on our lease,
// both only if absent (or `initialize` is "" from a bootstrap that died). Conflict: lost.
struct ClaimBootstrap {};
// Write `initialize` = system identifier, only if absent or "" and while `leader` is us.
struct WriteInitialize {
  std::string system_identifier;
};
// Create `leader` = us on our lease, only if absent (create_revision == 0). Conflict: lost.
struct AcquireLeader {};
// Delete `leader` only if its value is us.
struct ReleaseLeader {};
// Write `status` {optime} only while `leader` is us. Conflict: the key is not ours.
struct UpdateLeaderStatus {
  Lsn optime;
};
// Put members/<name> on our lease.
struct WriteMember {
  Member member;
};
// Append an entry to `history`, compare-and-swap on the revision read, while `leader` is us.
struct AppendHistory {
  HistoryEntry entry;
  int64_t expected_mod_revision = 0;  // 0: the key must be absent
};
// Delete `failover` if its mod_revision is still the one read.
struct ClearFailoverRequest {
  int64_t mod_revision = 0;
};

// Write `sync` = {leader: us, sync_standby}, compare-and-swap on the mod_revision read (0: the
// key must be absent) and while `leader` is us. Only the leader writes `sync`.
struct WriteSync {
  std::vector<MemberName> sync_standby;
  int64_t expected_mod_revision = 0;
  int quorum = 0;  // SyncState::quorum (0: each listed member holds every commit)
};

// --- PostgreSQL (long: carried out asynchronously) -----------------------------------------------

// initdb a new cluster into the (empty) data directory.
struct InitDb {};
// pg_basebackup from `from` into the data directory; `remove_existing` first wipes it (re-clone).
struct CloneFrom {
  MemberName from;
  bool remove_existing = false;
};
enum class StartRole { kPrimary, kReplica };
// Start PostgreSQL; as a replica it streams from `upstream` (none: recovery only, no streaming).
struct StartPostgres {
  StartRole role = StartRole::kReplica;
  std::optional<MemberName> upstream;
};
enum class StopMode {
  kFast,       // pg_ctl stop -m fast: clients cut at once, shutdown checkpoint (graceful demote)
  kImmediate,  // pg_ctl stop -m immediate: no checkpoint (fencing)
};
// Stop PostgreSQL. Writes stop at the start of either mode. Preempts an operation in flight.
struct StopPostgres {
  StopMode mode = StopMode::kFast;
};
// pg_ctl promote.
struct Promote {};
// Point a running replica at another upstream (primary_conninfo + reload, restart if needed).
struct Follow {
  MemberName leader;
};
// pg_rewind the stopped data directory against `from` (crash recovery first if needed).
struct Rewind {
  MemberName from;
};

// Primary: synchronous_standby_names = 'FIRST count ("a","b")' (quorum: 'ANY count (...)'; ''
// with no names, '*' with no names and strict) and reload. Quick; not a long operation.
struct SetSynchronousStandbys {
  std::vector<MemberName> names;
  int count = 0;
  bool strict = false;
  bool quorum = false;
};
// The value of synchronous_standby_names for `s`.
std::string SynchronousStandbyNamesValue(const SetSynchronousStandbys& s);
// What the shell records as applied after carrying out `s`.
SyncStandbyNames AppliedBy(const SetSynchronousStandbys& s);

// --- Other --------------------------------------------------------------------------------------

// Ask every named peer's REST API for its state now; the answers come in the next Observation's
// `probes`, with `started_at` no earlier than the time of this decision.
struct ProbePeers {
  std::vector<MemberName> peers;
};
// Leader: make the physical replication slots exactly `slots` (create missing, drop others).
struct SyncSlots {
  std::vector<std::string> slots;
};

using Action = std::variant<ClaimBootstrap, WriteInitialize, AcquireLeader, ReleaseLeader,
                            UpdateLeaderStatus, WriteMember, AppendHistory, ClearFailoverRequest,
                            WriteSync, InitDb, CloneFrom, StartPostgres, StopPostgres, Promote,
                            Follow, Rewind, SetSynchronousStandbys, ProbePeers, SyncSlots>;

// "AcquireLeader", "StartPostgres(replica of n1)", ...
std::string Describe(const Action& action);
// The variant alternative's name only: "AcquireLeader".
std::string ActionName(const Action& action);

// True for the long PostgreSQL operations the shell runs asynchronously.
bool IsPostgresOperation(const Action& action);

// What became of one action.
struct Outcome {
  Action action;
  Result<void> result;  // kConflict: a compare failed; kTimeout: not started (decision expired)
};

// A PostgreSQL operation the shell is running.
struct InFlight {
  Action action;
  SteadyTime started_at;
};

}  // namespace pgwarden::core
