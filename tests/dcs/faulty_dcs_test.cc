#include "dcs/faulty_dcs.h"

#include <gtest/gtest.h>

#include "dcs/memory/memory_dcs.h"

namespace pgwarden::dcs {
namespace {

using std::chrono::seconds;

class FaultyDcsTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  MemoryDcs inner_{clock_};
  FaultyDcs dcs_{inner_, [this](Duration d) { clock_.Advance(d); }};
};

TEST_F(FaultyDcsTest, PassesThroughWithoutFaults) {
  auto rev = dcs_.Put("/a", "1");
  ASSERT_TRUE(rev);
  EXPECT_EQ(dcs_.Get("/a")->kvs.at(0).value, "1");
  EXPECT_EQ(dcs_.calls_passed(), 2);
  EXPECT_EQ(dcs_.calls_failed(), 0);
}

TEST_F(FaultyDcsTest, UnavailableNeverReachesTheStore) {
  dcs_.SetPolicy({.unavailable = true});
  auto put = dcs_.Put("/a", "1");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.Get("/a").error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.GrantLease(seconds(5)).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(dcs_.Txn({}, {PutOp{"/b", "1", 0}}).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(inner_.CurrentRevision(), 1) << "nothing reached the inner store";
  EXPECT_EQ(inner_.LeaseCount(), 0u);
  EXPECT_EQ(dcs_.calls_failed(), 4);
}

TEST_F(FaultyDcsTest, TimeoutAfterApplyAppliesTheWriteButReportsTimeout) {
  dcs_.SetPolicy({.timeout_after_apply = true});
  auto put = dcs_.Put("/leader", "n1");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kTimeout);
  auto txn = dcs_.Txn({Compare::Absent("/lock")}, {PutOp{"/lock", "n1", 0}});
  EXPECT_EQ(txn.error().code, ErrorCode::kTimeout);
  dcs_.SetPolicy({});
  auto got = dcs_.Get("/", true);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 2u) << "both writes happened";
  EXPECT_EQ(got->kvs[0].key, "/leader");
  EXPECT_EQ(got->kvs[1].key, "/lock");
}

TEST_F(FaultyDcsTest, LatencyGoesThroughTheSleepCallback) {
  auto lease = dcs_.GrantLease(seconds(10));
  ASSERT_TRUE(lease);
  ASSERT_TRUE(dcs_.Put("/leader", "n1", lease->id));
  dcs_.SetPolicy({.latency = seconds(4)});
  EXPECT_TRUE(dcs_.KeepAlive(lease->id));  // advances 4 s, then renews to 10 s
  dcs_.SetPolicy({.latency = seconds(11)});
  auto late = dcs_.KeepAlive(lease->id);  // 11 s pass first: the lease is gone
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(inner_.Get("/leader")->kvs.empty());
}

TEST_F(FaultyDcsTest, WatchIsUnavailableThenCatchesUp) {
  auto watch = dcs_.WatchPrefix("/");
  dcs_.SetPolicy({.unavailable = true});
  ASSERT_TRUE(inner_.Put("/a", "1"));  // someone else writes meanwhile
  EXPECT_EQ(watch->Next(Duration::zero()).error().code, ErrorCode::kUnavailable);
  dcs_.SetPolicy({});
  auto batch = watch->Next(Duration::zero());
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0].kv.key, "/a");
}

}  // namespace
}  // namespace pgwarden::dcs
