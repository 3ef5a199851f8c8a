// Decide(): observation in, decision out. No mocks: each test builds the facts a member sees
// and checks the actions and the memory it gets back.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "scene.h"

namespace pgwarden::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The base scene (scene.h) seen by n2, a replica of n1 (FollowerCast: n1 primary, n2 and
// n3 replicas, all at 5000; no leader key), with the tuned Config(kN2).
class DecideTest : public Scene {
 protected:
  DecideTest() {
    FollowerCast();
    View().revision = 10;
    config_ = Config(kN2);
  }

  // n1 (the test's own member) is the leader with a running primary.
  void SelfLeader() {
    config_ = Config(kN1);
    obs_.pg = RunningPrimary(Lsn(5000));
    View().members[kN1].lease = kLease;
    View().members[kN2].lease = 2;
    LeaderIs(kN1, kLease);
  }
  // Feeds the probe answers as the shell would after a ProbePeers decided at `asked`.
  void Answer(SteadyTime asked, std::map<MemberName, PeerStatus> peers) {
    memory_.probe_requested_at = asked;
    obs_.probes = PeerProbe{asked + milliseconds(1), std::move(peers)};
  }
};

// --- Fencing ----------------------------------------------------------------------------------

TEST_F(DecideTest, LeaderWithConfirmedLeaseKeepsUnchangedStatus) {
  SelfLeader();  // status already at our write position
  Decision d = Run();
  EXPECT_TRUE(d.leader);
  EXPECT_EQ(Names(d), (V{"SyncSlots(2)"}));
  // The fence deadline bounds both the next call and every action of this decision.
  EXPECT_EQ(d.valid_until, now_ - milliseconds(200) + seconds(4));
  EXPECT_LE(d.wake_at, d.valid_until);
}

TEST_F(DecideTest, LeaderWritesStatusWhenItsPositionMovedAtMostOncePerLoopWait) {
  SelfLeader();
  View().status = LeaderStatus{Lsn(4000)};
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"UpdateLeaderStatus(optime=0/1388)", "SyncSlots(2)"}));
  ASSERT_TRUE(d.next.status_written_at.has_value());
  // Moved again right after: not before loop_wait, but the leader wakes for it.
  memory_ = d.next;
  View().status = LeaderStatus{Lsn(4500)};
  AdvanceTo(now_ + milliseconds(100));
  d = Run();
  EXPECT_EQ(Names(d), (V{"SyncSlots(2)"}));
  EXPECT_LE(d.wake_at, *memory_.status_written_at + config_.loop_wait);
  AdvanceTo(*memory_.status_written_at + config_.loop_wait);
  d = Run();
  EXPECT_EQ(Names(d), (V{"UpdateLeaderStatus(optime=0/1388)", "SyncSlots(2)"}));
}

TEST_F(DecideTest, PrimaryCutOffFromEtcdDemotesBeforeTtl) {
  SelfLeader();
  memory_.last_view_at = now_ - seconds(1);
  obs_.cluster.reset();
  // Keep-alives stopped being confirmed: at send + ttl - fence_margin the primary stops.
  obs_.lease.last_confirmed_send = now_ - seconds(4);
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"StopPostgres(immediate)"}));
  EXPECT_FALSE(d.leader);
  EXPECT_NE(d.reason.find("fencing"), std::string::npos) << d.reason;
}

TEST_F(DecideTest, PrimaryCutOffFromEtcdStaysUntilFenceDeadlineAndWakesAtIt) {
  SelfLeader();
  memory_.last_view_at = now_ - milliseconds(500);
  obs_.cluster.reset();
  obs_.lease.last_confirmed_send = now_ - seconds(3);
  Decision d = Run();
  EXPECT_TRUE(d.actions.empty());
  EXPECT_TRUE(d.leader);
  EXPECT_EQ(d.wake_at, now_ + seconds(1));  // = send + ttl - fence_margin
}

TEST_F(DecideTest, PrimaryThatCannotReadEtcdDemotesEvenIfKeepAlivesSucceed) {
  SelfLeader();
  memory_.last_view_at = now_ - seconds(4);
  obs_.cluster.reset();
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"StopPostgres(immediate)"}));
}

TEST_F(DecideTest, FrozenPrimaryThatResumesDemotesBeforeTouchingEtcd) {
  SelfLeader();
  // The view still says we lead (it was read before the freeze), but the last confirmed
  // keep-alive was sent 30 s ago: the only action is to stop writes, no etcd write at all.
  obs_.lease.last_confirmed_send = now_ - seconds(30);
  memory_.last_view_at = now_ - seconds(30);
  Decision d = Run();
  ASSERT_EQ(d.actions.size(), 1u);
  EXPECT_EQ(Describe(d.actions[0]), "StopPostgres(immediate)");
}

TEST_F(DecideTest, PrimaryWhoseLeaseIsLostDemotes) {
  SelfLeader();
  obs_.lease.lost = true;
  EXPECT_EQ(Names(Run()), (V{"StopPostgres(immediate)"}));
}

TEST_F(DecideTest, PrimaryWhoseLeaderCompareAndSwapFailsDemotes) {
  SelfLeader();
  obs_.last.push_back(
      Outcome{UpdateLeaderStatus{Lsn(1)}, Fail(ErrorCode::kConflict, "leader is n2")});
  EXPECT_EQ(Names(Run()), (V{"StopPostgres(immediate)"}));
}

TEST_F(DecideTest, PrimarySeeingAnotherLeaderDemotes) {
  config_ = Config(kN1);
  obs_.pg = RunningPrimary(Lsn(5000));
  LeaderIs(kN2, kOtherLease);
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"StopPostgres(immediate)"}));
  EXPECT_NE(d.reason.find("held by n2"), std::string::npos);
}

TEST_F(DecideTest, PromotionInFlightIsFencedAtTheDeadline) {
  SelfLeader();
  obs_.pg = RunningReplica(Lsn(5000));
  obs_.in_flight = InFlight{Promote{}, now_ - seconds(1)};
  obs_.lease.last_confirmed_send = now_ - seconds(4);
  EXPECT_EQ(Names(Run()), (V{"StopPostgres(immediate)"}));
}

TEST_F(DecideTest, LeaderKeyWithAnotherLeaseOfOursIsNotOurs) {
  SelfLeader();
  LeaderIs(kN1, 12345);  // an older lease of ours: the key will expire, it is not our lock
  EXPECT_EQ(Names(Run()), (V{"StopPostgres(immediate)"}));
}

TEST_F(DecideTest, RestartedAgentRemovesTheLeaderKeyOfItsPreviousIncarnation) {
  SelfLeader();
  obs_.pg.state = ProcessState::kStopped;  // crashed with the agent; nothing accepts writes
  LeaderIs(kN1, 12345);
  EXPECT_EQ(Names(Run()), (V{"ReleaseLeader"}));
}

// --- Elections --------------------------------------------------------------------------------

TEST_F(DecideTest, ReplicaProbesPeersWhenLeaderKeyVanishes) {
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"ProbePeers(n1,n3)"}));
  EXPECT_EQ(d.next.probe_requested_at, now_);
  EXPECT_LE(d.wake_at, now_ + config_.retry_timeout);
}

TEST_F(DecideTest, ReplicaWithHighestLsnTakesLockWhenLeaderKeyVanishes) {
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  Answer(now_ - milliseconds(10), {{kN1, PeerStatus{}}, {kN3, Peer(PgRole::kReplica, Lsn(4990))}});
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"AcquireLeader", "Promote"}));
  EXPECT_TRUE(d.leader);
  EXPECT_EQ(d.valid_until, now_ - milliseconds(200) + seconds(4));
}

TEST_F(DecideTest, ReplicaDefersToAMoreAdvancedPeer) {
  obs_.pg = RunningReplica(Lsn(4990), kN1);
  Answer(now_ - milliseconds(10), {{kN1, PeerStatus{}}, {kN3, Peer(PgRole::kReplica, Lsn(5000))}});
  Decision d = Run();
  EXPECT_FALSE(Has(d, "AcquireLeader"));
  EXPECT_NE(d.reason.find("n3 is healthier"), std::string::npos) << d.reason;
}

TEST_F(DecideTest, EqualLsnHigherPriorityWinsThenSmallerName) {
  EXPECT_TRUE(Better(Lsn(10), 1, kN3, Lsn(9), 5, kN1));
  EXPECT_TRUE(Better(Lsn(10), 2, kN3, Lsn(10), 1, kN1));
  EXPECT_TRUE(Better(Lsn(10), 1, kN1, Lsn(10), 1, kN3));
  EXPECT_FALSE(Better(Lsn(10), 1, kN3, Lsn(10), 1, kN1));
}

TEST_F(DecideTest, ReplicaIgnoresANofailoverPeerThatIsAhead) {
  obs_.pg = RunningReplica(Lsn(4990), kN1);
  Tags nofailover;
  nofailover.nofailover = true;
  Answer(now_ - milliseconds(10),
         {{kN1, PeerStatus{}}, {kN3, Peer(PgRole::kReplica, Lsn(5000), nofailover)}});
  EXPECT_EQ(Names(Run()), (V{"AcquireLeader", "Promote"}));
}

TEST_F(DecideTest, ReplicaIgnoresAnUnreachablePeer) {
  obs_.pg = RunningReplica(Lsn(4990), kN1);
  PeerStatus gone = Peer(PgRole::kReplica, Lsn(9999));
  gone.reachable = false;
  Answer(now_ - milliseconds(10), {{kN1, PeerStatus{}}, {kN3, gone}});
  EXPECT_EQ(Names(Run()), (V{"AcquireLeader", "Promote"}));
}

TEST_F(DecideTest, ReplicaNeverTakesLockWhileAReachablePeerRunsAsPrimary) {
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  Answer(now_ - milliseconds(10),
         {{kN1, Peer(PgRole::kPrimary, Lsn(5000))}, {kN3, Peer(PgRole::kReplica, Lsn(10))}});
  Decision d = Run();
  EXPECT_FALSE(Has(d, "AcquireLeader"));
  EXPECT_NE(d.reason.find("n1 is running as primary"), std::string::npos) << d.reason;
}

TEST_F(DecideTest, StaleProbeAnswersAreNotUsed) {
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  // Answers started before the request: they are not fresh. Ask again (the old request is
  // past retry_timeout).
  memory_.probe_requested_at = now_ - seconds(3);
  obs_.probes = PeerProbe{now_ - seconds(4), {{kN3, Peer(PgRole::kReplica, Lsn(1))}}};
  EXPECT_EQ(Names(Run()), (V{"ProbePeers(n1,n3)"}));
}

TEST_F(DecideTest, LaggingReplicaIsNotACandidate) {
  obs_.pg = RunningReplica(Lsn(3000), kN1);  // status optime 5000, max lag 1000
  Decision d = Run();
  EXPECT_TRUE(Names(d).empty());
  EXPECT_NE(d.reason.find("maximum_lag_on_failover"), std::string::npos) << d.reason;
}

TEST_F(DecideTest, NofailoverReplicaNeverTakesLock) {
  config_.tags.nofailover = true;
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  Answer(now_ - milliseconds(10), {});
  Decision d = Run();
  EXPECT_TRUE(Names(d).empty());
}

TEST_F(DecideTest, ReplicaWithoutConfirmedLeaseDoesNotRace) {
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  obs_.lease.last_confirmed_send = now_ - seconds(10);
  Answer(now_ - milliseconds(10), {});
  EXPECT_FALSE(Has(Run(), "AcquireLeader"));
}

TEST_F(DecideTest, StoppedReplicaStartsToJoinTheElection) {
  obs_.pg = RunningReplica(Lsn(5000));
  obs_.pg.state = ProcessState::kStopped;
  EXPECT_EQ(Names(Run()), (V{"StartPostgres(replica)"}));
}

TEST_F(DecideTest, StalePrimaryWithOlderTimelineDoesNotTakeLock) {
  config_ = Config(kN1);
  obs_.pg = RunningPrimary(Lsn(9000), Timeline(1));
  View().history.push_back(HistoryEntry{Timeline(1), Lsn(5000), "", "", kN2, kN1});
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"StopPostgres(immediate)"}));
  EXPECT_FALSE(d.leader);
}

TEST_F(DecideTest, RunningPrimaryOnCurrentTimelineRetakesAVanishedKey) {
  config_ = Config(kN1);
  obs_.pg = RunningPrimary(Lsn(9000), Timeline(2));
  View().history.push_back(HistoryEntry{Timeline(1), Lsn(5000), "", "", kN1, kN2});
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"AcquireLeader", "UpdateLeaderStatus(optime=0/2328)"}));
}

TEST_F(DecideTest, FormerPrimaryPastTheSwitchPointIsNotACandidate) {
  obs_.pg = RunningReplica(Lsn(6000));  // timeline 1 ended at 5000 in the cluster history
  View().history.push_back(HistoryEntry{Timeline(1), Lsn(5000), "", "", kN3, kN2});
  View().status = LeaderStatus{Lsn(6000)};
  Decision d = Run();
  EXPECT_FALSE(Has(d, "AcquireLeader"));
  EXPECT_NE(d.reason.find("diverged"), std::string::npos) << d.reason;
}

// --- Bootstrap --------------------------------------------------------------------------------

TEST_F(DecideTest, EmptyMemberRacesToBootstrapANewCluster) {
  obs_.cluster = ClusterView{};
  obs_.pg = LocalPostgres{};
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"ClaimBootstrap", "InitDb"}));
}

TEST_F(DecideTest, NofailoverMemberDoesNotBootstrap) {
  obs_.cluster = ClusterView{};
  obs_.pg = LocalPostgres{};
  config_.tags.nofailover = true;
  EXPECT_TRUE(Names(Run()).empty());
}

TEST_F(DecideTest, BootstrapLoserWaitsForTheWinner) {
  obs_.cluster = ClusterView{};
  View().initialize = "";
  LeaderIs(kN1, kOtherLease);
  obs_.pg = LocalPostgres{};
  Decision d = Run();
  EXPECT_TRUE(Names(d).empty());
  EXPECT_NE(d.reason.find("waiting for n1 to bootstrap"), std::string::npos);
}

TEST_F(DecideTest, BootstrapWinnerRegistersItsSystemThenStartsPrimary) {
  obs_.cluster = ClusterView{};
  View().initialize = "";
  LeaderIs(kN2, kLease);
  obs_.pg.data_dir = DataDirState::kBootstrapPending;
  obs_.pg.system_identifier = "7123";
  obs_.pg.role = PgRole::kPrimary;
  EXPECT_EQ(Names(Run()), (V{"WriteInitialize(7123)", "StartPostgres(primary)"}));
}

TEST_F(DecideTest, UnfinishedBootstrapThatLostIsRecloned) {
  LeaderIs(kN1, kOtherLease);
  obs_.pg.data_dir = DataDirState::kBootstrapPending;
  obs_.pg.system_identifier = "7123";
  EXPECT_EQ(Names(Run()), (V{"CloneFrom(n1, removing the data directory)"}));
}

TEST_F(DecideTest, EmptyMemberClonesFromTheRunningLeader) {
  LeaderIs(kN1, kOtherLease);
  obs_.pg = LocalPostgres{};
  EXPECT_EQ(Names(Run()), (V{"CloneFrom(n1)"}));
}

TEST_F(DecideTest, SystemIdentifierMismatchDoesNothing) {
  LeaderIs(kN1, kOtherLease);
  obs_.pg = RunningReplica(Lsn(1), kN1);
  obs_.pg.system_identifier = "9999";
  Decision d = Run();
  EXPECT_TRUE(Names(d).empty());
  EXPECT_NE(d.reason.find("mismatch"), std::string::npos);
}

// --- Leader duties ----------------------------------------------------------------------------

TEST_F(DecideTest, NewLeaderWritesHistoryAfterPromotion) {
  SelfLeader();
  obs_.pg = RunningPrimary(Lsn(5100), Timeline(2));
  obs_.pg.timeline_start_lsn = Lsn(5000);
  memory_.last_leader = kN3;
  View().history_mod_revision = 4;
  Decision d = Run();
  ASSERT_TRUE(Has(d, "AppendHistory"));
  for (const Action& a : d.actions) {
    if (auto* h = std::get_if<AppendHistory>(&a)) {
      EXPECT_EQ(h->entry.timeline, Timeline(1));
      EXPECT_EQ(h->entry.switch_lsn, Lsn(5000));
      EXPECT_EQ(h->entry.new_leader, kN1);
      EXPECT_EQ(h->entry.old_leader, kN3);
      EXPECT_EQ(h->expected_mod_revision, 4);
    }
  }
  View().history.push_back(HistoryEntry{Timeline(1), Lsn(5000), "", "", kN1, kN3});
  EXPECT_FALSE(Has(Run(), "AppendHistory"));  // idempotent: written once
}

TEST_F(DecideTest, LeaderWhosePostgresCrashedRestartsItWhileHoldingTheLock) {
  SelfLeader();
  obs_.pg.state = ProcessState::kCrashed;
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"StartPostgres(primary)"}));
  EXPECT_EQ(d.next.primary_start_deadline, now_ + seconds(10));
}

TEST_F(DecideTest, LeaderReleasesTheLockIfPostgresDoesNotStartInTime) {
  SelfLeader();
  obs_.pg.state = ProcessState::kStopped;
  memory_.primary_start_deadline = now_ - milliseconds(1);
  EXPECT_EQ(Names(Run()), (V{"ReleaseLeader"}));
}

TEST_F(DecideTest, LeaderGivesUpAStartInFlightPastTheDeadline) {
  SelfLeader();
  obs_.pg.state = ProcessState::kStarting;
  obs_.in_flight = InFlight{StartPostgres{StartRole::kPrimary, {}}, now_ - seconds(11)};
  EXPECT_EQ(Names(Run()), (V{"StopPostgres(immediate)", "ReleaseLeader"}));
}

TEST_F(DecideTest, NewLeaderPromotesAndClearsTheFailoverRequest) {
  config_ = Config(kN2);
  obs_.pg = RunningReplica(Lsn(5000));
  LeaderIs(kN2, kLease);
  View().failover = FailoverRequest{kN1, kN2, std::nullopt, 42};
  EXPECT_EQ(Names(Run()), (V{"ClearFailoverRequest", "Promote"}));
}

// --- Followers --------------------------------------------------------------------------------

TEST_F(DecideTest, ReplicaFollowsTheNewLeader) {
  LeaderIs(kN3, 99);
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  EXPECT_EQ(Names(Run()), (V{"Follow(n3)"}));
  obs_.pg.upstream = kN3;
  EXPECT_TRUE(Names(Run()).empty());
}

TEST_F(DecideTest, StoppedReplicaStartsFollowingTheLeader) {
  LeaderIs(kN1, kOtherLease);
  obs_.pg = RunningReplica(Lsn(5000));
  obs_.pg.state = ProcessState::kStopped;
  EXPECT_EQ(Names(Run()), (V{"StartPostgres(replica of n1)"}));
}

class RejoinTest : public DecideTest {
 protected:
  RejoinTest() {
    // n2 was primary on timeline 1 up to 6000; n3 was promoted at 5000.
    LeaderIs(kN3, 99);
    View().members[kN3] = MemberOf(kN3, MemberRole::kPrimary, Lsn(7000), 99);
    View().history.push_back(HistoryEntry{Timeline(1), Lsn(5000), "", "", kN3, kN2});
    obs_.pg = RunningPrimary(Lsn(6000));
    obs_.pg.state = ProcessState::kStopped;
  }
};

TEST_F(RejoinTest, FormerPrimaryRewindsBeforeFollowing) {
  EXPECT_EQ(Names(Run()), (V{"Rewind(from n3)"}));
}

TEST_F(RejoinTest, FormerPrimaryThatDidNotDivergeJustFollows) {
  obs_.pg.write_lsn = Lsn(5000);
  EXPECT_EQ(Names(Run()), (V{"StartPostgres(replica of n3)"}));
}

TEST_F(RejoinTest, RunningDivergedReplicaStopsToRewind) {
  obs_.pg = RunningReplica(Lsn(6000), kN3);
  EXPECT_EQ(Names(Run()), (V{"StopPostgres(fast)"}));
}

TEST_F(RejoinTest, ShellDivergenceVerdictWins) {
  obs_.pg.write_lsn = Lsn(5000);
  obs_.pg.diverged = true;
  EXPECT_EQ(Names(Run()), (V{"Rewind(from n3)"}));
}

TEST_F(RejoinTest, RewindDisabledMeansReclone) {
  config_.use_pg_rewind = false;
  EXPECT_EQ(Names(Run()), (V{"CloneFrom(n3, removing the data directory)"}));
}

TEST_F(RejoinTest, FailedRewindReclonesWhenAllowed) {
  config_.remove_data_directory_on_rewind_failure = true;
  obs_.last.push_back(Outcome{Rewind{kN3}, Fail(ErrorCode::kFailed, "WAL missing")});
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"CloneFrom(n3, removing the data directory)"}));
  EXPECT_EQ(d.next.rewind_failed_on, Timeline(2));
}

TEST_F(RejoinTest, FailedRewindWaitsForAnOperatorOtherwise) {
  obs_.last.push_back(Outcome{Rewind{kN3}, Fail(ErrorCode::kFailed, "WAL missing")});
  Decision d = Run();
  EXPECT_TRUE(Names(d).empty());
  EXPECT_NE(d.reason.find("operator"), std::string::npos);
}

// --- Switchover and manual failover ------------------------------------------------------------

TEST_F(DecideTest, SwitchoverStopsThePrimaryWithACheckpointWhileHoldingTheLock) {
  SelfLeader();
  View().failover = FailoverRequest{kN1, kN2, std::nullopt, 42};
  Decision d = Run();
  EXPECT_TRUE(Has(d, "StopPostgres"));
  EXPECT_FALSE(Has(d, "ReleaseLeader"));
  for (const Action& a : d.actions) {
    if (auto* s = std::get_if<StopPostgres>(&a)) {
      EXPECT_EQ(s->mode, StopMode::kFast);
    }
  }
  ASSERT_TRUE(d.next.switchover);
  EXPECT_EQ(d.next.switchover->candidate, kN2);
}

TEST_F(DecideTest, SwitchoverToALaggingCandidateIsRefused) {
  SelfLeader();
  View().members[kN2].received_lsn = Lsn(100);
  View().members[kN2].replayed_lsn = Lsn(100);
  View().failover = FailoverRequest{kN1, kN2, std::nullopt, 42};
  Decision d = Run();
  EXPECT_TRUE(Has(d, "ClearFailoverRequest"));
  EXPECT_FALSE(Has(d, "StopPostgres"));
  EXPECT_NE(d.reason.find("refused"), std::string::npos);
}

TEST_F(DecideTest, SwitchoverToANofailoverCandidateIsRefused) {
  SelfLeader();
  View().members[kN2].tags.nofailover = true;
  View().failover = FailoverRequest{kN1, kN2, std::nullopt, 42};
  EXPECT_FALSE(Has(Run(), "StopPostgres"));
}

TEST_F(DecideTest, ScheduledSwitchoverWaitsForItsTime) {
  SelfLeader();
  View().failover = FailoverRequest{kN1, kN2, obs_.wall_now + seconds(60), 42};
  EXPECT_FALSE(Has(Run(), "StopPostgres"));
}

class SwitchoverStoppedTest : public DecideTest {
 protected:
  SwitchoverStoppedTest() {
    SelfLeader();
    View().failover = FailoverRequest{kN1, kN2, std::nullopt, 42};
    obs_.pg.state = ProcessState::kStopped;
    obs_.pg.write_lsn = Lsn(5100);  // the shutdown checkpoint
    memory_.switchover = AgentMemory::Switchover{kN2, now_ + seconds(5), 42};
  }
};

TEST_F(SwitchoverStoppedTest, OldPrimaryProbesTheCandidate) {
  EXPECT_EQ(Names(Run()), (V{"ProbePeers(n2)"}));
}

TEST_F(SwitchoverStoppedTest, OldPrimaryWaitsUntilTheCandidateHasEverything) {
  Answer(now_ - milliseconds(10), {{kN2, Peer(PgRole::kReplica, Lsn(5000))}});
  EXPECT_FALSE(Has(Run(), "ReleaseLeader"));
}

TEST_F(SwitchoverStoppedTest, OldPrimaryReleasesOnceTheCandidateHasEverything) {
  Answer(now_ - milliseconds(10), {{kN2, Peer(PgRole::kReplica, Lsn(5100))}});
  Decision d = Run();
  EXPECT_EQ(Names(d), (V{"ReleaseLeader"}));
  EXPECT_FALSE(d.next.switchover);
}

TEST_F(SwitchoverStoppedTest, OldPrimaryRestartsWhenTheSwitchoverTimesOut) {
  memory_.switchover->deadline = now_;
  EXPECT_EQ(Names(Run()), (V{"ClearFailoverRequest", "StartPostgres(primary)"}));
}

TEST_F(DecideTest, SwitchoverCandidateTakesTheLockAtOnce) {
  obs_.pg = RunningReplica(Lsn(5100), kN1);
  View().failover = FailoverRequest{kN1, kN2, std::nullopt, 42};
  EXPECT_EQ(Names(Run()), (V{"AcquireLeader", "Promote"}));
}

TEST_F(DecideTest, ManualFailoverWorksWithoutAHealthyPrimaryEvenIfLagging) {
  obs_.pg = RunningReplica(Lsn(10), kN1);  // far behind: a manual failover ignores the lag
  View().failover = FailoverRequest{std::nullopt, kN2, std::nullopt, 42};
  EXPECT_EQ(Names(Run()), (V{"AcquireLeader", "Promote"}));
}

TEST_F(DecideTest, OthersLeaveAManualFailoverToAReachableCandidate) {
  config_ = Config(kN3);
  obs_.lease.id = 99;
  obs_.pg = RunningReplica(Lsn(6000), kN1);
  View().failover = FailoverRequest{std::nullopt, kN2, std::nullopt, 42};
  Answer(now_ - milliseconds(10), {{kN1, PeerStatus{}}, {kN2, Peer(PgRole::kReplica, Lsn(10))}});
  EXPECT_FALSE(Has(Run(), "AcquireLeader"));
}

TEST_F(DecideTest, OthersIgnoreAManualFailoverToAnUnfitCandidate) {
  config_ = Config(kN3);
  obs_.lease.id = 99;
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  View().failover = FailoverRequest{std::nullopt, kN2, std::nullopt, 42};
  Tags nofailover;
  nofailover.nofailover = true;
  Answer(now_ - milliseconds(10),
         {{kN1, PeerStatus{}}, {kN2, Peer(PgRole::kReplica, Lsn(10), nofailover)}});
  EXPECT_EQ(Names(Run()), (V{"AcquireLeader", "Promote"}));
}

TEST_F(DecideTest, OthersStopWaitingForASlowManualFailoverCandidate) {
  config_ = Config(kN3);
  obs_.lease.id = 99;
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  View().failover = FailoverRequest{std::nullopt, kN2, std::nullopt, 42};
  Answer(now_ - milliseconds(10), {{kN1, PeerStatus{}}, {kN2, Peer(PgRole::kReplica, Lsn(10))}});
  memory_.failover_wait = std::make_pair(int64_t{42}, now_ - seconds(10));
  EXPECT_EQ(Names(Run()), (V{"AcquireLeader", "Promote"}));
}

TEST_F(DecideTest, OthersRaceWhenTheManualFailoverCandidateIsGone) {
  config_ = Config(kN3);
  obs_.lease.id = 99;
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  View().failover = FailoverRequest{std::nullopt, kN2, std::nullopt, 42};
  Answer(now_ - milliseconds(10), {{kN1, PeerStatus{}}, {kN2, PeerStatus{}}});
  EXPECT_EQ(Names(Run()), (V{"AcquireLeader", "Promote"}));
}

// --- Member key -------------------------------------------------------------------------------

TEST_F(DecideTest, MemberKeyIsWrittenOnChangeAndRefreshedEveryLoopWait) {
  LeaderIs(kN1, kOtherLease);
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  Decision d = Run();
  ASSERT_TRUE(Has(d, "WriteMember"));  // the stored key says nothing of our urls/upstream
  for (const Action& a : d.actions) {
    if (auto* w = std::get_if<WriteMember>(&a)) {
      View().members[kN2] = w->member;
    }
  }
  memory_ = d.next;
  EXPECT_FALSE(Has(Run(), "WriteMember"));
  obs_.pg.received_lsn = Lsn(5001);  // only positions changed: not before loop_wait
  EXPECT_FALSE(Has(Run(), "WriteMember"));
  obs_.now += seconds(1);
  EXPECT_TRUE(Has(Run(), "WriteMember"));
}

TEST_F(DecideTest, PendingRestartIsPublishedInTheMemberKeyAtOnce) {
  LeaderIs(kN1, kOtherLease);
  obs_.pg = RunningReplica(Lsn(5000), kN1);
  Decision d = Run();
  for (const Action& a : d.actions) {
    if (auto* w = std::get_if<WriteMember>(&a)) View().members[kN2] = w->member;
  }
  memory_ = d.next;
  ASSERT_FALSE(Has(Run(), "WriteMember"));
  obs_.pg.pending_restart = true;  // a change, not a refresh: written before loop_wait
  d = Run();
  bool written = false;
  for (const Action& a : d.actions) {
    if (auto* w = std::get_if<WriteMember>(&a)) written = w->member.pending_restart;
  }
  EXPECT_TRUE(written);
}

TEST(HaConfigTest, TimingRule) {
  HaConfig c = Config(kN1);
  EXPECT_EQ(c.Check(), "");
  c.loop_wait = seconds(3);
  EXPECT_NE(c.Check(), "");
}

}  // namespace
}  // namespace pgwarden::core
