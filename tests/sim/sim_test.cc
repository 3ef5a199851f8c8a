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
void RunSeeds(const std::string& test, SimOptions base, uint64_t first, uint64_t count,
              std::vector<Duration>* failovers = nullptr) {
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

}  // namespace
}  // namespace pgwarden::sim
