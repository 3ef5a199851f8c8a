// The Dcs contract cases (see dcs_contract.h). Every expectation here holds for etcd 3.4.
#include "dcs_contract.h"

#include <algorithm>
#include <set>
#include <thread>

namespace pgwarden::dcs::contract {
namespace {

using std::chrono::seconds;

// Reads events from `watch` until `count` have arrived or ~10 s of polling have passed.
std::vector<WatchEvent> Collect(Watch& watch, std::size_t count) {
  std::vector<WatchEvent> events;
  for (int i = 0; i < 50 && events.size() < count; ++i) {
    auto batch = watch.Next(milliseconds(200));
    if (!batch) {
      ADD_FAILURE() << "watch failed: " << batch.error().ToString();
      break;
    }
    for (auto& ev : batch->events) events.push_back(std::move(ev));
  }
  return events;
}

// Reads for a short while and returns whatever extra events arrive (expected: none).
std::vector<WatchEvent> Drain(Watch& watch) {
  std::vector<WatchEvent> events;
  for (int i = 0; i < 3; ++i) {
    auto batch = watch.Next(milliseconds(100));
    if (!batch) break;
    for (auto& ev : batch->events) events.push_back(std::move(ev));
  }
  return events;
}

std::vector<std::string> Keys(const RangeResult& r) {
  std::vector<std::string> keys;
  for (const auto& kv : r.kvs) keys.push_back(kv.key);
  return keys;
}

TEST_P(DcsContractTest, PutThenGetReturnsValueAndRevisions) {
  auto rev = dcs().Put(Key("a"), "one");
  ASSERT_TRUE(rev) << rev.error().ToString();
  auto got = dcs().Get(Key("a"));
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_EQ(got->kvs.size(), 1u);
  const KeyValue& kv = got->kvs[0];
  EXPECT_EQ(kv.key, Key("a"));
  EXPECT_EQ(kv.value, "one");
  EXPECT_EQ(kv.create_revision, *rev);
  EXPECT_EQ(kv.mod_revision, *rev);
  EXPECT_EQ(kv.version, 1);
  EXPECT_EQ(kv.lease, 0);
  EXPECT_EQ(got->revision, *rev);
}

TEST_P(DcsContractTest, EveryPutTakesOneRevisionAndBumpsVersion) {
  auto r1 = dcs().Put(Key("a"), "1");
  auto r2 = dcs().Put(Key("a"), "2");
  auto r3 = dcs().Put(Key("b"), "x");
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(*r2, *r1 + 1);
  EXPECT_EQ(*r3, *r2 + 1);
  auto got = dcs().Get(Key("a"));
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "2");
  EXPECT_EQ(got->kvs[0].create_revision, *r1);
  EXPECT_EQ(got->kvs[0].mod_revision, *r2);
  EXPECT_EQ(got->kvs[0].version, 2);
  EXPECT_EQ(got->revision, *r3);
}

TEST_P(DcsContractTest, MissingKeyReadsEmptyAtCurrentRevision) {
  auto rev = dcs().Put(Key("present"), "x");
  ASSERT_TRUE(rev);
  auto got = dcs().Get(Key("absent"));
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_TRUE(got->kvs.empty());
  EXPECT_EQ(got->revision, *rev);
}

TEST_P(DcsContractTest, BinaryKeysAndValuesRoundTrip) {
  const std::string value("\0\xff\x01 \"{}\n\\", 9);
  const std::string key = Key(std::string("bin\x01\xfe", 5));
  ASSERT_TRUE(dcs().Put(key, value));
  ASSERT_TRUE(dcs().Put(Key("empty"), ""));
  auto got = dcs().Get(key);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].key, key);
  EXPECT_EQ(got->kvs[0].value, value);
  auto empty = dcs().Get(Key("empty"));
  ASSERT_TRUE(empty);
  ASSERT_EQ(empty->kvs.size(), 1u);
  EXPECT_EQ(empty->kvs[0].value, "");
  EXPECT_EQ(empty->kvs[0].version, 1);
}

TEST_P(DcsContractTest, PrefixGetIsSortedAndStaysInsideThePrefix) {
  for (const char* k : {"dir/b", "dir/a", "dir/c/d", "dir", "dirx", "di"}) {
    ASSERT_TRUE(dcs().Put(Key(k), k));
  }
  auto got = dcs().Get(Key("dir/"), true);
  ASSERT_TRUE(got);
  EXPECT_EQ(Keys(*got), (std::vector<std::string>{Key("dir/a"), Key("dir/b"), Key("dir/c/d")}));
  auto all = dcs().Get(Key("dir"), true);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->kvs.size(), 5u);  // dir, dir/a, dir/b, dir/c/d, dirx
}

TEST_P(DcsContractTest, DeleteCountsKeysAndOnlyRealDeletesTakeARevision) {
  ASSERT_TRUE(dcs().Put(Key("d/1"), "x"));
  ASSERT_TRUE(dcs().Put(Key("d/2"), "x"));
  auto r = dcs().Put(Key("keep"), "x");
  ASSERT_TRUE(r);

  auto none = dcs().Delete(Key("nothing-here"));
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_EQ(*none, 0);
  auto after_noop = dcs().Get(Key("keep"));
  ASSERT_TRUE(after_noop);
  EXPECT_EQ(after_noop->revision, *r) << "a delete of nothing must not move the revision";

  auto one = dcs().Delete(Key("d/1"));
  ASSERT_TRUE(one);
  EXPECT_EQ(*one, 1);
  ASSERT_TRUE(dcs().Put(Key("d/3"), "x"));
  auto many = dcs().Delete(Key("d/"), true);
  ASSERT_TRUE(many);
  EXPECT_EQ(*many, 2);
  auto left = dcs().Get(Key(""), true);
  ASSERT_TRUE(left);
  EXPECT_EQ(Keys(*left), std::vector<std::string>{Key("keep")});
  EXPECT_EQ(left->revision, *r + 3);  // delete d/1, put d/3, delete d/ prefix
}

TEST_P(DcsContractTest, RecreatedKeyStartsAgainAtVersionOne) {
  ASSERT_TRUE(dcs().Put(Key("k"), "1"));
  ASSERT_TRUE(dcs().Put(Key("k"), "2"));
  ASSERT_TRUE(dcs().Delete(Key("k")));
  auto rev = dcs().Put(Key("k"), "3");
  ASSERT_TRUE(rev);
  auto got = dcs().Get(Key("k"));
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].version, 1);
  EXPECT_EQ(got->kvs[0].create_revision, *rev);
}

struct CompareCase {
  Compare::Target target;
  Compare::Op op;
  int64_t delta;  // compared number = actual + delta (for numbers)
  std::string value;
  bool expect;
};

TEST_P(DcsContractTest, EveryCompareKindOnAnExistingKey) {
  auto r1 = dcs().Put(Key("c"), "m");
  auto r2 = dcs().Put(Key("c"), "m");  // version 2, create r1, mod r2
  ASSERT_TRUE(r1 && r2);
  using T = Compare::Target;
  using O = Compare::Op;
  const std::vector<CompareCase> cases = {
      {T::kValue, O::kEqual, 0, "m", true},
      {T::kValue, O::kEqual, 0, "n", false},
      {T::kValue, O::kNotEqual, 0, "n", true},
      {T::kValue, O::kNotEqual, 0, "m", false},
      {T::kValue, O::kLess, 0, "n", true},
      {T::kValue, O::kLess, 0, "l", false},
      {T::kValue, O::kGreater, 0, "l", true},
      {T::kValue, O::kGreater, 0, "m", false},
      {T::kVersion, O::kEqual, 0, "", true},
      {T::kVersion, O::kEqual, 1, "", false},
      {T::kVersion, O::kNotEqual, 1, "", true},
      {T::kVersion, O::kLess, 1, "", true},
      {T::kVersion, O::kLess, 0, "", false},
      {T::kVersion, O::kGreater, -1, "", true},
      {T::kVersion, O::kGreater, 0, "", false},
      {T::kCreateRevision, O::kEqual, 0, "", true},
      {T::kCreateRevision, O::kLess, 1, "", true},
      {T::kCreateRevision, O::kGreater, 0, "", false},
      {T::kCreateRevision, O::kNotEqual, 0, "", false},
      {T::kModRevision, O::kEqual, 0, "", true},
      {T::kModRevision, O::kGreater, -1, "", true},
      {T::kModRevision, O::kLess, 0, "", false},
      {T::kModRevision, O::kNotEqual, 5, "", true},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const CompareCase& tc = cases[i];
    Compare c;
    c.key = Key("c");
    c.target = tc.target;
    c.op = tc.op;
    c.value = tc.value;
    int64_t actual = tc.target == T::kVersion ? 2 : tc.target == T::kCreateRevision ? *r1 : *r2;
    c.number = actual + tc.delta;
    auto txn = dcs().Txn({c}, {}, {});
    ASSERT_TRUE(txn) << "case " << i << ": " << txn.error().ToString();
    EXPECT_EQ(txn->succeeded, tc.expect) << "case " << i;
  }
}

TEST_P(DcsContractTest, ComparesOnAMissingKey) {
  using T = Compare::Target;
  using O = Compare::Op;
  const std::vector<CompareCase> cases = {
      // A value compare on a missing key fails whatever the operator (etcd).
      {T::kValue, O::kEqual, 0, "", false},
      {T::kValue, O::kNotEqual, 0, "x", false},
      {T::kValue, O::kLess, 0, "zzz", false},
      // The numbers of a missing key are 0.
      {T::kCreateRevision, O::kEqual, 0, "", true},
      {T::kModRevision, O::kEqual, 0, "", true},
      {T::kVersion, O::kEqual, 0, "", true},
      {T::kVersion, O::kLess, 1, "", true},
      {T::kVersion, O::kGreater, 0, "", false},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const CompareCase& tc = cases[i];
    Compare c;
    c.key = Key("missing");
    c.target = tc.target;
    c.op = tc.op;
    c.value = tc.value;
    c.number = tc.delta;
    auto txn = dcs().Txn({c}, {}, {});
    ASSERT_TRUE(txn) << "case " << i << ": " << txn.error().ToString();
    EXPECT_EQ(txn->succeeded, tc.expect) << "case " << i;
  }
  auto absent = dcs().Txn({Compare::Absent(Key("missing"))}, {}, {});
  ASSERT_TRUE(absent);
  EXPECT_TRUE(absent->succeeded);
}

TEST_P(DcsContractTest, TxnSuccessBranchIsOneRevisionAndItsGetsSeeItsWrites) {
  ASSERT_TRUE(dcs().Put(Key("leader"), "n1"));
  ASSERT_TRUE(dcs().Put(Key("gone"), "x"));
  auto txn =
      dcs().Txn({Compare::ValueEquals(Key("leader"), "n1")},
                {PutOp{Key("leader"), "n2", 0}, PutOp{Key("other"), "o", 0},
                 DeleteOp{Key("gone"), false}, GetOp{Key("leader"), false}, GetOp{Key(""), true}},
                {PutOp{Key("failed"), "yes", 0}});
  ASSERT_TRUE(txn) << txn.error().ToString();
  EXPECT_TRUE(txn->succeeded);
  ASSERT_EQ(txn->ranges.size(), 2u);
  ASSERT_EQ(txn->ranges[0].kvs.size(), 1u);
  EXPECT_EQ(txn->ranges[0].kvs[0].value, "n2");
  EXPECT_EQ(txn->ranges[0].kvs[0].mod_revision, txn->revision);
  EXPECT_EQ(Keys(txn->ranges[1]), (std::vector<std::string>{Key("leader"), Key("other")}));
  auto got = dcs().Get(Key(""), true);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 2u);
  for (const auto& kv : got->kvs) EXPECT_EQ(kv.mod_revision, txn->revision) << kv.key;
  EXPECT_EQ(got->revision, txn->revision);
}

TEST_P(DcsContractTest, TxnFailureBranchRunsWhenACompareFails) {
  auto r = dcs().Put(Key("leader"), "n1");
  ASSERT_TRUE(r);
  auto txn = dcs().Txn(
      {Compare::ModRevisionEquals(Key("leader"), *r), Compare::ValueEquals(Key("leader"), "n2")},
      {PutOp{Key("leader"), "n2", 0}}, {GetOp{Key("leader"), false}, GetOp{Key("nope"), false}});
  ASSERT_TRUE(txn) << txn.error().ToString();
  EXPECT_FALSE(txn->succeeded);
  EXPECT_EQ(txn->revision, *r) << "a read-only branch does not move the revision";
  ASSERT_EQ(txn->ranges.size(), 2u);
  ASSERT_EQ(txn->ranges[0].kvs.size(), 1u);
  EXPECT_EQ(txn->ranges[0].kvs[0].value, "n1");
  EXPECT_TRUE(txn->ranges[1].kvs.empty());

  // Create-if-absent, the leader-lock idiom.
  auto create = dcs().Txn({Compare::Absent(Key("leader"))}, {PutOp{Key("leader"), "n3", 0}},
                          {GetOp{Key("leader"), false}});
  ASSERT_TRUE(create);
  EXPECT_FALSE(create->succeeded);
  ASSERT_EQ(create->ranges.size(), 1u);
  ASSERT_EQ(create->ranges[0].kvs.size(), 1u);
  EXPECT_EQ(create->ranges[0].kvs[0].value, "n1");
}

TEST_P(DcsContractTest, TxnWithNoComparesRunsSuccess) {
  auto txn = dcs().Txn({}, {PutOp{Key("a"), "1", 0}}, {});
  ASSERT_TRUE(txn) << txn.error().ToString();
  EXPECT_TRUE(txn->succeeded);
  auto got = dcs().Get(Key("a"));
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].mod_revision, txn->revision);
}

TEST_P(DcsContractTest, UnknownLeaseIsNotFound) {
  const LeaseId bogus = 0x1234'5678'9abc;
  auto put = dcs().Put(Key("a"), "x", bogus);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kNotFound) << put.error().ToString();
  auto txn = dcs().Txn({}, {PutOp{Key("a"), "x", bogus}}, {});
  ASSERT_FALSE(txn);
  EXPECT_EQ(txn.error().code, ErrorCode::kNotFound) << txn.error().ToString();
  auto ka = dcs().KeepAlive(bogus);
  ASSERT_FALSE(ka);
  EXPECT_EQ(ka.error().code, ErrorCode::kNotFound) << ka.error().ToString();
  auto revoke = dcs().RevokeLease(bogus);
  ASSERT_FALSE(revoke);
  EXPECT_EQ(revoke.error().code, ErrorCode::kNotFound) << revoke.error().ToString();
  auto ttl = dcs().LeaseTimeToLive(bogus);
  ASSERT_TRUE(ttl) << ttl.error().ToString();
  EXPECT_EQ(ttl->ttl, seconds(-1));
  auto got = dcs().Get(Key("a"));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->kvs.empty());
}

TEST_P(DcsContractTest, LeaseGrantKeepAliveTimeToLiveRevoke) {
  auto grant = dcs().GrantLease(seconds(30));
  ASSERT_TRUE(grant) << grant.error().ToString();
  EXPECT_NE(grant->id, 0);
  EXPECT_EQ(grant->ttl, seconds(30));
  ASSERT_TRUE(dcs().Put(Key("owned"), "x", grant->id));
  auto got = dcs().Get(Key("owned"));
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].lease, grant->id);

  harness_->Pass(seconds(2));
  auto ttl = dcs().LeaseTimeToLive(grant->id);
  ASSERT_TRUE(ttl) << ttl.error().ToString();
  EXPECT_EQ(ttl->granted_ttl, seconds(30));
  EXPECT_GE(ttl->ttl, seconds(26));
  EXPECT_LE(ttl->ttl, seconds(28));

  auto ka = dcs().KeepAlive(grant->id);
  ASSERT_TRUE(ka) << ka.error().ToString();
  EXPECT_EQ(*ka, seconds(30));
  auto ttl2 = dcs().LeaseTimeToLive(grant->id);
  ASSERT_TRUE(ttl2);
  EXPECT_GE(ttl2->ttl, seconds(29));

  auto before = dcs().Get(Key("owned"));
  ASSERT_TRUE(before);
  ASSERT_TRUE(dcs().RevokeLease(grant->id));
  auto after = dcs().Get(Key("owned"));
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->kvs.empty());
  EXPECT_EQ(after->revision, before->revision + 1) << "the revoke deletes at one revision";
  auto gone = dcs().KeepAlive(grant->id);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
}

TEST_P(DcsContractTest, PutWithoutLeaseDetachesTheKey) {
  auto grant = dcs().GrantLease(seconds(30));
  ASSERT_TRUE(grant);
  ASSERT_TRUE(dcs().Put(Key("k"), "leased", grant->id));
  ASSERT_TRUE(dcs().Put(Key("k"), "free"));
  ASSERT_TRUE(dcs().RevokeLease(grant->id));
  auto got = dcs().Get(Key("k"));
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "free");
  EXPECT_EQ(got->kvs[0].lease, 0);
}

TEST_P(DcsContractTest, LeaseExpiryDeletesKeysAndWatchSeesTheDeletes) {
  auto grant = dcs().GrantLease(seconds(2));
  ASSERT_TRUE(grant) << grant.error().ToString();
  ASSERT_GE(grant->ttl, seconds(2));
  auto kept = dcs().GrantLease(seconds(60));
  ASSERT_TRUE(kept);
  auto r1 = dcs().Put(Key("e/1"), "x", grant->id);
  auto r2 = dcs().Put(Key("e/2"), "y", grant->id);
  auto r3 = dcs().Put(Key("e/3"), "z", kept->id);
  ASSERT_TRUE(r1 && r2 && r3);
  auto watch = dcs().WatchPrefix(Key("e/"), *r3 + 1);

  harness_->Pass(grant->ttl + milliseconds(200));
  bool gone = false;
  const auto deadline = SteadyClock::now() + harness_->expiry_slack();
  for (int i = 0; i < 200; ++i) {
    auto got = dcs().Get(Key("e/"), true);
    ASSERT_TRUE(got);
    if (Keys(*got) == std::vector<std::string>{Key("e/3")}) {
      gone = true;
      break;
    }
    if (SteadyClock::now() >= deadline) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(gone) << "the keys of an expired lease must be deleted";
  auto ka = dcs().KeepAlive(grant->id);
  ASSERT_FALSE(ka);
  EXPECT_EQ(ka.error().code, ErrorCode::kNotFound);

  auto events = Collect(*watch, 2);
  ASSERT_EQ(events.size(), 2u);
  std::set<std::string> deleted;
  for (const auto& ev : events) {
    EXPECT_EQ(ev.type, WatchEvent::Type::kDelete);
    EXPECT_EQ(ev.kv.mod_revision, events[0].kv.mod_revision) << "one revision for the expiry";
    deleted.insert(ev.kv.key);
  }
  EXPECT_EQ(deleted, (std::set<std::string>{Key("e/1"), Key("e/2")}));
  EXPECT_TRUE(Drain(*watch).empty());
  ASSERT_TRUE(dcs().RevokeLease(kept->id));
}

TEST_P(DcsContractTest, WatchDeliversEventsInOrderOnlyUnderItsPrefix) {
  auto watch = dcs().WatchPrefix(Key("w/"));
  ASSERT_NE(watch, nullptr);
  auto first = watch->Next(milliseconds(100));  // nothing yet
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_TRUE(first->events.empty());

  auto r1 = dcs().Put(Key("w/a"), "1");
  ASSERT_TRUE(dcs().Put(Key("other"), "ignored"));
  auto r2 = dcs().Put(Key("w/a"), "2");
  ASSERT_TRUE(dcs().Delete(Key("w/a")));
  auto txn = dcs().Txn({}, {PutOp{Key("w/b"), "b", 0}, PutOp{Key("w/c"), "c", 0}}, {});
  ASSERT_TRUE(r1 && r2 && txn);

  auto events = Collect(*watch, 5);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(events[0].kv.key, Key("w/a"));
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_EQ(events[0].kv.mod_revision, *r1);
  EXPECT_EQ(events[0].kv.create_revision, *r1);
  EXPECT_EQ(events[0].kv.version, 1);
  EXPECT_EQ(events[1].kv.value, "2");
  EXPECT_EQ(events[1].kv.mod_revision, *r2);
  EXPECT_EQ(events[1].kv.version, 2);
  EXPECT_EQ(events[2].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[2].kv.key, Key("w/a"));
  EXPECT_EQ(events[2].kv.mod_revision, *r2 + 1);
  EXPECT_EQ(events[3].kv.key, Key("w/b"));
  EXPECT_EQ(events[4].kv.key, Key("w/c"));
  EXPECT_EQ(events[3].kv.mod_revision, txn->revision);
  EXPECT_EQ(events[4].kv.mod_revision, txn->revision);
  EXPECT_TRUE(Drain(*watch).empty());
}

TEST_P(DcsContractTest, WatchFromAPastRevisionReplaysHistory) {
  auto r1 = dcs().Put(Key("h/a"), "1");
  auto r2 = dcs().Put(Key("h/b"), "2");
  auto r3 = dcs().Put(Key("h/a"), "3");
  ASSERT_TRUE(r1 && r2 && r3);
  auto watch = dcs().WatchPrefix(Key("h/"), *r2);
  auto events = Collect(*watch, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kv.key, Key("h/b"));
  EXPECT_EQ(events[0].kv.mod_revision, *r2);
  EXPECT_EQ(events[1].kv.key, Key("h/a"));
  EXPECT_EQ(events[1].kv.value, "3");
  EXPECT_EQ(events[1].kv.mod_revision, *r3);
  auto r4 = dcs().Put(Key("h/c"), "4");
  ASSERT_TRUE(r4);
  auto more = Collect(*watch, 1);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].kv.mod_revision, *r4);
}

TEST_P(DcsContractTest, CancelledWatchReportsCancelled) {
  auto watch = dcs().WatchPrefix(Key("c/"));
  watch->Cancel();
  auto next = watch->Next(milliseconds(100));
  ASSERT_FALSE(next);
  EXPECT_EQ(next.error().code, ErrorCode::kCancelled);
}

}  // namespace
}  // namespace pgwarden::dcs::contract
