// Maintenance mode (HaConfig::pause, `pause: true` in the dynamic config; docs/ha-core.md,
// "Maintenance mode"): each situation paused, and the same situation unpaused for contrast.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/decide.h"

namespace pgwarden::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const MemberName kN1("n1");
const MemberName kN2("n2");
const MemberName kN3("n3");
constexpr int64_t kLease = 77;

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

LocalPostgres Pg(ProcessState state, PgRole role, Lsn lsn) {
  LocalPostgres pg;
  pg.data_dir = DataDirState::kInitialized;
  pg.system_identifier = "7000";
  pg.state = state;
  pg.role = role;
  pg.timeline = Timeline(1);
  pg.write_lsn = lsn;
  pg.received_lsn = lsn;
  pg.replayed_lsn = lsn;
  return pg;
}

PeerStatus Replica(Lsn lsn) {
  PeerStatus p;
  p.reachable = true;
  p.running = true;
  p.role = PgRole::kReplica;
  p.timeline = Timeline(1);
  p.received_lsn = lsn;
  p.replayed_lsn = lsn;
  return p;
}

// Each test runs with pause on and off (the parameter).
class PauseTest : public ::testing::TestWithParam<bool> {
 protected:
  PauseTest() {
    now_ = SteadyTime(std::chrono::hours(100));
    obs_.now = now_;
    obs_.wall_now = SystemTime(seconds(1'800'000'000));
    obs_.lease.id = kLease;
    obs_.lease.last_confirmed_send = now_ - milliseconds(200);
    ClusterView v;
    v.initialize = "7000";
    v.members[kN1] = MemberOf(kN1, MemberRole::kPrimary, Lsn(5000), 1);
    v.members[kN2] = MemberOf(kN2, MemberRole::kReplica, Lsn(5000), kLease);
    v.members[kN3] = MemberOf(kN3, MemberRole::kReplica, Lsn(5000), 3);
    v.status = LeaderStatus{Lsn(5000)};
    obs_.cluster = v;
    Become(kN2);
  }
  bool Paused() const { return GetParam(); }
  void Become(const MemberName& name) {
    config_ = HaConfig{};
    config_.name = name;
    config_.ttl = seconds(5);
    config_.loop_wait = seconds(1);
    config_.retry_timeout = seconds(2);
    config_.fence_margin = seconds(1);
    config_.maximum_lag_on_failover = 1000;
    config_.pause = Paused();
  }
  ClusterView& View() { return *obs_.cluster; }
  // We (n2) hold the leader key on our lease.
  void WeLead() {
    View().leader = LeaderKey{kN2, kLease, 5, 5};
    View().members[kN2].role = MemberRole::kPrimary;
    View().members[kN1].role = MemberRole::kReplica;
  }
  void OtherLeads() { View().leader = LeaderKey{kN1, 1, 5, 5}; }
  // Fresh probe answers in which we are the healthiest (n1 gone, n3 behind).
  void ProbedHealthiest() {
    memory_.probe_requested_at = now_ - milliseconds(10);
    obs_.probes =
        PeerProbe{now_ - milliseconds(9), {{kN1, PeerStatus{}}, {kN3, Replica(Lsn(4990))}}};
  }
  Decision Run() { return Decide(memory_, obs_, config_); }
  static std::vector<std::string> Names(const Decision& d) {
    std::vector<std::string> out;
    for (const Action& a : d.actions) {
      if (!std::holds_alternative<WriteMember>(a)) out.push_back(Describe(a));
    }
    return out;
  }
  static bool Has(const Decision& d, const std::string& name) {
    for (const Action& a : d.actions) {
      if (ActionName(a) == name) return true;
    }
    return false;
  }

  SteadyTime now_;
  Observation obs_;
  AgentMemory memory_;
  HaConfig config_;
};

using V = std::vector<std::string>;

INSTANTIATE_TEST_SUITE_P(PausedAndNot, PauseTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Paused" : "Unpaused"; });

TEST_P(PauseTest, ReplicaTakesAnExpiredLeaderKeyOnlyWhenNotPaused) {
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kReplica, Lsn(5000));
  ProbedHealthiest();  // no leader key: it expired
  Decision d = Run();
  if (Paused()) {
    EXPECT_TRUE(Names(d).empty()) << d.reason;
    EXPECT_FALSE(d.leader);
    EXPECT_EQ(d.reason, "PAUSE: no leader: no automatic failover while paused");
  } else {
    EXPECT_EQ(Names(d), (V{"AcquireLeader", "Promote"}));
    EXPECT_TRUE(d.leader);
  }
}

TEST_P(PauseTest, ReplicaDoesNotEvenProbeForAnElectionWhenPaused) {
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kReplica, Lsn(5000));
  Decision d = Run();
  EXPECT_EQ(Names(d), Paused() ? V{} : V{"ProbePeers(n1,n3)"});
}

TEST_P(PauseTest, ManualFailoverToUsStillPromotesWhilePaused) {
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kReplica, Lsn(5000));
  View().failover = FailoverRequest{std::nullopt, kN2, std::nullopt, 9};
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"AcquireLeader", "Promote"})) << d.reason;
  EXPECT_TRUE(d.leader);
}

TEST_P(PauseTest, ManualFailoverToAnotherMemberIsLeftToIt) {
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kReplica, Lsn(5000));
  View().failover = FailoverRequest{std::nullopt, kN3, std::nullopt, 9};
  ProbedHealthiest();  // n3 unreachable in the probe: unpaused, an ordinary election follows
  obs_.probes->peers[kN3].reachable = false;
  Decision d = Run();
  EXPECT_EQ(Has(d, "AcquireLeader"), !Paused()) << d.reason;
}

TEST_P(PauseTest, LeaderDoesNotRestartAStoppedPostgres) {
  WeLead();
  obs_.pg = Pg(ProcessState::kStopped, PgRole::kPrimary, Lsn(5000));
  Decision d = Run();
  if (Paused()) {
    // Patroni: "removed leader lock because postgres is not running"; nothing is started.
    EXPECT_EQ(Names(d), (V{"ReleaseLeader"})) << d.reason;
    EXPECT_FALSE(d.leader);
  } else {
    EXPECT_EQ(Names(d), (V{"StartPostgres(primary)"})) << d.reason;
  }
}

TEST_P(PauseTest, LeaderKeepsRenewingWhilePostgresRuns) {
  WeLead();
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kPrimary, Lsn(5000));
  Decision d = Run();
  EXPECT_TRUE(d.leader);
  EXPECT_FALSE(Has(d, "StopPostgres"));
  EXPECT_FALSE(Has(d, "ReleaseLeader"));
  EXPECT_EQ(d.valid_until, now_ - milliseconds(200) + seconds(4));  // a fenced leader decision
}

TEST_P(PauseTest, LeaderWithARunningReplicaReleasesTheKeyUnlessAFailoverNamesIt) {
  WeLead();
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kReplica, Lsn(5000));
  Decision d = Run();
  EXPECT_EQ(Has(d, "ReleaseLeader"), Paused()) << d.reason;
  EXPECT_EQ(Has(d, "Promote"), !Paused()) << d.reason;
  // The candidate of a manual failover that took the key promotes, paused or not.
  View().failover = FailoverRequest{std::nullopt, kN2, std::nullopt, 9};
  d = Run();
  EXPECT_TRUE(Has(d, "Promote")) << d.reason;
  EXPECT_FALSE(Has(d, "ReleaseLeader"));
}

TEST_P(PauseTest, StoppedReplicaStaysStopped) {
  OtherLeads();
  obs_.pg = Pg(ProcessState::kStopped, PgRole::kReplica, Lsn(5000));
  Decision d = Run();
  EXPECT_EQ(Names(d), Paused() ? V{} : V{"StartPostgres(replica of n1)"}) << d.reason;
}

TEST_P(PauseTest, StoppedMemberWithoutLeaderStaysStopped) {
  obs_.pg = Pg(ProcessState::kStopped, PgRole::kReplica, Lsn(5000));
  Decision d = Run();
  EXPECT_EQ(Has(d, "StartPostgres"), !Paused()) << d.reason;
}

TEST_P(PauseTest, DivergedMemberIsNotRewoundNorStopped) {
  OtherLeads();
  obs_.pg = Pg(ProcessState::kStopped, PgRole::kPrimary, Lsn(5000));
  obs_.pg.diverged = true;
  Decision d = Run();
  EXPECT_EQ(Names(d), Paused() ? V{} : V{"Rewind(from n1)"}) << d.reason;
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kReplica, Lsn(5000));
  obs_.pg.diverged = true;
  d = Run();
  EXPECT_EQ(Has(d, "StopPostgres"), !Paused()) << d.reason;
}

TEST_P(PauseTest, EmptyDataDirectoryIsNotClonedWhilePaused) {
  OtherLeads();
  obs_.pg = LocalPostgres{};
  Decision d = Run();
  EXPECT_EQ(Has(d, "CloneFrom"), !Paused()) << d.reason;
}

TEST_P(PauseTest, SwitchoverNeedsAnExplicitCandidateWhilePaused) {
  WeLead();
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kPrimary, Lsn(5000));
  View().failover = FailoverRequest{kN2, std::nullopt, std::nullopt, 9};
  Decision d = Run();
  EXPECT_EQ(Has(d, "ClearFailoverRequest"), Paused()) << d.reason;
  EXPECT_EQ(Has(d, "StopPostgres"), !Paused()) << d.reason;
  // With a candidate the switchover runs in both modes.
  View().failover = FailoverRequest{kN2, kN3, std::nullopt, 9};
  d = Run();
  EXPECT_EQ(Names(d).back(), "StopPostgres(fast)") << d.reason;
}

// The decision documented in docs/ha-core.md: the lease fence applies in maintenance mode too
// (Patroni would keep the primary running), because a manual failover still works while
// paused and would otherwise make a second primary.
TEST_P(PauseTest, PrimaryCutOffFromEtcdIsFencedEvenWhenPaused) {
  WeLead();
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kPrimary, Lsn(5000));
  memory_.last_view_at = now_ - seconds(1);
  obs_.cluster.reset();
  obs_.lease.last_confirmed_send = now_ - seconds(4);
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"StopPostgres(immediate)"}));
  EXPECT_FALSE(d.leader);
}

TEST_P(PauseTest, RunningPrimaryWithoutLeaderKeyTakesItBack) {
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kPrimary, Lsn(5000));
  Decision d = Run();
  EXPECT_TRUE(Has(d, "AcquireLeader")) << d.reason;
  EXPECT_TRUE(d.leader);
}

TEST_P(PauseTest, ReasonsSayPause) {
  OtherLeads();
  obs_.pg = Pg(ProcessState::kRunning, PgRole::kReplica, Lsn(5000));
  obs_.pg.upstream = kN1;
  Decision d = Run();
  EXPECT_EQ(d.reason.rfind("PAUSE: ", 0) == 0, Paused()) << d.reason;
}

}  // namespace
}  // namespace pgwarden::core
