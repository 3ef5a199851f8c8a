// MemoryDcs: the contract suite on a FakeClock, plus what only the in-memory store offers
// (exact lease timing on a fake clock, Compact(), bounded history, blocking watches).
#include "dcs/memory/memory_dcs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "dcs_contract.h"

namespace pgwarden::dcs {
namespace {

using std::chrono::seconds;

class MemoryHarness final : public contract::DcsHarness {
 public:
  MemoryHarness() : dcs_(clock_) {}
  Dcs& dcs() override { return dcs_; }
  std::string prefix() override { return "/contract/"; }
  void Pass(Duration d) override { clock_.Advance(d); }
  Duration expiry_slack() override { return Duration::zero(); }

 private:
  FakeClock clock_;
  MemoryDcs dcs_;
};

std::unique_ptr<contract::DcsHarness> MakeMemoryHarness() {
  return std::make_unique<MemoryHarness>();
}

using contract::DcsContractTest;
INSTANTIATE_TEST_SUITE_P(Memory, DcsContractTest, ::testing::Values(&MakeMemoryHarness));

class MemoryDcsTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  MemoryDcs dcs_{clock_};
};

TEST_F(MemoryDcsTest, EmptyStoreIsAtRevisionOne) {
  EXPECT_EQ(dcs_.CurrentRevision(), 1);
  auto got = dcs_.Get("x");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->revision, 1);
  EXPECT_EQ(*dcs_.Put("x", "1"), 2);
}

TEST_F(MemoryDcsTest, LeaseExpiresExactlyAtLastKeepAlivePlusTtl) {
  auto lease = dcs_.GrantLease(seconds(10));
  ASSERT_TRUE(lease);
  ASSERT_TRUE(dcs_.Put("/leader", "n1", lease->id));
  clock_.Advance(seconds(6));
  ASSERT_TRUE(dcs_.KeepAlive(lease->id));
  clock_.Advance(seconds(10) - milliseconds(1));
  EXPECT_EQ(dcs_.Get("/leader")->kvs.size(), 1u) << "1 ms before the end it still holds";
  EXPECT_EQ(dcs_.LeaseTimeToLive(lease->id)->ttl, seconds(0));
  clock_.Advance(milliseconds(1));
  const Revision before = dcs_.CurrentRevision();
  dcs_.ExpireLeases();
  EXPECT_EQ(dcs_.CurrentRevision(), before + 1);
  EXPECT_TRUE(dcs_.Get("/leader")->kvs.empty());
  EXPECT_EQ(dcs_.LeaseCount(), 0u);
  EXPECT_EQ(dcs_.KeepAlive(lease->id).error().code, ErrorCode::kNotFound);
}

TEST_F(MemoryDcsTest, ExpiryOfALeaseWithoutKeysTakesNoRevision) {
  auto lease = dcs_.GrantLease(seconds(1));
  ASSERT_TRUE(lease);
  const Revision before = dcs_.CurrentRevision();
  clock_.Advance(seconds(5));
  dcs_.ExpireLeases();
  EXPECT_EQ(dcs_.CurrentRevision(), before);
  EXPECT_EQ(dcs_.LeaseCount(), 0u);
}

TEST_F(MemoryDcsTest, TtlBelowTheMinimumIsRaisedAndNegativeIsRejected) {
  MemoryDcs dcs(clock_, MemoryDcsOptions{.min_lease_ttl = seconds(2)});
  EXPECT_EQ(dcs.GrantLease(seconds(1))->ttl, seconds(2));
  EXPECT_EQ(dcs.GrantLease(seconds(0))->ttl, seconds(2));
  EXPECT_EQ(dcs.GrantLease(seconds(-1)).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(MemoryDcsTest, TxnRejectsTwoPutsOfOneKeyAndChangesNothing) {
  const Revision before = dcs_.CurrentRevision();
  auto txn = dcs_.Txn({}, {PutOp{"a", "1", 0}, PutOp{"a", "2", 0}});
  ASSERT_FALSE(txn);
  EXPECT_EQ(txn.error().code, ErrorCode::kInvalidArgument);
  auto overlap = dcs_.Txn({}, {PutOp{"/x/a", "1", 0}, DeleteOp{"/x/", true}});
  ASSERT_FALSE(overlap);
  EXPECT_EQ(dcs_.CurrentRevision(), before);
}

TEST_F(MemoryDcsTest, TxnWithAnUnknownLeaseChangesNothing) {
  const Revision before = dcs_.CurrentRevision();
  auto txn = dcs_.Txn({}, {PutOp{"a", "1", 0}, PutOp{"b", "2", 99}});
  ASSERT_FALSE(txn);
  EXPECT_EQ(txn.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(dcs_.CurrentRevision(), before);
  EXPECT_TRUE(dcs_.Get("a")->kvs.empty());
}

TEST_F(MemoryDcsTest, WatchSeesExpiryOnNextWithoutAnyOtherCall) {
  auto lease = dcs_.GrantLease(seconds(3));
  ASSERT_TRUE(dcs_.Put("/s/leader", "n1", lease->id));
  auto watch = dcs_.WatchPrefix("/s/");
  clock_.Advance(seconds(3));
  auto batch = watch->Next(Duration::zero());
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(batch->events[0].kv.key, "/s/leader");
  EXPECT_EQ(batch->revision, dcs_.CurrentRevision());
}

TEST_F(MemoryDcsTest, WatchBelowTheCompactionPointIsCompactedOnceThenResumes) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(dcs_.Put("/k", std::to_string(i)));  // revs 2..6
  ASSERT_TRUE(dcs_.Compact(4));
  auto ok = dcs_.WatchPrefix("/", 4);
  auto batch = ok->Next(Duration::zero());
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->events.size(), 3u);  // revisions 4, 5, 6

  auto old = dcs_.WatchPrefix("/", 3);
  auto first = old->Next(Duration::zero());
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, ErrorCode::kCompacted);
  // Then it goes on from the compaction point: nothing after it is missed.
  auto second = old->Next(Duration::zero());
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_EQ(second->events.size(), 3u);
  EXPECT_EQ(second->events[0].kv.mod_revision, 4);
  ASSERT_TRUE(dcs_.Put("/k", "later"));
  auto third = old->Next(Duration::zero());
  ASSERT_TRUE(third);
  ASSERT_EQ(third->events.size(), 1u);
  EXPECT_EQ(third->events[0].kv.value, "later");

  EXPECT_EQ(dcs_.Compact(4).error().code, ErrorCode::kCompacted);
  EXPECT_EQ(dcs_.Compact(100).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(MemoryDcsTest, BoundedHistoryCountsAsCompacted) {
  MemoryDcs dcs(clock_, MemoryDcsOptions{.history_limit = 3});
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(dcs.Put("/k", std::to_string(i)));  // revs 2..7
  EXPECT_EQ(dcs.WatchPrefix("/", 2)->Next(Duration::zero()).error().code, ErrorCode::kCompacted);
  auto recent = dcs.WatchPrefix("/", 5)->Next(Duration::zero());
  ASSERT_TRUE(recent);
  EXPECT_EQ(recent->events.size(), 3u);

  auto slow = dcs.WatchPrefix("/");
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(dcs.Put("/k", "more"));
  EXPECT_EQ(slow->Next(Duration::zero()).error().code, ErrorCode::kCompacted)
      << "a watcher that fell more than history_limit events behind";
  auto resumed = slow->Next(Duration::zero());
  ASSERT_TRUE(resumed);
  ASSERT_EQ(resumed->events.size(), 3u);  // what the history still holds: revisions 9..11
  EXPECT_EQ(resumed->events.back().kv.mod_revision, dcs.CurrentRevision());
}

TEST_F(MemoryDcsTest, FakeClockWatchNeverBlocks) {
  auto watch = dcs_.WatchPrefix("/");
  const auto start = SteadyClock::now();
  auto batch = watch->Next(seconds(5));
  ASSERT_TRUE(batch);
  EXPECT_TRUE(batch->events.empty());
  EXPECT_LT(SteadyClock::now() - start, seconds(1));
}

TEST_F(MemoryDcsTest, WatchOutlivingTheStoreReportsCancelled) {
  std::unique_ptr<Watch> watch;
  {
    MemoryDcs dcs(clock_);
    watch = dcs.WatchPrefix("/");
  }
  EXPECT_EQ(watch->Next(Duration::zero()).error().code, ErrorCode::kCancelled);
}

TEST(MemoryDcsRealClockTest, NextBlocksUntilAnEventArrives) {
  MemoryDcs dcs(RealClock::Instance());
  auto watch = dcs.WatchPrefix("/");
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    ASSERT_TRUE(dcs.Put("/a", "1"));
  });
  const auto start = SteadyClock::now();
  auto batch = watch->Next(seconds(5));
  const auto waited = SteadyClock::now() - start;
  writer.join();
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_GE(waited, milliseconds(80));
  EXPECT_LT(waited, seconds(4));

  const auto t0 = SteadyClock::now();
  auto empty = watch->Next(milliseconds(150));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->events.empty());
  EXPECT_GE(SteadyClock::now() - t0, milliseconds(140));
}

TEST(MemoryDcsRealClockTest, CancelFromAnotherThreadWakesNext) {
  MemoryDcs dcs(RealClock::Instance());
  auto watch = dcs.WatchPrefix("/");
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(100));
    watch->Cancel();
  });
  const auto start = SteadyClock::now();
  auto batch = watch->Next(seconds(10));
  canceller.join();
  ASSERT_FALSE(batch);
  EXPECT_EQ(batch.error().code, ErrorCode::kCancelled);
  EXPECT_LT(SteadyClock::now() - start, seconds(5));
}

TEST(MemoryDcsRealClockTest, ConcurrentWritersGetDistinctRevisionsAndWatcherSeesAll) {
  MemoryDcs dcs(RealClock::Instance());
  auto watch = dcs.WatchPrefix("/c/");
  constexpr int kThreads = 4;
  constexpr int kPuts = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&dcs, t] {
      for (int i = 0; i < kPuts; ++i) {
        ASSERT_TRUE(dcs.Put("/c/" + std::to_string(t), std::to_string(i)));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(dcs.CurrentRevision(), 1 + kThreads * kPuts);
  std::vector<WatchEvent> events;
  for (int i = 0; i < 20 && events.size() < kThreads * kPuts; ++i) {
    auto batch = watch->Next(milliseconds(100));
    ASSERT_TRUE(batch);
    events.insert(events.end(), batch->events.begin(), batch->events.end());
  }
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kThreads * kPuts));
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kv.mod_revision, static_cast<Revision>(i + 2));
  }
}

}  // namespace
}  // namespace pgwarden::dcs
