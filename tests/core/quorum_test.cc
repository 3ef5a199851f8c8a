// Synchronous replication with more than one standby in the decision core
// (docs/sync-replication.md): synchronous_node_count > 1 (FIRST k) and the quorum form
// (`synchronous_mode: quorum`, ANY k): the order of the `sync` writes and the
// synchronous_standby_names changes, SafeQuorum, and the quorum candidate rule.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "scene.h"

namespace pgwarden::core {
namespace {

using std::chrono::milliseconds;

SyncStandbyNames Any(std::vector<MemberName> names, int count) {
  return SyncStandbyNames{std::move(names), count, false, true};
}

// The base scene (scene.h) with n1 (us) leading on a running primary at 5000; n2 (5000), n3
// (4000) and n4 (3000) are running replicas; synchronous_mode quorum is on. Run() carries
// memory_ forward.
class QuorumTest : public Scene {
 protected:
  QuorumTest() {
    SelfLeaderWithStandbys({{kN2, Lsn(5000)}, {kN3, Lsn(4000)}, {kN4, Lsn(3000)}});
    config_.synchronous_mode = true;
    config_.synchronous_quorum = true;
  }
  // The `sync` key with its quorum.
  void Sync(std::vector<MemberName> list, int quorum, MemberName leader = kN1) {
    Scene::Sync(std::move(list), std::move(leader));
    obs_.cluster->sync->quorum = quorum;
  }
  Decision Run() { return Step(); }
  V SyncActions(const Decision& d) {
    return Only(d, {"WriteSync", "SetSynchronousStandbys", "Promote", "AcquireLeader"});
  }
  // n1 is gone; we are `me`, a running replica at `lsn`, and the leader key is free.
  void PrimaryLost(const MemberName& me, Lsn lsn) {
    config_.name = me;
    obs_.cluster->leader.reset();
    obs_.cluster->members.erase(kN1);
    obs_.pg = RunningReplica(lsn);
  }
  // The probe answers arrive (fresh: asked at now_, answered just after).
  void Probed(std::map<MemberName, std::optional<Lsn>> peers) {
    memory_.probe_requested_at = now_;
    PeerProbe probe{now_ + milliseconds(1), {}};
    for (const auto& [name, lsn] : peers) {
      PeerStatus p;
      p.reachable = lsn.has_value();
      p.running = true;
      p.role = PgRole::kReplica;
      if (lsn) p.received_lsn = p.replayed_lsn = *lsn;
      probe.peers[name] = p;
    }
    obs_.probes = probe;
    obs_.now = now_ + milliseconds(10);
  }
};

// --- synchronous_node_count > 1 in the plain mode ----------------------------------------------

TEST_F(QuorumTest, TwoSyncStandbysArePickedByLagAndEachIsListedOnlyOnceCaughtUp) {
  config_.synchronous_quorum = false;
  config_.synchronous_node_count = 2;
  Sync({}, 0);
  Row(kN2, false, Lsn(5000));
  Row(kN3, false, Lsn(4000));
  Row(kN4, false, Lsn(3000));
  EXPECT_EQ(SyncActions(Run()), V{"SetSynchronousStandbys(FIRST 2 (\"n2\",\"n3\"))"});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2, kN3}, 2, false};
  obs_.pg.replication.clear();
  Row(kN2, true, Lsn(5000));
  Row(kN3, true, Lsn(4500));  // synchronous, not yet past the flush LSN of that moment
  Row(kN4, false, Lsn(3000));
  EXPECT_EQ(SyncActions(Run()), V{"WriteSync([n2])"});
  Sync({kN2}, 0);
  obs_.pg.replication[1].flush_lsn = Lsn(5000);
  EXPECT_EQ(SyncActions(Run()), V{"WriteSync([n2,n3])"});
}

TEST_F(QuorumTest, TwoSyncStandbysLosingOneShrinksSyncBeforeReplacingIt) {
  config_.synchronous_quorum = false;
  config_.synchronous_node_count = 2;
  Sync({kN2, kN3}, 0);
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2, kN3}, 2, false};
  Row(kN2, true, Lsn(5000));
  Row(kN4, false, Lsn(3000));  // n3 is gone
  EXPECT_EQ(SyncActions(Run()),
            (V{"WriteSync([n2])", "SetSynchronousStandbys(FIRST 2 (\"n2\",\"n4\"))"}));
}

// --- SafeQuorum
// -----------------------------------------------------------------------------------

TEST(SafeQuorumTest, SteadyStateIsSetSizeMinusK) {
  EXPECT_EQ(SafeQuorum({kN2, kN3}, 0, {Any({kN2, kN3}, 1)}), 1);
  EXPECT_EQ(SafeQuorum({kN2, kN3, kN4}, 0, {Any({kN2, kN3, kN4}, 2)}), 1);
  EXPECT_EQ(SafeQuorum({kN2, kN3}, 0, {Any({kN2, kN3}, 2)}), 0);
}

TEST(SafeQuorumTest, AListedStandbyOutsideTheSetRaisesTheQuorum) {
  // ANY 2 (n2,n3,n4) with the set {n2,n3}: a commit may be on n4 and one of n2/n3 only.
  EXPECT_EQ(SafeQuorum({kN2, kN3}, 0, {Any({kN2, kN3, kN4}, 2)}), 1);
  // ANY 1 (n2,n3,n4) with the set {n2,n3}: a commit may be on n4 alone: nothing is safe.
  EXPECT_EQ(SafeQuorum({kN2, kN3}, 0, {Any({kN2, kN3, kN4}, 1)}), std::nullopt);
}

TEST(SafeQuorumTest, AsynchronousOrAnyStandbyGuaranteesNothing) {
  EXPECT_EQ(SafeQuorum({kN2}, 0, {SyncStandbyNames{}}), std::nullopt);
  EXPECT_EQ(SafeQuorum({kN2}, 0, {SyncStandbyNames{{}, 0, true, false}}), std::nullopt);
}

TEST(SafeQuorumTest, WhatIsKnownOfPastCommitsIsAFloor) {
  EXPECT_EQ(SafeQuorum({kN2, kN3, kN4}, 2, {Any({kN2, kN3, kN4}, 2)}), 2);
  EXPECT_EQ(SafeQuorum({kN2, kN3}, 2, {Any({kN2, kN3}, 1)}), std::nullopt);
}

TEST(SafeQuorumTest, BothSettingsOfAChangeAreCovered) {
  // ANY 1 (n2,n3) -> ANY 1 (n2,n3,n4): the set of both, the larger quorum.
  EXPECT_EQ(SafeQuorum({kN2, kN3, kN4}, 1 + 1, {Any({kN2, kN3}, 1), Any({kN2, kN3, kN4}, 1)}), 2);
}

// --- The leader in quorum mode ------------------------------------------------------------------

TEST_F(QuorumTest, QuorumModeSetsAnyKOfEveryHealthyStandbyAfterOwningSync) {
  Row(kN2, false, Lsn(5000));
  Row(kN3, false, Lsn(4000));
  EXPECT_EQ(SyncActions(Run()),
            (V{"WriteSync([])", "SetSynchronousStandbys(ANY 1 (\"n2\",\"n3\"))"}));
}

TEST_F(QuorumTest, NosyncStandbyIsNotInTheQuorum) {
  obs_.cluster->members[kN3].tags.nosync = true;
  Sync({}, 0);
  Row(kN2, false, Lsn(5000));
  Row(kN3, false, Lsn(4000));
  Row(kN4, false, Lsn(3000));
  EXPECT_EQ(SyncActions(Run()), V{"SetSynchronousStandbys(ANY 1 (\"n2\",\"n4\"))"});
}

TEST_F(QuorumTest, KIsCappedAtTheNumberOfStandbys) {
  config_.synchronous_node_count = 5;
  Sync({}, 0);
  Row(kN2, false, Lsn(5000));
  Row(kN3, false, Lsn(4000));
  EXPECT_EQ(SyncActions(Run()), V{"SetSynchronousStandbys(ANY 2 (\"n2\",\"n3\"))"});
}

TEST_F(QuorumTest, SyncRecordsTheSetAndQuorumOnceWalsendersUseItAndStandbysCaughtUp) {
  Sync({}, 0);
  obs_.pg.sync_standby_names = Any({kN2, kN3}, 1);
  Row(kN2, true, Lsn(4900));
  Row(kN3, true, Lsn(4800));  // neither has flushed what the primary had (5000)
  EXPECT_EQ(SyncActions(Run()), V{});
  obs_.pg.flush_lsn = Lsn(6000);
  obs_.pg.replication.clear();
  Row(kN2, true, Lsn(5000));  // n2 reached 5000: commits before are on n2, after on 1 of 2
  Row(kN3, true, Lsn(4900));
  EXPECT_EQ(SyncActions(Run()), V{"WriteSync([n2,n3] quorum 1)"});
}

TEST_F(QuorumTest, SyncWaitsUntilEveryWalsenderLoadedTheSetting) {
  Sync({}, 0);
  obs_.pg.sync_standby_names = Any({kN2, kN3}, 1);
  Row(kN2, true, Lsn(5000));
  Row(kN3, false, Lsn(5000));  // its walsender still runs the old setting
  Decision d = Run();
  EXPECT_EQ(SyncActions(d), V{});
  EXPECT_LE(d.wake_at, now_ + config_.loop_wait / 4);
}

TEST_F(QuorumTest, ANewStandbyJoinsWithTheQuorumRaisedFirst) {
  Sync({kN2, kN3}, 1);
  obs_.pg.sync_standby_names = Any({kN2, kN3}, 1);
  memory_.quorum_since = std::make_pair(Any({kN2, kN3}, 1), Lsn(4000));
  Row(kN2, true, Lsn(5000));
  Row(kN3, true, Lsn(5000));
  Row(kN4, false, Lsn(5000));
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([n2,n3,n4] quorum 2)",
                                   "SetSynchronousStandbys(ANY 1 (\"n2\",\"n3\",\"n4\"))"}));
}

TEST_F(QuorumTest, ALostStandbyStaysInSyncUntilTheNewSettingIsInForce) {
  Sync({kN2, kN3}, 1);
  obs_.pg.sync_standby_names = Any({kN2, kN3}, 1);
  memory_.quorum_since = std::make_pair(Any({kN2, kN3}, 1), Lsn(4000));
  Row(kN2, true, Lsn(5000));  // n3 is gone: a commit may be on n3 alone
  EXPECT_EQ(SyncActions(Run()), V{"SetSynchronousStandbys(ANY 1 (\"n2\"))"});
  obs_.pg.sync_standby_names = Any({kN2}, 1);
  obs_.pg.flush_lsn = Lsn(5200);
  obs_.pg.replication[0].flush_lsn = Lsn(5100);
  EXPECT_EQ(SyncActions(Run()), V{});  // n2 has not flushed past 5200 yet: keep n3 listed
  obs_.pg.replication[0].flush_lsn = Lsn(5200);
  EXPECT_EQ(SyncActions(Run()), V{"WriteSync([n2])"});
}

TEST_F(QuorumTest, NoStandbyLeftFallsBackToAsyncAfterEmptyingSync) {
  Sync({kN2, kN3}, 1);
  obs_.pg.sync_standby_names = Any({kN2, kN3}, 1);
  memory_.quorum_since = std::make_pair(Any({kN2, kN3}, 1), Lsn(4000));
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([])", "SetSynchronousStandbys()"}));
}

TEST_F(QuorumTest, StrictWithNoStandbyLeftWaitsForAnyAfterEmptyingSync) {
  config_.synchronous_mode_strict = true;
  Sync({kN2, kN3}, 1);
  obs_.pg.sync_standby_names = Any({kN2, kN3}, 1);
  memory_.quorum_since = std::make_pair(Any({kN2, kN3}, 1), Lsn(4000));
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([])", "SetSynchronousStandbys(*)"}));
}

TEST_F(QuorumTest, UnknownAppliedSettingEmptiesSyncFirst) {
  Sync({kN2, kN3}, 1);
  obs_.pg.sync_standby_names.reset();  // agent restarted: what PostgreSQL runs is unknown
  Row(kN2, true, Lsn(5000));
  Row(kN3, true, Lsn(5000));
  EXPECT_EQ(SyncActions(Run()),
            (V{"WriteSync([])", "SetSynchronousStandbys(ANY 1 (\"n2\",\"n3\"))"}));
}

TEST_F(QuorumTest, LeavingQuorumModeRewritesAQuorumKeyBeforeTrustingIt) {
  config_.synchronous_quorum = false;
  Sync({kN2, kN3}, 1);
  obs_.pg.sync_standby_names = Any({kN2, kN3}, 1);
  Row(kN2, true, Lsn(5000));
  Row(kN3, true, Lsn(5000));
  const V got = SyncActions(Run());
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0], "WriteSync([])");
}

// --- The candidate rule
// ---------------------------------------------------------------------------

TEST_F(QuorumTest, CandidateNeedsQuorumPlusOneListedMembersAtOrBehindIt) {
  Sync({kN2, kN3}, 1);
  PrimaryLost(kN2, Lsn(5000));
  Run();  // asks for probes
  Probed({{kN3, Lsn(4000)}, {kN4, Lsn(3000)}});
  EXPECT_EQ(SyncActions(Run()), (V{"AcquireLeader", "WriteSync([])", "Promote"}));
}

TEST_F(QuorumTest, CandidateThatCannotSeeEnoughListedMembersWaits) {
  Sync({kN2, kN3}, 1);
  PrimaryLost(kN2, Lsn(5000));
  Run();
  Probed({{kN3, std::nullopt}, {kN4, Lsn(3000)}});  // n3 unreachable: it may hold more
  Decision d = Run();
  EXPECT_EQ(SyncActions(d), V{});
  EXPECT_NE(d.reason.find("needs 2 of its 2 listed members"), std::string::npos) << d.reason;
}

TEST_F(QuorumTest, CandidateBehindAListedMemberWaitsForIt) {
  Sync({kN2, kN3}, 1);
  PrimaryLost(kN2, Lsn(4000));
  Run();
  Probed({{kN3, Lsn(5000)}, {kN4, Lsn(3000)}});
  EXPECT_EQ(SyncActions(Run()), V{});
  // n3 sees n2 behind it: n3 may promote.
  PrimaryLost(kN3, Lsn(5000));
  memory_ = AgentMemory{};
  Run();
  Probed({{kN2, Lsn(4000)}, {kN4, Lsn(3000)}});
  EXPECT_EQ(SyncActions(Run()), (V{"AcquireLeader", "WriteSync([])", "Promote"}));
}

TEST_F(QuorumTest, UnlistedCandidateMayPromoteWhenEnoughListedMembersAreBehindIt) {
  Sync({kN2, kN3}, 1);  // every acknowledged commit is on n2 or n3
  PrimaryLost(kN4, Lsn(5000));
  Run();
  Probed({{kN2, Lsn(5000)}, {kN3, Lsn(4000)}});
  // n2 ties with us on position and wins on name; n3 is behind. Both listed vouch for us.
  Decision d = Run();
  EXPECT_EQ(SyncActions(d), V{}) << "n2 is as far and wins the tie on name: " << d.reason;
  obs_.probes->peers[kN2].received_lsn = obs_.probes->peers[kN2].replayed_lsn = Lsn(4500);
  EXPECT_EQ(SyncActions(Run()), (V{"AcquireLeader", "WriteSync([])", "Promote"}));
}

TEST_F(QuorumTest, UnlistedCandidateSeeingOneListedMemberOfTwoWaits) {
  Sync({kN2, kN3}, 1);
  PrimaryLost(kN4, Lsn(5000));
  Run();
  Probed({{kN2, Lsn(4000)}, {kN3, std::nullopt}});
  EXPECT_EQ(SyncActions(Run()), V{});
}

TEST_F(QuorumTest, QuorumZeroIsThePlainRule) {
  Sync({kN2}, 0);
  EXPECT_TRUE(SyncAllowsTakeover(*obs_.cluster, kN2));
  EXPECT_FALSE(SyncAllowsTakeover(*obs_.cluster, kN3));
  EXPECT_TRUE(SyncAllowsTakeover(*obs_.cluster, kN1));  // the leader that wrote it
  EXPECT_EQ(SyncQuorumRefusal(*obs_.cluster, kN2, Lsn(1), {}), "");
}

}  // namespace
}  // namespace pgwarden::core
