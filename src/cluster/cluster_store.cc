#include "cluster/cluster_store.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "cluster/codec.h"

namespace pgwarden::cluster {
namespace {

using dcs::Compare;
using dcs::DeleteOp;
using dcs::GetOp;
using dcs::PutOp;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

std::string Trim(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

Keys::Keys(std::string_view name_space, std::string_view scope) {
  const std::string ns = Trim(name_space);
  prefix = "/" + (ns.empty() ? std::string() : ns + "/") + Trim(scope) + "/";
  initialize = prefix + "initialize";
  config = prefix + "config";
  leader = prefix + "leader";
  members = prefix + "members/";
  status = prefix + "status";
  history = prefix + "history";
  failover = prefix + "failover";
  sync = prefix + "sync";
}

Result<ClusterRead> ClusterStore::Read() const {
  auto range = dcs_.Get(keys_.prefix, /*prefix=*/true);
  if (!range) return Fail(range.error());
  ClusterRead out;
  core::ClusterView& v = out.view;
  v.revision = range->revision;
  auto keep = [&](auto result, auto&& store) {
    if (result) {
      store(std::move(*result));
    } else {
      out.problems.push_back(result.error());
    }
  };
  for (const dcs::KeyValue& kv : range->kvs) {
    const std::string& k = kv.key;
    if (k == keys_.initialize) {
      v.initialize = kv.value;
    } else if (k == keys_.config) {
      if (nlohmann::json::accept(kv.value)) {
        v.config_json = kv.value;
        v.config_mod_revision = kv.mod_revision;
      } else {
        out.problems.push_back(Error{ErrorCode::kCorrupt, k + ": not valid JSON"});
      }
    } else if (k == keys_.leader) {
      if (kv.value.empty()) {
        out.problems.push_back(Error{ErrorCode::kCorrupt, k + ": empty member name"});
        // An unreadable leader key is still a held lock: nobody may take it.
        v.leader = core::LeaderKey{MemberName("?"), kv.lease, kv.mod_revision, kv.create_revision};
      } else {
        v.leader =
            core::LeaderKey{MemberName(kv.value), kv.lease, kv.mod_revision, kv.create_revision};
      }
    } else if (k.starts_with(keys_.members)) {
      const std::string name = k.substr(keys_.members.size());
      if (name.empty() || name.find('/') != std::string::npos) {
        out.problems.push_back(Error{ErrorCode::kCorrupt, k + ": not a member key"});
        continue;
      }
      keep(DecodeMember(k, name, kv.value), [&](core::Member m) {
        m.lease = kv.lease;
        if (auto scheduled = ScheduledRestartOfMember(kv.value)) {
          out.scheduled_restarts[m.name] = std::move(*scheduled);
        }
        v.members[m.name] = std::move(m);
      });
    } else if (k == keys_.status) {
      keep(DecodeStatus(k, kv.value), [&](core::LeaderStatus s) { v.status = s; });
    } else if (k == keys_.history) {
      v.history_mod_revision = kv.mod_revision;
      keep(DecodeHistory(k, kv.value),
           [&](std::vector<core::HistoryEntry> h) { v.history = std::move(h); });
    } else if (k == keys_.failover) {
      keep(DecodeFailover(k, kv.value), [&](core::FailoverRequest r) {
        r.mod_revision = kv.mod_revision;
        v.failover = std::move(r);
      });
    } else if (k == keys_.sync) {
      keep(DecodeSync(k, kv.value), [&](core::SyncState s) {
        s.mod_revision = kv.mod_revision;
        v.sync = std::move(s);
      });
    }
    // Other keys (Patroni's optime/leader, failsafe, ...) are not ours to read.
  }
  return out;
}

Result<void> ClusterStore::ClaimBootstrap(const MemberName& me, dcs::LeaseId lease) {
  auto first = dcs_.Txn({Compare::Absent(keys_.leader), Compare::Absent(keys_.initialize)},
                        {PutOp{keys_.initialize, "", 0}, PutOp{keys_.leader, me.str(), lease}});
  if (!first) return Fail(first.error());
  if (first->succeeded) return Ok();
  // A bootstrap claimed earlier whose claimant died: `initialize` is "" and nobody leads.
  auto second =
      dcs_.Txn({Compare::Absent(keys_.leader), Compare::ValueEquals(keys_.initialize, "")},
               {PutOp{keys_.leader, me.str(), lease}}, {GetOp{keys_.leader, false}});
  if (!second) return Fail(second.error());
  if (second->succeeded) return Ok();
  const auto& r = second->ranges;
  if (!r.empty() && !r[0].kvs.empty() && r[0].kvs[0].value == me.str() &&
      r[0].kvs[0].lease == lease) {
    return Ok();  // ours already
  }
  return Fail(ErrorCode::kConflict,
              "bootstrap race lost: " + keys_.leader + " or " + keys_.initialize + " taken");
}

Result<void> ClusterStore::WriteInitialize(const MemberName& me, const std::string& sysid) {
  for (const Compare& init :
       {Compare::Absent(keys_.initialize), Compare::ValueEquals(keys_.initialize, "")}) {
    auto r = dcs_.Txn({Compare::ValueEquals(keys_.leader, me.str()), init},
                      {PutOp{keys_.initialize, sysid, 0}});
    if (!r) return Fail(r.error());
    if (r->succeeded) return Ok();
  }
  auto cur = dcs_.Get(keys_.initialize);
  if (!cur) return Fail(cur.error());
  if (!cur->kvs.empty() && cur->kvs[0].value == sysid) return Ok();
  return Fail(ErrorCode::kConflict, keys_.initialize + ": not ours to write (leader is not " +
                                        me.str() + " or another system is registered)");
}

Result<void> ClusterStore::AcquireLeader(const MemberName& me, dcs::LeaseId lease) {
  if (lease == 0) return Fail(ErrorCode::kInvalidArgument, "acquire leader: no lease");
  auto r = dcs_.Txn({Compare::Absent(keys_.leader)}, {PutOp{keys_.leader, me.str(), lease}},
                    {GetOp{keys_.leader, false}});
  if (!r) return Fail(r.error());
  if (r->succeeded) return Ok();
  if (!r->ranges.empty() && !r->ranges[0].kvs.empty()) {
    const dcs::KeyValue& kv = r->ranges[0].kvs[0];
    if (kv.value == me.str() && kv.lease == lease) return Ok();
    return Fail(ErrorCode::kConflict, keys_.leader + " is held by " + kv.value);
  }
  return Fail(ErrorCode::kConflict, keys_.leader + " is held by someone else");
}

Result<void> ClusterStore::ReleaseLeader(const MemberName& me) {
  auto r =
      dcs_.Txn({Compare::ValueEquals(keys_.leader, me.str())}, {DeleteOp{keys_.leader, false}});
  if (!r) return Fail(r.error());
  return Ok();  // not ours (any more): released either way
}

Result<void> ClusterStore::UpdateLeaderStatus(const MemberName& me,
                                              const core::LeaderStatus& status) {
  auto r = dcs_.Txn({Compare::ValueEquals(keys_.leader, me.str())},
                    {PutOp{keys_.status, EncodeStatus(status), 0}});
  if (!r) return Fail(r.error());
  if (!r->succeeded) return Fail(ErrorCode::kConflict, keys_.leader + " is not " + me.str());
  return Ok();
}

Result<void> ClusterStore::WriteMember(const core::Member& member, dcs::LeaseId lease,
                                       const std::optional<std::string>& scheduled_restart) {
  auto r = dcs_.Put(keys_.Member(member.name), EncodeMember(member, scheduled_restart), lease);
  if (!r) return Fail(r.error());
  return Ok();
}

Result<void> ClusterStore::AppendHistory(const MemberName& me, const core::HistoryEntry& entry,
                                         int64_t expected_mod_revision) {
  auto cur = dcs_.Get(keys_.history);
  if (!cur) return Fail(cur.error());
  std::vector<core::HistoryEntry> history;
  int64_t rev = 0;
  if (!cur->kvs.empty()) {
    rev = cur->kvs[0].mod_revision;
    auto parsed = DecodeHistory(keys_.history, cur->kvs[0].value);
    // A corrupt history is replaced rather than left to block every promotion.
    if (parsed) history = std::move(*parsed);
  }
  if (std::any_of(history.begin(), history.end(),
                  [&](const core::HistoryEntry& e) { return e.timeline == entry.timeline; })) {
    return Ok();  // already recorded
  }
  if (rev != expected_mod_revision) {
    return Fail(ErrorCode::kConflict, keys_.history + " changed since it was read");
  }
  history.push_back(entry);
  std::sort(history.begin(), history.end(),
            [](const auto& a, const auto& b) { return a.timeline < b.timeline; });
  auto r = dcs_.Txn({Compare::ValueEquals(keys_.leader, me.str()),
                     Compare::ModRevisionEquals(keys_.history, rev)},
                    {PutOp{keys_.history, EncodeHistory(history), 0}});
  if (!r) return Fail(r.error());
  if (!r->succeeded) {
    return Fail(ErrorCode::kConflict,
                keys_.history + ": leader is not " + me.str() + " or the history changed");
  }
  return Ok();
}

Result<void> ClusterStore::ClearFailoverRequest(int64_t mod_revision) {
  auto r = dcs_.Txn({Compare::ModRevisionEquals(keys_.failover, mod_revision)},
                    {DeleteOp{keys_.failover, false}}, {GetOp{keys_.failover, false}});
  if (!r) return Fail(r.error());
  if (r->succeeded) return Ok();
  if (!r->ranges.empty() && r->ranges[0].kvs.empty()) return Ok();  // already gone
  return Fail(ErrorCode::kConflict, keys_.failover + " was replaced by a newer request");
}

Result<void> ClusterStore::WriteSync(const MemberName& me,
                                     const std::vector<MemberName>& sync_standby,
                                     int64_t expected_mod_revision, int quorum) {
  core::SyncState want;
  want.leader = me;
  want.sync_standby = sync_standby;
  want.quorum = quorum;
  const std::string value = EncodeSync(want);
  auto r = dcs_.Txn({Compare::ValueEquals(keys_.leader, me.str()),
                     Compare::ModRevisionEquals(keys_.sync, expected_mod_revision)},
                    {PutOp{keys_.sync, value, 0}}, {GetOp{keys_.sync, false}});
  if (!r) return Fail(r.error());
  if (r->succeeded) return Ok();
  if (!r->ranges.empty() && !r->ranges[0].kvs.empty()) {
    auto cur = DecodeSync(keys_.sync, r->ranges[0].kvs[0].value);
    if (cur && cur->leader == me && cur->sync_standby == sync_standby && cur->quorum == quorum) {
      // Ours already (a repeated write) -- but only while we still lead.
      auto lead = dcs_.Get(keys_.leader);
      if (!lead) return Fail(lead.error());
      if (!lead->kvs.empty() && lead->kvs[0].value == me.str()) return Ok();
    }
  }
  return Fail(ErrorCode::kConflict, keys_.sync + ": changed since it was read, or " + keys_.leader +
                                        " is not " + me.str());
}

Result<void> ClusterStore::RequestFailover(const core::FailoverRequest& request) {
  auto r = dcs_.Txn({Compare::Absent(keys_.failover)},
                    {PutOp{keys_.failover, EncodeFailover(request), 0}});
  if (!r) return Fail(r.error());
  if (!r->succeeded) return Fail(ErrorCode::kConflict, keys_.failover + " already exists");
  return Ok();
}

bool ClusterStore::IsEtcdAction(const core::Action& a) {
  return std::holds_alternative<core::ClaimBootstrap>(a) ||
         std::holds_alternative<core::WriteInitialize>(a) ||
         std::holds_alternative<core::AcquireLeader>(a) ||
         std::holds_alternative<core::ReleaseLeader>(a) ||
         std::holds_alternative<core::UpdateLeaderStatus>(a) ||
         std::holds_alternative<core::WriteMember>(a) ||
         std::holds_alternative<core::AppendHistory>(a) ||
         std::holds_alternative<core::ClearFailoverRequest>(a) ||
         std::holds_alternative<core::WriteSync>(a);
}

Result<void> ClusterStore::Execute(const core::Action& action, const MemberName& me,
                                   dcs::LeaseId lease) {
  return std::visit(
      Overloaded{
          [&](const core::ClaimBootstrap&) { return ClaimBootstrap(me, lease); },
          [&](const core::WriteInitialize& a) { return WriteInitialize(me, a.system_identifier); },
          [&](const core::AcquireLeader&) { return AcquireLeader(me, lease); },
          [&](const core::ReleaseLeader&) { return ReleaseLeader(me); },
          [&](const core::UpdateLeaderStatus& a) {
            return UpdateLeaderStatus(me, core::LeaderStatus{a.optime});
          },
          [&](const core::WriteMember& a) { return WriteMember(a.member, lease); },
          [&](const core::AppendHistory& a) {
            return AppendHistory(me, a.entry, a.expected_mod_revision);
          },
          [&](const core::ClearFailoverRequest& a) { return ClearFailoverRequest(a.mod_revision); },
          [&](const core::WriteSync& a) {
            return WriteSync(me, a.sync_standby, a.expected_mod_revision, a.quorum);
          },
          [&](const auto&) -> Result<void> {
            return Fail(ErrorCode::kInvalidArgument,
                        core::ActionName(action) + " is not an etcd action");
          },
      },
      action);
}

}  // namespace pgwarden::cluster
