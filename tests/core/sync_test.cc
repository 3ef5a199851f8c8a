// Synchronous replication in the decision core (docs/sync-replication.md): the order of the
// `sync` writes and the synchronous_standby_names changes, and the candidate rule.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "scene.h"

namespace pgwarden::core {
namespace {

using std::chrono::milliseconds;

// The base scene (scene.h) with n1 (us) leading on a running primary at 5000; n2 (5000) and
// n3 (4000) are running replicas; synchronous_mode is on. Run() carries memory_ forward.
class SyncTest : public Scene {
 protected:
  SyncTest() {
    SelfLeaderWithStandbys({{kN2, Lsn(5000)}, {kN3, Lsn(4000)}});
    config_.synchronous_mode = true;
  }
  Decision Run() { return Step(); }
  // The actions that matter here.
  V SyncActions(const Decision& d) {
    return Only(
        d, {"WriteSync", "SetSynchronousStandbys", "Promote", "AcquireLeader", "StartPostgres"});
  }
};

TEST_F(SyncTest, NewLeaderWritesItsOwnKeyThenPicksTheMostAdvancedStandby) {
  Row(kN2, false, Lsn(5000));
  Row(kN3, false, Lsn(4000));
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([])", "SetSynchronousStandbys(FIRST 1 (\"n2\"))"}));
}

TEST_F(SyncTest, StaleKeyOfAFormerLeaderIsRewrittenNotObeyed) {
  Sync({kN3}, kN3);  // written by n3 when it led
  Row(kN2, false, Lsn(5000));
  Decision d = Run();
  ASSERT_FALSE(d.actions.empty());
  const auto* w = [&]() -> const WriteSync* {
    for (const Action& a : d.actions) {
      if (auto* x = std::get_if<WriteSync>(&a)) return x;
    }
    return nullptr;
  }();
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->sync_standby.empty());
  EXPECT_EQ(w->expected_mod_revision, 42);  // CAS on the revision read, not on the writer
}

TEST_F(SyncTest, GrowsOnlyWhenReportedSyncAndCaughtUp) {
  Sync({});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2}, 1, false};
  Row(kN2, true, Lsn(4900));  // synchronous, but behind the primary's flush when it became so
  EXPECT_EQ(SyncActions(Run()), V{});
  obs_.pg.replication.clear();
  obs_.pg.flush_lsn = Lsn(6000);
  Row(kN2, true, Lsn(5000));  // reached the flush LSN recorded at the first sight (5000)
  EXPECT_EQ(SyncActions(Run()), V{"WriteSync([n2])"});
}

TEST_F(SyncTest, NotReportedSyncIsNeverAdded) {
  Sync({});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2}, 1, false};
  Row(kN2, false, Lsn(5000));
  Run();
  EXPECT_EQ(SyncActions(Run()), V{});
}

TEST_F(SyncTest, LostStandbyLeavesSyncBeforeSynchronousStandbyNames) {
  Sync({kN2});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2}, 1, false};
  Row(kN3, false, Lsn(4000));  // n2 is gone from pg_stat_replication
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([])", "SetSynchronousStandbys(FIRST 1 (\"n3\"))"}));
}

TEST_F(SyncTest, NoStandbyLeftFallsBackToAsyncAfterEmptyingSync) {
  Sync({kN2});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2}, 1, false};
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([])", "SetSynchronousStandbys()"}));
}

TEST_F(SyncTest, StrictBlocksWritesWithNoStandby) {
  config_.synchronous_mode_strict = true;
  Sync({kN2});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2}, 1, false};
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([])", "SetSynchronousStandbys(*)"}));
}

TEST_F(SyncTest, NosyncReplicaIsNeverPicked) {
  obs_.cluster->members[kN2].tags.nosync = true;
  Sync({});
  Row(kN2, false, Lsn(5000));
  Row(kN3, false, Lsn(4000));
  EXPECT_EQ(SyncActions(Run()), V{"SetSynchronousStandbys(FIRST 1 (\"n3\"))"});
}

TEST_F(SyncTest, ElectionOnlyForMembersListedInSync) {
  config_.name = kN3;
  obs_.cluster->leader.reset();
  obs_.cluster->members.erase(kN1);
  obs_.pg = LocalPostgres{};
  obs_.pg.data_dir = DataDirState::kInitialized;
  obs_.pg.system_identifier = "7000";
  obs_.pg.state = ProcessState::kRunning;
  obs_.pg.role = PgRole::kReplica;
  obs_.pg.timeline = Timeline(1);
  obs_.pg.received_lsn = Lsn(5000);
  obs_.pg.replayed_lsn = Lsn(5000);
  Sync({kN2});
  Decision d = Run();
  EXPECT_EQ(SyncActions(d), V{});
  EXPECT_NE(d.reason.find("not listed in sync"), std::string::npos) << d.reason;
  // n2 is listed: it probes, then promotes, writing `sync` = {n2, []} before the promotion.
  config_.name = kN2;
  memory_ = AgentMemory{};
  d = Run();
  ASSERT_FALSE(d.actions.empty());
  memory_.probe_requested_at = now_;
  PeerStatus p;
  p.reachable = true;
  obs_.probes = PeerProbe{now_ + milliseconds(1), {{kN3, p}}};
  obs_.now = now_ + milliseconds(10);
  EXPECT_EQ(SyncActions(Run()), (V{"AcquireLeader", "WriteSync([])", "Promote"}));
}

TEST_F(SyncTest, SwitchoverToAMemberNotInSyncIsRefused) {
  Sync({kN2});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2}, 1, false};
  Row(kN2, true, Lsn(5000));
  FailoverRequest req;
  req.leader = kN1;
  req.candidate = kN3;
  req.mod_revision = 9;
  obs_.cluster->failover = req;
  Decision d = Run();
  EXPECT_NE(d.reason.find("not a synchronous standby"), std::string::npos) << d.reason;
  bool stops = false;
  for (const Action& a : d.actions) stops = stops || std::holds_alternative<StopPostgres>(a);
  EXPECT_FALSE(stops);
}

TEST_F(SyncTest, LeaderRestartingItsPrimaryEmptiesSyncFirst) {
  Sync({kN2});
  obs_.pg.state = ProcessState::kStopped;
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([])", "StartPostgres(primary)"}));
}

}  // namespace
}  // namespace pgwarden::core
