// maximum_lag_on_syncnode in the decision core (docs/sync-replication.md, §10): the pure rule
// (LaggingStandbys) and how the leader drops a lagging synchronous standby through the usual
// shrink-first path, in the plain (FIRST k) and the quorum (ANY k) form.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "scene.h"

namespace pgwarden::core {
namespace {

StandbyReplication Standby(const MemberName& n, Lsn flush, std::optional<Lsn> write = std::nullopt,
                           std::optional<Lsn> replay = std::nullopt) {
  return StandbyReplication{n, true, false, flush, write, replay};
}

HaConfig LagConfig(int64_t max_lag, SyncLagPosition position = SyncLagPosition::kFlush) {
  HaConfig c;
  c.maximum_lag_on_syncnode = max_lag;
  c.sync_lag_position = position;
  return c;
}

using Lagging = std::map<MemberName, uint64_t>;

// --- The rule alone ----------------------------------------------------------------------------

TEST(LaggingStandbysTest, OffWhenZeroOrNegative) {
  const std::vector<StandbyReplication> rows{Standby(kN2, Lsn(100000)), Standby(kN3, Lsn(0))};
  EXPECT_EQ(LaggingStandbys(rows, LagConfig(-1)), Lagging{});
  EXPECT_EQ(LaggingStandbys(rows, LagConfig(0)), Lagging{});
  EXPECT_EQ(LaggingStandbys(rows, LagConfig(1)), (Lagging{{kN3, 100000}}));
}

TEST(LaggingStandbysTest, MeasuredAgainstTheMostAdvancedStandbyStrictlyBeyondTheLimit) {
  const std::vector<StandbyReplication> rows{Standby(kN2, Lsn(9000)), Standby(kN3, Lsn(8000)),
                                             Standby(kN4, Lsn(7999))};
  // n3 is exactly 1000 behind n2: not beyond the limit; n4 is 1001 behind.
  EXPECT_EQ(LaggingStandbys(rows, LagConfig(1000)), (Lagging{{kN4, 1001}}));
}

TEST(LaggingStandbysTest, AllStandbysBehindTheSameWayAreKept) {
  // Every standby stalled (the primary far ahead): nobody is swapped, as in Patroni.
  const std::vector<StandbyReplication> rows{Standby(kN2, Lsn(100)), Standby(kN3, Lsn(100))};
  EXPECT_EQ(LaggingStandbys(rows, LagConfig(10)), Lagging{});
}

TEST(LaggingStandbysTest, ASingleStandbyIsNeverLagging) {
  // Patroni would compare it with the primary and drop it (asynchronous, or '*' in strict
  // mode); pgwarden keeps it: the rule only swaps a standby for a better one.
  EXPECT_EQ(LaggingStandbys({Standby(kN2, Lsn(0))}, LagConfig(1)), Lagging{});
}

TEST(LaggingStandbysTest, PositionFollowsSynchronousCommit) {
  // n2: written 9000, flushed 5000, replayed 1000; n3: 6000 everywhere.
  const std::vector<StandbyReplication> rows{
      Standby(kN2, Lsn(5000), Lsn(9000), Lsn(1000)),
      Standby(kN3, Lsn(6000), Lsn(6000), Lsn(6000)),
  };
  EXPECT_EQ(LaggingStandbys(rows, LagConfig(500, SyncLagPosition::kWrite)), (Lagging{{kN3, 3000}}));
  EXPECT_EQ(LaggingStandbys(rows, LagConfig(500, SyncLagPosition::kFlush)), (Lagging{{kN2, 1000}}));
  EXPECT_EQ(LaggingStandbys(rows, LagConfig(500, SyncLagPosition::kReplay)),
            (Lagging{{kN2, 5000}}));
  // A row without write/replay positions is measured on its flush position.
  const std::vector<StandbyReplication> bare{Standby(kN2, Lsn(5000)), Standby(kN3, Lsn(6000))};
  EXPECT_EQ(LaggingStandbys(bare, LagConfig(500, SyncLagPosition::kReplay)),
            (Lagging{{kN2, 1000}}));
}

// --- The leader ---------------------------------------------------------------------------------

// The base scene (scene.h) with n1 (us) leading on a running primary flushed at 10000; n2, n3
// and n4 are running replicas; synchronous_mode is on with maximum_lag_on_syncnode 1000.
// Run() carries memory_ forward.
class SyncLagTest : public Scene {
 protected:
  SyncLagTest() {
    SelfLeaderWithStandbys({{kN2, Lsn(5000)}, {kN3, Lsn(5000)}, {kN4, Lsn(5000)}});
    obs_.pg.flush_lsn = Lsn(10000);
    config_.synchronous_mode = true;
    config_.maximum_lag_on_syncnode = 1000;
  }
  Decision Run() { return Step(); }
  V SyncActions(const Decision& d) { return Only(d, {"WriteSync", "SetSynchronousStandbys"}); }
  // n2 is the recorded synchronous standby, applied and reported sync.
  void N2IsTheSyncStandby() {
    Sync({kN2});
    obs_.pg.sync_standby_names = SyncStandbyNames{{kN2}, 1, false};
  }
};

TEST_F(SyncLagTest, LaggingSyncStandbyLeavesSyncFirstThenIsReplaced) {
  N2IsTheSyncStandby();
  Row(kN2, true, Lsn(7000));
  Row(kN3, false, Lsn(9500));  // n2 is 2500 behind n3
  Decision d = Run();
  // The usual shrink-first path: `sync` lists nobody before n2 stops being required.
  EXPECT_EQ(SyncActions(d), (V{"WriteSync([])", "SetSynchronousStandbys(FIRST 1 (\"n3\"))"}));
  EXPECT_NE(d.reason.find("n2 lags 2500 bytes > maximum_lag_on_syncnode 1000"), std::string::npos)
      << d.reason;
  // n3 becomes synchronous under the new setting and catches up with the primary's flush LSN
  // of that moment: only then is it recorded.
  Sync({});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN3}, 1, false};
  obs_.pg.replication.clear();
  Row(kN2, false, Lsn(7000));
  Row(kN3, true, Lsn(9900));
  EXPECT_EQ(SyncActions(Run()), V{});
  obs_.pg.replication[1].flush_lsn = Lsn(10000);
  EXPECT_EQ(SyncActions(Run()), V{"WriteSync([n3])"});
}

TEST_F(SyncLagTest, WithinTheLimitTheSyncStandbyStays) {
  N2IsTheSyncStandby();
  Row(kN2, true, Lsn(8500));
  Row(kN3, false, Lsn(9500));  // exactly 1000 behind: not beyond the limit
  EXPECT_EQ(SyncActions(Run()), V{});
}

TEST_F(SyncLagTest, OffByDefaultTheLaggingSyncStandbyStays) {
  config_.maximum_lag_on_syncnode = -1;
  N2IsTheSyncStandby();
  Row(kN2, true, Lsn(1000));
  Row(kN3, false, Lsn(9500));
  EXPECT_EQ(SyncActions(Run()), V{});
}

TEST_F(SyncLagTest, ReplacedStandbyThatCatchesUpIsNotSwappedBack) {
  Sync({kN3});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN3}, 1, false};
  Row(kN2, false, Lsn(10000));  // the old one is now ahead, within the limit
  Row(kN3, true, Lsn(9500));
  EXPECT_EQ(SyncActions(Run()), V{});
}

TEST_F(SyncLagTest, TheOnlyStandbyIsKeptHoweverFarBehind) {
  for (bool strict : {false, true}) {
    config_.synchronous_mode_strict = strict;
    N2IsTheSyncStandby();
    obs_.pg.replication.clear();
    Row(kN2, true, Lsn(100));  // 9900 behind the primary, nobody else streams
    EXPECT_EQ(SyncActions(Run()), V{}) << "strict " << strict;
  }
}

TEST_F(SyncLagTest, StrictModeSwapsToAQualifyingStandbyNeverToStar) {
  config_.synchronous_mode_strict = true;
  N2IsTheSyncStandby();
  Row(kN2, true, Lsn(7000));
  Row(kN3, false, Lsn(9500));
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([])", "SetSynchronousStandbys(FIRST 1 (\"n3\"))"}));
}

TEST_F(SyncLagTest, ALaggingStandbyIsNotPickedForAFreeSlot) {
  config_.synchronous_node_count = 2;
  Sync({});
  Row(kN2, false, Lsn(9500));
  Row(kN3, false, Lsn(9000));
  Row(kN4, false, Lsn(8000));  // 1500 behind n2
  EXPECT_EQ(SyncActions(Run()), V{"SetSynchronousStandbys(FIRST 2 (\"n2\",\"n3\"))"});
}

TEST_F(SyncLagTest, TwoSyncStandbysOneLaggingWithNoReplacementShrinksToTheOther) {
  config_.synchronous_node_count = 2;
  Sync({kN2, kN3});
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2, kN3}, 2, false};
  Row(kN2, true, Lsn(9500));
  Row(kN3, true, Lsn(6000));  // 3500 behind n2; n4 does not stream
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([n2])", "SetSynchronousStandbys(FIRST 1 (\"n2\"))"}));
}

TEST_F(SyncLagTest, ReplayPositionWithRemoteApply) {
  config_.sync_lag_position = SyncLagPosition::kReplay;
  N2IsTheSyncStandby();
  obs_.pg.replication.push_back(StandbyReplication{kN2, true, true, Lsn(9500), Lsn(9500),
                                                   Lsn(6000)});  // flushed, but replays late
  obs_.pg.replication.push_back(
      StandbyReplication{kN3, true, false, Lsn(9000), Lsn(9000), Lsn(9000)});
  EXPECT_EQ(SyncActions(Run()), (V{"WriteSync([])", "SetSynchronousStandbys(FIRST 1 (\"n3\"))"}));
}

TEST_F(SyncLagTest, QuorumModeLeavesTheLaggingStandbyOutOnlyAfterAKeyCoveringBothSettings) {
  config_.synchronous_quorum = true;
  Sync({kN2, kN3, kN4});
  obs_.cluster->sync->quorum = 2;
  const SyncStandbyNames any1{{kN2, kN3, kN4}, 1, false, true};
  obs_.pg.sync_standby_names = any1;
  memory_.quorum_since = std::make_pair(any1, Lsn(4000));
  Row(kN2, true, Lsn(9500));
  Row(kN3, true, Lsn(9000));
  Row(kN4, true, Lsn(7000));  // 2500 behind n2
  Decision d = Run();
  // The key stays valid for ANY 1 of the three (a commit may be on n4 alone) while ANY 1
  // (n2,n3) is applied.
  EXPECT_EQ(SyncActions(d), V{"SetSynchronousStandbys(ANY 1 (\"n2\",\"n3\"))"});
  EXPECT_NE(d.reason.find("n4 lags 2500 bytes"), std::string::npos) << d.reason;
  // Once the new setting is in force and a member of it has flushed past the flush LSN of
  // that moment, n4 leaves the key.
  obs_.pg.sync_standby_names = SyncStandbyNames{{kN2, kN3}, 1, false, true};
  obs_.pg.replication[2].sync = false;
  EXPECT_EQ(SyncActions(Run()), V{});
  obs_.pg.replication[0].flush_lsn = Lsn(10000);
  EXPECT_EQ(SyncActions(Run()), V{"WriteSync([n2,n3] quorum 1)"});
}

}  // namespace
}  // namespace pgwarden::core
