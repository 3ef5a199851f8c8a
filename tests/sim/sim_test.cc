// The deterministic simulation, run over many seeds. A failing seed prints how to replay it.
//
//   PGWARDEN_SIM_SEEDS=20000 ./sim_test      more seeds (default: see kDefaultSeeds)
//   PGWARDEN_SIM_SEED=1234 ./sim_test --gtest_filter='SimTest.RandomFaults*'   one seed
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "sim/simulation.h"

namespace pgwarden::sim {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strtoull(v, nullptr, 10);
}

// Runs seeds [first, first + count) (or only PGWARDEN_SIM_SEED) and reports the first failure.
struct Totals {
  std::vector<Duration> sync_after_promotion;
  int64_t acked = 0;
  int64_t lost = 0;
  std::map<std::string, int> counts;
};

void RunSeeds(const std::string& test, SimOptions base, uint64_t first, uint64_t count,
              std::vector<Duration>* failovers = nullptr, Totals* totals_out = nullptr) {
  std::map<std::string, int> totals;
  const uint64_t only = EnvOr("PGWARDEN_SIM_SEED", 0);
  if (only != 0) {
    first = only;
    count = 1;
  }
  for (uint64_t seed = first; seed < first + count; ++seed) {
    base.seed = seed;
    SimResult r = RunSimulation(base);
    if (!r.ok) {
      ADD_FAILURE() << "seed " << seed << ": " << r.violation
                    << "\nreplay: PGWARDEN_SIM_SEED=" << seed
                    << " ./sim_test --gtest_filter='SimTest." << test << "'\nlast events:\n"
                    << r.trace;
      return;
    }
    if (only != 0) std::cout << "seed " << seed << " ok:\n" << r.trace;
    if (failovers) {
      failovers->insert(failovers->end(), r.failover_times.begin(), r.failover_times.end());
    }
    for (const auto& [what, n] : r.counts) totals[what] += n;
    if (totals_out) {
      totals_out->sync_after_promotion.insert(totals_out->sync_after_promotion.end(),
                                              r.sync_after_promotion.begin(),
                                              r.sync_after_promotion.end());
      totals_out->acked += r.acked_commits;
      totals_out->lost += r.lost_acked_commits;
      for (const auto& [what, n] : r.counts) totals_out->counts[what] += n;
    }
  }
  std::cout << test << ": " << count << " seeds;";
  for (const auto& [what, n] : totals) std::cout << " " << what << "=" << n << ";";
  std::cout << "\n";
}

// Sanitizer builds run the same code several times slower: fewer seeds keep the suite fast.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr uint64_t kDefaultSeeds = 200;
#else
constexpr uint64_t kDefaultSeeds = 1000;
#endif

TEST(SimTest, RandomFaultsThreeMembers) {
  SimOptions o;
  o.members = 3;
  std::vector<Duration> failovers;
  RunSeeds("RandomFaultsThreeMembers", o, 1, EnvOr("PGWARDEN_SIM_SEEDS", kDefaultSeeds),
           &failovers);
  if (!failovers.empty()) {
    std::sort(failovers.begin(), failovers.end());
    auto ms = [](Duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); };
    std::cout << "failover after a primary crash (ttl 3 s, loop_wait 0.5 s): n=" << failovers.size()
              << " median=" << ms(failovers[failovers.size() / 2])
              << " ms p90=" << ms(failovers[failovers.size() * 9 / 10])
              << " ms max=" << ms(failovers.back()) << " ms\n";
  }
}

// The failover time after a primary's host crashes, with a 2 s lease: the election is event
// driven (watch), one probe round and one CAS, so the median stays within 3 s.
TEST(SimTest, FailoverAfterAHostCrashWithTwoSecondTtl) {
  SimOptions o;
  o.members = 3;
  o.ttl = seconds(2);
  std::vector<Duration> failovers;
  RunSeeds("FailoverAfterAHostCrashWithTwoSecondTtl", o, 500000,
           std::max<uint64_t>(1, EnvOr("PGWARDEN_SIM_SEEDS", kDefaultSeeds) / 5), &failovers);
  ASSERT_FALSE(failovers.empty());
  std::sort(failovers.begin(), failovers.end());
  const Duration median = failovers[failovers.size() / 2];
  std::cout
      << "failover after a primary crash (ttl 2 s): n=" << failovers.size()
      << " median=" << std::chrono::duration_cast<milliseconds>(median).count() << " ms p90="
      << std::chrono::duration_cast<milliseconds>(failovers[failovers.size() * 9 / 10]).count()
      << " ms\n";
  EXPECT_LE(median, seconds(3));
}

TEST(SimTest, RandomFaultsFiveMembers) {
  SimOptions o;
  o.members = 5;
  RunSeeds("RandomFaultsFiveMembers", o, 100000,
           std::max<uint64_t>(1, EnvOr("PGWARDEN_SIM_SEEDS", kDefaultSeeds) / 4));
}

// Maintenance mode: with faults (crashes of the primary, freezes, etcd cut-offs) and no
// operator requests, a paused cluster never promotes, starts, rewinds or re-clones anything by
// itself; once resumed it elects a primary and converges.
TEST(SimTest, PausedClusterNeverPromotesAutomatically) {
  SimOptions o;
  o.members = 3;
  o.paused = true;
  o.switchovers = false;  // a manual failover would promote, legitimately
  o.fault_phase = seconds(30);
  const uint64_t count = std::max<uint64_t>(1, EnvOr("PGWARDEN_SIM_SEEDS", kDefaultSeeds) / 4);
  std::map<std::string, int> totals;
  for (uint64_t seed = 700000; seed < 700000 + count; ++seed) {
    o.seed = seed;
    SimResult r = RunSimulation(o);
    ASSERT_TRUE(r.ok) << "seed " << seed << ": " << r.violation << "\nlast events:\n" << r.trace;
    for (const auto& [what, n] : r.counts) totals[what] += n;
  }
  std::cout << "PausedClusterNeverPromotesAutomatically: " << count << " seeds;";
  for (const auto& [what, n] : totals) std::cout << " " << what << "=" << n << ";";
  std::cout << "\n";
  // Evidence that the seeds exercise it: clusters left without a leader while paused (which
  // unpaused would have failed over), every one of them elected after the resume.
  EXPECT_GT(totals["resumed without a leader"], 0);
  EXPECT_GT(totals["paused with the leader key expired"], 0);
}

TEST(SimTest, QuietClusterBootstrapsAndConverges) {
  SimOptions o;
  o.fault_phase = seconds(0);
  o.settle_bound = seconds(15);
  RunSeeds("QuietClusterBootstrapsAndConverges", o, 1, 50);
}

// A checker that cannot fail proves nothing: with the fence disabled (the shell ignores
// immediate stops), a primary cut off from etcd, or frozen, keeps accepting writes after its
// lease expired, and some seed must show it.
TEST(SimTest, CheckerCatchesAPrimaryThatDoesNotFenceItself) {
  SimOptions o;
  o.break_fence = true;
  o.switchovers = false;
  o.fault_rate_per_second = 0.3;
  uint64_t caught_at = 0;
  for (uint64_t seed = 1; seed <= 300 && caught_at == 0; ++seed) {
    o.seed = seed;
    SimResult r = RunSimulation(o);
    if (!r.ok && r.violation.find("accept") != std::string::npos) caught_at = seed;
  }
  EXPECT_GT(caught_at, 0u) << "the invariant checker never saw the broken fence";
  std::cout << "broken fence caught by seed " << caught_at << "\n";
}

// --- Synchronous replication (docs/sync-replication.md) -----------------------------------------

void PrintSyncFigures(const std::string& test, Totals& t) {
  auto ms = [](Duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); };
  std::cout << test << ": acknowledged commits=" << t.acked << " lost=" << t.lost;
  auto& v = t.sync_after_promotion;
  if (!v.empty()) {
    std::sort(v.begin(), v.end());
    std::cout << "; promotion -> standby in sync: n=" << v.size()
              << " median=" << ms(v[v.size() / 2]) << " ms p90=" << ms(v[v.size() * 9 / 10])
              << " ms max=" << ms(v.back()) << " ms";
  }
  std::cout << "\n";
}

// Runs one synchronous-mode test's seeds (the default count divided by `divisor`), prints its
// figures and checks that commits were acknowledged at all; the loss check is in the invariant.
Totals RunSyncSeeds(const std::string& test, const SimOptions& o, uint64_t first,
                    uint64_t divisor) {
  Totals t;
  RunSeeds(test, o, first,
           std::max<uint64_t>(1, EnvOr("PGWARDEN_SIM_SEEDS", kDefaultSeeds) / divisor), nullptr,
           &t);
  PrintSyncFigures(test, t);
  EXPECT_GT(t.acked, 0);
  return t;
}

// The invariant: no acknowledged commit is ever missing from the primary or from a member
// listed in `sync`, whatever crashes, freezes, partitions and switchovers happen.
TEST(SimTest, SyncModeLosesNoAcknowledgedCommit) {
  SimOptions o;
  o.synchronous_mode = true;
  Totals t = RunSyncSeeds("SyncModeLosesNoAcknowledgedCommit", o, 1, 1);
  EXPECT_EQ(t.lost, 0);
  ASSERT_FALSE(t.sync_after_promotion.empty());
  // The standby is picked at the next decisions after a promotion: within ~2 s typically.
  EXPECT_LE(t.sync_after_promotion[t.sync_after_promotion.size() / 2], seconds(2));
}

TEST(SimTest, SyncModeStrict) {
  SimOptions o;
  o.synchronous_mode = true;
  o.synchronous_mode_strict = true;
  RunSyncSeeds("SyncModeStrict", o, 200000, 4);
}

TEST(SimTest, SyncModeFiveMembersTwoSyncStandbys) {
  SimOptions o;
  o.members = 5;
  o.synchronous_mode = true;
  o.synchronous_node_count = 2;
  RunSyncSeeds("SyncModeFiveMembersTwoSyncStandbys", o, 300000, 8);
}

// maximum_lag_on_syncnode: replicas' streaming slows to a trickle at random; a lagging
// synchronous standby is dropped (through the shrink-first path) for one that keeps up, and
// no acknowledged commit is ever missing from the members listed in `sync`.
void RunLaggingSeeds(const std::string& test, SimOptions o, uint64_t first, uint64_t divisor) {
  o.synchronous_mode = true;
  o.maximum_lag_on_syncnode = 3000;
  o.lagging_replicas = true;
  Totals t = RunSyncSeeds(test, o, first, divisor);
  EXPECT_GT(t.counts["lagging standby left out"], 0) << "no seed exercised the rule";
}

TEST(SimTest, SyncModeLaggingStandbyIsSwappedAndLosesNothing) {
  RunLaggingSeeds("SyncModeLaggingStandbyIsSwappedAndLosesNothing", SimOptions{}, 800000, 4);
}

// Five members, 'ANY 2 (...)': a lagging standby leaves the quorum set.
TEST(SimTest, QuorumModeLaggingStandbyIsLeftOutAndLosesNothing) {
  SimOptions o;
  o.members = 5;
  o.synchronous_quorum = true;
  o.synchronous_node_count = 2;
  RunLaggingSeeds("QuorumModeLaggingStandbyIsLeftOutAndLosesNothing", o, 900000, 16);
}

// Quorum commit (`synchronous_mode: quorum`): 'ANY 1 (both replicas)', `sync` = {set,
// quorum}; a replica promotes only when quorum + 1 listed members vouch for it. The checker
// verifies no acknowledged commit is missing from the primary, and that each is on
// |set| - quorum listed members.
TEST(SimTest, QuorumModeLosesNoAcknowledgedCommit) {
  SimOptions o;
  o.synchronous_mode = true;
  o.synchronous_quorum = true;
  Totals t = RunSyncSeeds("QuorumModeLosesNoAcknowledgedCommit", o, 500000, 8);
  ASSERT_FALSE(t.sync_after_promotion.empty());
  EXPECT_LE(t.sync_after_promotion[t.sync_after_promotion.size() / 2], seconds(2));
}

TEST(SimTest, QuorumModeStrict) {
  SimOptions o;
  o.synchronous_mode = true;
  o.synchronous_quorum = true;
  o.synchronous_mode_strict = true;
  RunSyncSeeds("QuorumModeStrict", o, 600000, 16);
}

// Five members, 'ANY 2 (four standbys)' (one is nofailover): quorum 2 of 4.
TEST(SimTest, QuorumModeFiveMembersTwoOfFour) {
  SimOptions o;
  o.members = 5;
  o.synchronous_mode = true;
  o.synchronous_quorum = true;
  o.synchronous_node_count = 2;
  RunSyncSeeds("QuorumModeFiveMembersTwoOfFour", o, 700000, 16);
}

// A shell that writes a quorum one lower than asked (claims each commit is on one more listed
// member than it is) must be caught by the checker.
TEST(SimTest, CheckerCatchesQuorumTooLow) {
  SimOptions o;
  o.synchronous_mode = true;
  o.synchronous_quorum = true;
  o.break_quorum = true;
  o.fault_rate_per_second = 0.3;
  uint64_t caught_at = 0;
  std::string violation;
  for (uint64_t seed = 1; seed <= 300 && caught_at == 0; ++seed) {
    o.seed = seed;
    SimResult r = RunSimulation(o);
    if (!r.ok && r.violation.find("acknowledged commit") != std::string::npos) {
      caught_at = seed;
      violation = r.violation;
    }
  }
  EXPECT_GT(caught_at, 0u) << "the checker never saw the broken quorum";
  std::cout << "broken quorum caught by seed " << caught_at << ": " << violation << "\n";
}

// Asynchronous mode may lose acknowledged commits in a failover (bounded by
// maximum_lag_on_failover): the same checker counts them. Evidence that it sees losses.
TEST(SimTest, AsyncModeLossIsCounted) {
  SimOptions o;
  Totals t;
  RunSeeds("AsyncModeLossIsCounted", o, 400000,
           std::max<uint64_t>(1, EnvOr("PGWARDEN_SIM_SEEDS", kDefaultSeeds) / 4), nullptr, &t);
  PrintSyncFigures("AsyncModeLossIsCounted", t);
  EXPECT_GT(t.lost, 0) << "no failover ever lost an asynchronous commit: the checker is blind";
}

// A shell that records new standbys in `sync` as soon as it sets synchronous_standby_names
// (before they are synchronous and caught up) breaks the ordering: the checker must see it.
TEST(SimTest, CheckerCatchesSyncGrownTooEarly) {
  SimOptions o;
  o.synchronous_mode = true;
  o.break_sync_order = true;
  o.fault_rate_per_second = 0.3;
  uint64_t caught_at = 0;
  std::string violation;
  for (uint64_t seed = 1; seed <= 300 && caught_at == 0; ++seed) {
    o.seed = seed;
    SimResult r = RunSimulation(o);
    if (!r.ok && r.violation.find("acknowledged commit") != std::string::npos) {
      caught_at = seed;
      violation = r.violation;
    }
  }
  EXPECT_GT(caught_at, 0u) << "the checker never saw the broken sync ordering";
  std::cout << "broken sync ordering caught by seed " << caught_at << ": " << violation << "\n";
}

}  // namespace
}  // namespace pgwarden::sim
