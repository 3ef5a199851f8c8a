// ClusterStore: the cluster's etcd keys, typed. The layer between the decision core and the
// Dcs interface: it reads the whole cluster prefix into a core::ClusterView and carries out
// the core's etcd actions as compare-and-swap transactions.
//
// Key layout under /<namespace>/<scope>/ (docs/ha-core.md has the values):
//   initialize       system identifier ("" while a bootstrap runs)      no lease
//   config           dynamic configuration (JSON)                       no lease
//   leader           leader's member name                               leader's lease
//   members/<name>   member state (JSON)                                member's lease
//   status           {"optime": <lsn>} written by the leader            no lease
//   history          [[timeline, switch_lsn, reason, time, new, old]]   no lease
//   failover         {"leader", "member", "scheduled_at"}               no lease
//   sync             {"leader", "sync_standby", "quorum"?}               no lease
//
// Every write of `leader` is conditional: created only if absent, deleted only if its value is
// us; `status`, `history` and `initialize` are written only while `leader` is us. A frozen old
// primary that resumes therefore cannot overwrite the new leader's keys.
//
// Errors: kUnavailable / kTimeout from the store pass through (outcome unknown); kConflict when
// a compare failed (someone else holds the key or changed it); kNotFound when our lease is gone.
// Thread-safety: as the Dcs it wraps; the object itself holds no mutable state.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "core/actions.h"
#include "core/model.h"
#include "dcs/dcs.h"

namespace pgwarden::cluster {

// The keys of one cluster.
struct Keys {
  // namespace "service" or "/service", scope "pg1" -> prefix "/service/pg1/".
  Keys(std::string_view name_space, std::string_view scope);
  std::string prefix;
  std::string initialize, config, leader, members, status, history, failover, sync;
  std::string Member(const MemberName& name) const { return members + name.str(); }
};

// A cluster view and what was wrong with the keys that could not be used.
struct ClusterRead {
  core::ClusterView view;
  std::vector<Error> problems;  // kCorrupt per malformed key; that key is left out of the view
  // members/<name> "scheduled_restart" objects (JSON text), for `pgwarden list`; the decision
  // core does not look at them.
  std::map<MemberName, std::string> scheduled_restarts;
};

class ClusterStore {
 public:
  // `dcs` must outlive this object.
  ClusterStore(dcs::Dcs& dcs, Keys keys) : dcs_(dcs), keys_(std::move(keys)) {}

  const Keys& keys() const { return keys_; }

  // One range read of the prefix. Fails only when the store cannot be read.
  Result<ClusterRead> Read() const;

  // The core's etcd actions, for member `me` holding lease `lease`. Each is idempotent:
  // repeating a successful one succeeds again.
  Result<void> ClaimBootstrap(const MemberName& me, dcs::LeaseId lease);
  Result<void> WriteInitialize(const MemberName& me, const std::string& system_identifier);
  Result<void> AcquireLeader(const MemberName& me, dcs::LeaseId lease);
  Result<void> ReleaseLeader(const MemberName& me);
  Result<void> UpdateLeaderStatus(const MemberName& me, const core::LeaderStatus& status);
  // `scheduled_restart`: see EncodeMember.
  Result<void> WriteMember(const core::Member& member, dcs::LeaseId lease,
                           const std::optional<std::string>& scheduled_restart = std::nullopt);
  Result<void> AppendHistory(const MemberName& me, const core::HistoryEntry& entry,
                             int64_t expected_mod_revision);
  Result<void> ClearFailoverRequest(int64_t mod_revision);
  // `sync` = {leader: me, sync_standby, quorum (only when > 0)}, only if its mod_revision is
  // still `expected` (0: absent) and `leader` is me. Ok when the key already holds that value.
  Result<void> WriteSync(const MemberName& me, const std::vector<MemberName>& sync_standby,
                         int64_t expected_mod_revision, int quorum = 0);
  // For the REST API / CLI: create the `failover` request unless one exists (kConflict).
  Result<void> RequestFailover(const core::FailoverRequest& request);

  // Carries out one of the core's etcd actions (ClaimBootstrap ... ClearFailoverRequest).
  // kInvalidArgument for an action that is not an etcd action.
  Result<void> Execute(const core::Action& action, const MemberName& me, dcs::LeaseId lease);
  static bool IsEtcdAction(const core::Action& action);

 private:
  dcs::Dcs& dcs_;
  Keys keys_;
};

}  // namespace pgwarden::cluster
