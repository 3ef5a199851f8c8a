// Maintenance mode (HaConfig::pause, `pause: true` in the dynamic config; docs/ha-core.md,
// "Maintenance mode"): each situation paused, and the same situation unpaused for contrast.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "scene.h"

namespace pgwarden::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

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

// The base scene (scene.h) seen by n2, a replica of n1 (FollowerCast: n1 primary, n2 and n3
// replicas, all at 5000; no leader key). Each test runs with pause on and off (the parameter).
class PauseTest : public Scene, public ::testing::WithParamInterface<bool> {
 protected:
  PauseTest() {
    FollowerCast();
    Become(kN2);
  }
  bool Paused() const { return GetParam(); }
  void Become(const MemberName& name) {
    config_ = Config(name);
    // Config() tunes the start and switchover timeouts; these tests keep HaConfig's defaults.
    config_.primary_start_timeout = HaConfig{}.primary_start_timeout;
    config_.switchover_timeout = HaConfig{}.switchover_timeout;
    config_.pause = Paused();
  }
  // We (n2) hold the leader key on our lease.
  void WeLead() {
    LeaderIs(kN2, kLease);
    View().members[kN2].role = MemberRole::kPrimary;
    View().members[kN1].role = MemberRole::kReplica;
  }
  void OtherLeads() { LeaderIs(kN1, kOtherLease); }
  // Fresh probe answers in which we are the healthiest (n1 gone, n3 behind).
  void ProbedHealthiest() {
    memory_.probe_requested_at = now_ - milliseconds(10);
    obs_.probes = PeerProbe{now_ - milliseconds(9),
                            {{kN1, PeerStatus{}}, {kN3, Peer(PgRole::kReplica, Lsn(4990))}}};
  }
};

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
