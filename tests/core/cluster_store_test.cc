// ClusterStore over MemoryDcs: the key layout, the reading of the prefix into a ClusterView,
// and the compare-and-swap semantics of every write.
#include "cluster/cluster_store.h"

#include <gtest/gtest.h>

#include "cluster/codec.h"
#include "dcs/memory/memory_dcs.h"

namespace pgwarden::cluster {
namespace {

using std::chrono::seconds;

const MemberName kN1("n1");
const MemberName kN2("n2");

class ClusterStoreTest : public ::testing::Test {
 protected:
  ClusterStoreTest() : dcs_(clock_), store_(dcs_, Keys("service", "pg1")) {
    lease1_ = dcs_.GrantLease(seconds(3))->id;
    lease2_ = dcs_.GrantLease(seconds(3))->id;
  }
  core::ClusterView View() {
    auto r = store_.Read();
    EXPECT_TRUE(r.has_value());
    EXPECT_TRUE(r->problems.empty()) << r->problems[0].ToString();
    return r->view;
  }

  FakeClock clock_;
  dcs::MemoryDcs dcs_;
  ClusterStore store_;
  dcs::LeaseId lease1_ = 0, lease2_ = 0;
};

TEST(KeysTest, LayoutUnderNamespaceAndScope) {
  Keys k("/service/", "pg1");
  EXPECT_EQ(k.prefix, "/service/pg1/");
  EXPECT_EQ(k.leader, "/service/pg1/leader");
  EXPECT_EQ(k.Member(kN1), "/service/pg1/members/n1");
  EXPECT_EQ(k.initialize, "/service/pg1/initialize");
  EXPECT_EQ(k.failover, "/service/pg1/failover");
}

TEST_F(ClusterStoreTest, EmptyStoreIsAnEmptyView) {
  core::ClusterView v = View();
  EXPECT_FALSE(v.initialize);
  EXPECT_FALSE(v.leader);
  EXPECT_TRUE(v.members.empty());
  EXPECT_EQ(v.ClusterTimeline(), Timeline(1));
}

TEST_F(ClusterStoreTest, LeaderIsCreatedOnlyIfAbsent) {
  ASSERT_TRUE(store_.AcquireLeader(kN1, lease1_));
  EXPECT_TRUE(store_.AcquireLeader(kN1, lease1_)) << "idempotent for the holder";
  auto lost = store_.AcquireLeader(kN2, lease2_);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, ErrorCode::kConflict);
  core::ClusterView v = View();
  ASSERT_TRUE(v.leader);
  EXPECT_EQ(v.leader->holder, kN1);
  EXPECT_EQ(v.leader->lease, lease1_);
}

TEST_F(ClusterStoreTest, LeaderKeyDiesWithItsLease) {
  ASSERT_TRUE(store_.AcquireLeader(kN1, lease1_));
  clock_.Advance(seconds(3));
  EXPECT_FALSE(View().leader);
  // And an expired lease cannot take it again: the put fails.
  EXPECT_FALSE(store_.AcquireLeader(kN1, lease1_));
}

TEST_F(ClusterStoreTest, OnlyTheHolderReleasesTheLeaderKey) {
  ASSERT_TRUE(store_.AcquireLeader(kN1, lease1_));
  EXPECT_TRUE(store_.ReleaseLeader(kN2));
  EXPECT_TRUE(View().leader) << "n2 must not delete n1's key";
  EXPECT_TRUE(store_.ReleaseLeader(kN1));
  EXPECT_FALSE(View().leader);
}

TEST_F(ClusterStoreTest, StatusIsWrittenOnlyByTheLeader) {
  ASSERT_TRUE(store_.AcquireLeader(kN1, lease1_));
  auto r = store_.UpdateLeaderStatus(kN2, core::LeaderStatus{Lsn(5)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  ASSERT_TRUE(store_.UpdateLeaderStatus(kN1, core::LeaderStatus{Lsn(77)}));
  ASSERT_TRUE(View().status);
  EXPECT_EQ(View().status->optime, Lsn(77));
}

TEST_F(ClusterStoreTest, BootstrapRaceHasOneWinner) {
  ASSERT_TRUE(store_.ClaimBootstrap(kN1, lease1_));
  auto lost = store_.ClaimBootstrap(kN2, lease2_);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, ErrorCode::kConflict);
  core::ClusterView v = View();
  EXPECT_EQ(v.initialize, "");
  EXPECT_EQ(v.leader->holder, kN1);
  // Only the leader registers the system identifier.
  EXPECT_FALSE(store_.WriteInitialize(kN2, "999"));
  ASSERT_TRUE(store_.WriteInitialize(kN1, "7001"));
  EXPECT_TRUE(store_.WriteInitialize(kN1, "7001")) << "idempotent";
  EXPECT_EQ(View().initialize, "7001");
}

TEST_F(ClusterStoreTest, ABootstrapWhoseClaimantDiedCanBeReclaimed) {
  ASSERT_TRUE(store_.ClaimBootstrap(kN1, lease1_));
  clock_.Advance(seconds(2));
  ASSERT_TRUE(dcs_.KeepAlive(lease2_));
  clock_.Advance(seconds(2));  // lease1 expired: leader gone, initialize still ""
  ASSERT_TRUE(store_.ClaimBootstrap(kN2, lease2_));
  EXPECT_EQ(View().leader->holder, kN2);
}

TEST_F(ClusterStoreTest, MembersAreReadBackWithTheirLease) {
  core::Member m;
  m.name = kN2;
  m.role = core::MemberRole::kReplica;
  m.state = core::PgState::kRunning;
  m.api_url = "http://127.0.0.1:8008/patroni";
  m.conn_url = "postgres://127.0.0.1:5432/postgres";
  m.timeline = Timeline(3);
  m.received_lsn = Lsn(0x3000060);
  m.replayed_lsn = Lsn(0x3000000);
  m.tags.nofailover = true;
  m.tags.failover_priority = 3;
  m.pending_restart = true;
  ASSERT_TRUE(store_.WriteMember(m, lease2_));
  core::ClusterView v = View();
  ASSERT_EQ(v.members.count(kN2), 1u);
  m.lease = lease2_;
  EXPECT_EQ(v.members[kN2], m);
}

TEST_F(ClusterStoreTest, PendingRestartIsWrittenAsPatroniDoes) {
  core::Member m;
  m.name = kN2;
  m.role = core::MemberRole::kReplica;
  m.state = core::PgState::kRunning;
  ASSERT_TRUE(store_.WriteMember(m, lease2_));
  auto plain = dcs_.Get("/service/pg1/members/n2");
  ASSERT_TRUE(plain && plain->kvs.size() == 1u);
  EXPECT_EQ(plain->kvs[0].value.find("pending_restart"), std::string::npos) << "only when set";
  EXPECT_FALSE(View().members.at(kN2).pending_restart);

  m.pending_restart = true;
  ASSERT_TRUE(store_.WriteMember(m, lease2_));
  auto set = dcs_.Get("/service/pg1/members/n2");
  ASSERT_TRUE(set && set->kvs.size() == 1u);
  EXPECT_NE(set->kvs[0].value.find("\"pending_restart\":true"), std::string::npos)
      << set->kvs[0].value;
  EXPECT_TRUE(View().members.at(kN2).pending_restart);

  // Patroni's own key, and a lenient read of odd values (display only, never skips the member).
  ASSERT_TRUE(dcs_.Put("/service/pg1/members/n3",
                       R"({"state": "running", "role": "replica", "pending_restart": true})", 0));
  ASSERT_TRUE(dcs_.Put("/service/pg1/members/n4",
                       R"({"state": "running", "role": "replica", "pending_restart": "true"})", 0));
  ASSERT_TRUE(dcs_.Put("/service/pg1/members/n5",
                       R"({"state": "running", "role": "replica", "pending_restart": 1})", 0));
  core::ClusterView v = View();
  EXPECT_TRUE(v.members.at(MemberName("n3")).pending_restart);
  EXPECT_TRUE(v.members.at(MemberName("n4")).pending_restart);
  EXPECT_FALSE(v.members.at(MemberName("n5")).pending_restart);
}

TEST_F(ClusterStoreTest, AMalformedMemberIsReportedAndSkipped) {
  ASSERT_TRUE(dcs_.Put("/service/pg1/members/bad", "{not json", 0));
  ASSERT_TRUE(dcs_.Put("/service/pg1/members/worse", R"({"role": "king"})", 0));
  ASSERT_TRUE(dcs_.Put("/service/pg1/status", R"({"optime": "nope"})", 0));
  ASSERT_TRUE(store_.AcquireLeader(kN1, lease1_));
  auto r = store_.Read();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->view.members.empty());
  EXPECT_FALSE(r->view.status);
  EXPECT_TRUE(r->view.leader);
  ASSERT_EQ(r->problems.size(), 3u);
  for (const Error& e : r->problems) EXPECT_EQ(e.code, ErrorCode::kCorrupt);
  EXPECT_NE(r->problems[0].message.find("members/bad"), std::string::npos);
  EXPECT_NE(r->problems[1].message.find("unknown role 'king'"), std::string::npos);
}

TEST_F(ClusterStoreTest, HistoryIsAppendedWithCompareAndSwap) {
  ASSERT_TRUE(store_.AcquireLeader(kN1, lease1_));
  core::HistoryEntry e{Timeline(1), Lsn(5000), "promoted n1", "2026-11-26T01:00:00.000+00:00",
                       kN1,         kN2};
  EXPECT_FALSE(store_.AppendHistory(kN2, e, 0)) << "only the leader writes history";
  ASSERT_TRUE(store_.AppendHistory(kN1, e, 0));
  EXPECT_TRUE(store_.AppendHistory(kN1, e, 0)) << "idempotent";
  core::ClusterView v = View();
  ASSERT_EQ(v.history.size(), 1u);
  EXPECT_EQ(v.history[0], e);
  EXPECT_EQ(v.ClusterTimeline(), Timeline(2));
  core::HistoryEntry e2{Timeline(2), Lsn(6000), "", "", kN1, {}};
  auto stale = store_.AppendHistory(kN1, e2, 1);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict);
  ASSERT_TRUE(store_.AppendHistory(kN1, e2, v.history_mod_revision));
  EXPECT_EQ(View().ClusterTimeline(), Timeline(3));
}

TEST_F(ClusterStoreTest, FailoverRequestIsClearedOnlyAtTheRevisionRead) {
  core::FailoverRequest req{kN1, kN2, std::nullopt, 0};
  ASSERT_TRUE(store_.RequestFailover(req));
  EXPECT_FALSE(store_.RequestFailover(req));
  core::ClusterView v = View();
  ASSERT_TRUE(v.failover);
  EXPECT_EQ(v.failover->leader, kN1);
  EXPECT_EQ(v.failover->candidate, kN2);
  EXPECT_FALSE(store_.ClearFailoverRequest(v.failover->mod_revision - 1));
  EXPECT_TRUE(store_.ClearFailoverRequest(v.failover->mod_revision));
  EXPECT_FALSE(View().failover);
  EXPECT_TRUE(store_.ClearFailoverRequest(v.failover->mod_revision)) << "already gone";
}

TEST_F(ClusterStoreTest, PatroniValuesAreUnderstood) {
  ASSERT_TRUE(dcs_.Put("/service/pg1/failover", "n1:n2", 0));  // legacy form
  ASSERT_TRUE(dcs_.Put("/service/pg1/history",
                       R"([[1, 25165984, "no recovery target specified",
                            "2024-07-02T10:00:00.123456+02:00", "n2"]])",
                       0));
  ASSERT_TRUE(
      dcs_.Put("/service/pg1/members/n3",
               R"({"conn_url": "postgres://h:5432/postgres", "api_url": "http://h:8008/patroni",
                           "state": "running", "role": "master", "version": "3.3.1",
                           "xlog_location": 50331744, "timeline": 2,
                           "tags": {"nofailover": "true"}})",
               0));
  ASSERT_TRUE(dcs_.Put("/service/pg1/sync", R"({"leader": "n3", "sync_standby": "n1,n2"})", 0));
  core::ClusterView v = View();
  EXPECT_EQ(v.failover->candidate, kN2);
  EXPECT_EQ(v.history.at(0).switch_lsn, Lsn(25165984));
  EXPECT_EQ(v.history.at(0).new_leader, kN2);
  const core::Member& m = v.members.at(MemberName("n3"));
  EXPECT_EQ(m.role, core::MemberRole::kPrimary);
  EXPECT_EQ(m.current_lsn, Lsn(50331744));
  EXPECT_TRUE(m.tags.nofailover);
  EXPECT_EQ(v.sync->sync_standby.size(), 2u);
}

TEST_F(ClusterStoreTest, ExecuteCarriesOutTheCoresEtcdActions) {
  EXPECT_TRUE(store_.Execute(core::AcquireLeader{}, kN1, lease1_));
  EXPECT_TRUE(store_.Execute(core::UpdateLeaderStatus{Lsn(9)}, kN1, lease1_));
  auto wrong = store_.Execute(core::Promote{}, kN1, lease1_);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ClusterStore::IsEtcdAction(core::ReleaseLeader{}));
  EXPECT_FALSE(ClusterStore::IsEtcdAction(core::StopPostgres{}));
}

TEST(Iso8601Test, RoundTripAndOffsets) {
  const SystemTime t = SystemTime(std::chrono::milliseconds(1'800'000'000'250));
  const std::string s = core::FormatIso8601(t);
  EXPECT_EQ(s, "2027-01-15T08:00:00.250+00:00");
  EXPECT_EQ(ParseIso8601(s), t);
  EXPECT_EQ(ParseIso8601("2027-01-15T10:00:00.250+02:00"), t);
  EXPECT_EQ(ParseIso8601("2027-01-15T08:00:00.25Z"), t);
  EXPECT_FALSE(ParseIso8601("2027-01-15T08:00:00"));  // no offset: ambiguous
  EXPECT_FALSE(ParseIso8601("2027-13-15T08:00:00Z"));
  EXPECT_FALSE(ParseIso8601("yesterday"));
}

TEST(CodecTest, BadScheduledAtIsAClearError) {
  auto r = DecodeFailover("/s/failover", R"({"member": "n2", "scheduled_at": "soon"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(r.error().message.find("scheduled_at 'soon'"), std::string::npos);
}

// Quorum mode's `sync` (Patroni 4): the quorum field round-trips, is absent when 0, and a bad
// value is a clear error naming the key.
TEST(CodecTest, SyncQuorumFieldIsPatroniFour) {
  core::SyncState s{MemberName("n1"), {MemberName("n2"), MemberName("n3")}, 0};
  s.quorum = 1;
  const std::string text = EncodeSync(s);
  EXPECT_EQ(text, R"({"leader":"n1","quorum":1,"sync_standby":"n2,n3"})");
  auto back = DecodeSync("/s/sync", text);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->quorum, 1);
  EXPECT_EQ(back->sync_standby, s.sync_standby);
  s.quorum = 0;
  EXPECT_EQ(EncodeSync(s).find("quorum"), std::string::npos);
  auto plain = DecodeSync("/s/sync", R"({"leader":"n1","sync_standby":"n2"})");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->quorum, 0);
  auto bad = DecodeSync("/s/sync", R"({"leader":"n1","sync_standby":"n2","quorum":"two"})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(bad.error().ToString().find("quorum"), std::string::npos) << bad.error().ToString();
}

TEST_F(ClusterStoreTest, WriteSyncCarriesTheQuorum) {
  ASSERT_TRUE(store_.AcquireLeader(kN1, lease1_));
  ASSERT_TRUE(store_.WriteSync(kN1, {kN2, MemberName("n3")}, 0, 1));
  core::ClusterView v = View();
  ASSERT_TRUE(v.sync);
  EXPECT_EQ(v.sync->quorum, 1);
  // Repeating the same write after a lost answer is not a conflict; another quorum is.
  const int64_t rev = v.sync->mod_revision;
  EXPECT_TRUE(store_.WriteSync(kN1, {kN2, MemberName("n3")}, 0, 1));
  EXPECT_FALSE(store_.WriteSync(kN1, {kN2, MemberName("n3")}, 0, 2));
  EXPECT_TRUE(store_.WriteSync(kN1, {kN2}, rev, 0));
}

}  // namespace
}  // namespace pgwarden::cluster
