// The scene the decision core's unit tests start from (decide_test, sync_test, quorum_test,
// pause_test): the member, PostgreSQL and probe builders, and a base fixture holding the
// observation, memory and config that Decide() takes, with the helpers every such test uses.
//
// The base scene (Scene's constructor), before any fixture adds to it:
//  - time: now_ is 100 h on the steady clock; the wall clock reads 1'800'000'000 s;
//  - our etcd lease is kLease (77), last confirmed 200 ms before now_ (so it is fresh);
//  - the cluster is initialized (system identifier "7000") with leader status (optime) 5000;
//    no members, no leader key, no `sync` key;
//  - local PostgreSQL: nothing observed (LocalPostgres{}); config_: HaConfig defaults;
//    memory_: empty (a freshly started agent).
// Each fixture then adds its cast, with FollowerCast() (we are n2, a replica of n1) or
// SelfLeaderWithStandbys() (we are n1, the leader), and states it in its own header comment.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/decide.h"

namespace pgwarden::core {

inline const MemberName kN1("n1");
inline const MemberName kN2("n2");
inline const MemberName kN3("n3");
inline const MemberName kN4("n4");
constexpr int64_t kLease = 77;       // ours
constexpr int64_t kOtherLease = 88;  // n1's, when n1 leads in FollowerCast()

using V = std::vector<std::string>;

// The tuned config of decide_test: ttl 5 s, loop_wait 1 s, retry_timeout 2 s, fence_margin
// 1 s, maximum_lag_on_failover 1000, primary_start_timeout and switchover_timeout 10 s.
HaConfig Config(const MemberName& name);

// A member key of a running member on timeline 1 at `lsn` (received, replayed and current).
Member MemberOf(const MemberName& name, MemberRole role, Lsn lsn, int64_t lease = 1);
// A member key as a running replica publishes it: received and replayed at `lsn`, no
// current_lsn, lease 5.
Member Replica(const MemberName& name, Lsn lsn);

// Local PostgreSQL, initialized (system identifier "7000") and running.
LocalPostgres RunningReplica(Lsn lsn, std::optional<MemberName> upstream = std::nullopt);
LocalPostgres RunningPrimary(Lsn lsn, Timeline tl = Timeline(1));  // write_lsn = lsn

// A reachable, running peer's probe answer on timeline 1 (received and replayed at `lsn`).
PeerStatus Peer(PgRole role, Lsn lsn, Tags tags = {});

// The base fixture: a test fixture derives from Scene (a parameterized one from Scene and
// ::testing::WithParamInterface<T>).
class Scene : public ::testing::Test {
 protected:
  Scene();

  ClusterView& View() { return *obs_.cluster; }

  // Cast: n1 runs a primary (member lease kOtherLease), n2 is a replica on our lease kLease,
  // n3 a replica (lease 99); all at 5000 (MemberOf). No leader key.
  void FollowerCast();
  // Cast: we are n1 and hold the leader key on kLease with a running primary at write and
  // flush 5000 and an empty synchronous_standby_names; each of `standbys` is a running
  // replica (Replica()) at its LSN.
  void SelfLeaderWithStandbys(const std::map<MemberName, Lsn>& standbys);

  void LeaderIs(const MemberName& who, int64_t lease) {
    View().leader = LeaderKey{who, lease, 5, 5};
  }
  // The `sync` key as `leader` wrote it (mod_revision 42).
  void Sync(std::vector<MemberName> list, MemberName leader = kN1) {
    obs_.cluster->sync = SyncState{std::move(leader), std::move(list), 42};
  }
  // A pg_stat_replication row of a streaming standby.
  void Row(const MemberName& n, bool sync, Lsn flush) {
    obs_.pg.replication.push_back(StandbyReplication{n, true, sync, flush});
  }

  // One Decide() call; memory_ stays as it is.
  Decision Run() { return Decide(memory_, obs_, config_); }
  // One Decide() call whose memory the next call starts from (the agent's loop).
  Decision Step() {
    Decision d = Run();
    memory_ = d.next;
    return d;
  }
  // Time passes with the lease kept alive.
  void AdvanceTo(SteadyTime t);

  // The decision's actions as Describe() strings, WriteMember left out.
  static V Names(const Decision& d);
  static bool Has(const Decision& d, const std::string& action_name);
  // The decision's actions named (ActionName) in `action_names`, as Describe() strings.
  static V Only(const Decision& d, const std::set<std::string>& action_names);

  SteadyTime now_;
  Observation obs_;
  AgentMemory memory_;
  HaConfig config_;
};

}  // namespace pgwarden::core
