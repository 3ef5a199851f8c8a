#include "scene.h"

#include <utility>

namespace pgwarden::core {

using std::chrono::milliseconds;
using std::chrono::seconds;

HaConfig Config(const MemberName& name) {
  HaConfig c;
  c.name = name;
  c.ttl = seconds(5);
  c.loop_wait = seconds(1);
  c.retry_timeout = seconds(2);
  c.fence_margin = seconds(1);
  c.maximum_lag_on_failover = 1000;
  c.primary_start_timeout = seconds(10);
  c.switchover_timeout = seconds(10);
  return c;
}

Member MemberOf(const MemberName& name, MemberRole role, Lsn lsn, int64_t lease) {
  Member m;
  m.name = name;
  m.role = role;
  m.state = PgState::kRunning;
  m.timeline = Timeline(1);
  m.received_lsn = lsn;
  m.replayed_lsn = lsn;
  m.current_lsn = lsn;
  m.lease = lease;
  return m;
}

Member Replica(const MemberName& name, Lsn lsn) {
  Member m = MemberOf(name, MemberRole::kReplica, lsn, 5);
  m.current_lsn = Lsn();
  return m;
}

LocalPostgres RunningReplica(Lsn lsn, std::optional<MemberName> upstream) {
  LocalPostgres pg;
  pg.data_dir = DataDirState::kInitialized;
  pg.system_identifier = "7000";
  pg.state = ProcessState::kRunning;
  pg.role = PgRole::kReplica;
  pg.timeline = Timeline(1);
  pg.received_lsn = lsn;
  pg.replayed_lsn = lsn;
  pg.upstream = std::move(upstream);
  return pg;
}

LocalPostgres RunningPrimary(Lsn lsn, Timeline tl) {
  LocalPostgres pg;
  pg.data_dir = DataDirState::kInitialized;
  pg.system_identifier = "7000";
  pg.state = ProcessState::kRunning;
  pg.role = PgRole::kPrimary;
  pg.timeline = tl;
  pg.write_lsn = lsn;
  return pg;
}

PeerStatus Peer(PgRole role, Lsn lsn, Tags tags) {
  PeerStatus p;
  p.reachable = true;
  p.running = true;
  p.role = role;
  p.timeline = Timeline(1);
  p.received_lsn = lsn;
  p.replayed_lsn = lsn;
  p.tags = std::move(tags);
  return p;
}

Scene::Scene() {
  now_ = SteadyTime(std::chrono::hours(100));
  obs_.now = now_;
  obs_.wall_now = SystemTime(seconds(1'800'000'000));
  obs_.lease.id = kLease;
  obs_.lease.last_confirmed_send = now_ - milliseconds(200);
  ClusterView v;
  v.initialize = "7000";
  v.status = LeaderStatus{Lsn(5000)};
  obs_.cluster = v;
}

void Scene::FollowerCast() {
  View().members[kN1] = MemberOf(kN1, MemberRole::kPrimary, Lsn(5000), kOtherLease);
  View().members[kN2] = MemberOf(kN2, MemberRole::kReplica, Lsn(5000), kLease);
  View().members[kN3] = MemberOf(kN3, MemberRole::kReplica, Lsn(5000), 99);
}

void Scene::SelfLeaderWithStandbys(const std::map<MemberName, Lsn>& standbys) {
  config_.name = kN1;
  Member me = Replica(kN1, Lsn(5000));
  me.role = MemberRole::kPrimary;
  me.lease = kLease;
  View().members[kN1] = me;
  for (const auto& [name, lsn] : standbys) View().members[name] = Replica(name, lsn);
  LeaderIs(kN1, kLease);
  obs_.pg = RunningPrimary(Lsn(5000));
  obs_.pg.flush_lsn = Lsn(5000);
  obs_.pg.sync_standby_names = SyncStandbyNames{};
}

void Scene::AdvanceTo(SteadyTime t) {
  now_ = t;
  obs_.now = t;
  obs_.lease.last_confirmed_send = t - milliseconds(200);
}

V Scene::Names(const Decision& d) {
  V out;
  for (const Action& a : d.actions) {
    if (!std::holds_alternative<WriteMember>(a)) out.push_back(Describe(a));
  }
  return out;
}

bool Scene::Has(const Decision& d, const std::string& action_name) {
  for (const Action& a : d.actions) {
    if (ActionName(a) == action_name) return true;
  }
  return false;
}

V Scene::Only(const Decision& d, const std::set<std::string>& action_names) {
  V out;
  for (const Action& a : d.actions) {
    if (action_names.contains(ActionName(a))) out.push_back(Describe(a));
  }
  return out;
}

}  // namespace pgwarden::core
