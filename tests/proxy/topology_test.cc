#include "proxy/topology.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace pgwarden::proxy {
namespace {

Backend B(const std::string& name, uint16_t port, uint64_t lag = 0, bool nolb = false) {
  return Backend{MemberName(name), Endpoint{"10.0.0.1", port}, lag, nolb};
}

Topology ThreeNodes() {
  Topology t;
  t.generation = 7;
  t.primary = B("p", 5432);
  t.sync_replicas = {B("s1", 5433, 10)};
  t.async_replicas = {B("a1", 5434, 100), B("a2", 5435, 5000)};
  return t;
}

std::vector<std::string> Names(const std::vector<RouteTarget>& targets) {
  std::vector<std::string> out;
  for (const RouteTarget& t : targets) out.push_back(t.backend.name.str());
  return out;
}

struct RankCase {
  std::string what;
  Role role;
  RoutePolicies policies;
  bool primary_usable;
  ConnectionCounts counts;
  std::set<std::string> unreachable;
  uint64_t rotation;
  std::vector<std::string> expected;
};

TEST(RankCandidates, Table) {
  RoutePolicies none;
  RoutePolicies lag1000;
  lag1000.async.max_lag_bytes = 1000;
  lag1000.any.max_lag_bytes = 1000;
  RoutePolicies fallback;
  fallback.sync.fallback_to_primary = true;
  fallback.async.fallback_to_primary = true;
  fallback.any.fallback_to_primary = true;
  fallback.async.max_lag_bytes = 50;

  const std::vector<RankCase> cases = {
      {"primary port: the primary", Role::kPrimary, none, true, {}, {}, 0, {"p"}},
      {"primary port: stale view, nothing", Role::kPrimary, none, false, {}, {}, 0, {}},
      {"primary port: unreachable mark ignored", Role::kPrimary, none, true, {}, {"p"}, 0, {"p"}},
      {"sync port: the sync replica", Role::kSyncReplica, none, true, {}, {}, 0, {"s1"}},
      {"async port: least connections",
       Role::kAsyncReplica,
       none,
       true,
       {{"a1", 3}, {"a2", 1}},
       {},
       0,
       {"a2", "a1"}},
      {"async port: ties rotate (0)", Role::kAsyncReplica, none, true, {}, {}, 0, {"a1", "a2"}},
      {"async port: ties rotate (1)", Role::kAsyncReplica, none, true, {}, {}, 1, {"a2", "a1"}},
      {"any port: all replicas by count",
       Role::kAnyReplica,
       none,
       true,
       {{"s1", 2}, {"a1", 1}, {"a2", 3}},
       {},
       0,
       {"a1", "s1", "a2"}},
      {"any port: lag limit skips a2", Role::kAnyReplica, lag1000, true, {}, {}, 0, {"s1", "a1"}},
      {"async port: unreachable goes last",
       Role::kAsyncReplica,
       none,
       true,
       {},
       {"a1"},
       0,
       {"a2", "a1"}},
      {"async port: fallback to primary when all lag",
       Role::kAsyncReplica,
       fallback,
       true,
       {},
       {},
       0,
       {"p"}},
      {"async port: no fallback without usable primary",
       Role::kAsyncReplica,
       fallback,
       false,
       {},
       {},
       0,
       {}},
      {"sync port: fallback after replicas, before marked ones",
       Role::kSyncReplica,
       fallback,
       true,
       {},
       {"s1"},
       0,
       {"p", "s1"}},
      {"any port: fallback after healthy replicas",
       Role::kAnyReplica,
       fallback,
       true,
       {},
       {},
       0,
       {"s1", "a1", "a2", "p"}},
  };
  for (const RankCase& c : cases) {
    RouteContext ctx{c.primary_usable, &c.counts, &c.unreachable, c.rotation};
    EXPECT_EQ(Names(RankCandidates(c.role, ThreeNodes(), c.policies, ctx)), c.expected) << c.what;
  }
}

TEST(RankCandidates, NoloadbalanceMembersAreNeverChosen) {
  Topology t = ThreeNodes();
  t.async_replicas[0].noloadbalance = true;
  t.sync_replicas[0].noloadbalance = true;
  RouteContext ctx{true, nullptr, nullptr, 0};
  EXPECT_EQ(Names(RankCandidates(Role::kAnyReplica, t, {}, ctx)), std::vector<std::string>{"a2"});
  t.async_replicas[1].noloadbalance = true;
  EXPECT_FALSE(Route(Role::kAnyReplica, t, {}, ctx).has_value());
}

TEST(RankCandidates, EmptyTopologyRoutesNothing) {
  RoutePolicies fallback;
  fallback.any.fallback_to_primary = true;
  RouteContext ctx{true, nullptr, nullptr, 5};
  for (Role r : kAllRoles) EXPECT_FALSE(Route(r, Topology{}, fallback, ctx).has_value());
}

TEST(RankCandidates, RotationSpreadsShortConnectionsEvenly) {
  Topology t = ThreeNodes();
  std::map<std::string, int> hits;
  for (uint64_t r = 0; r < 300; ++r) {
    RouteContext ctx{true, nullptr, nullptr, r};
    ++hits[Route(Role::kAnyReplica, t, {}, ctx)->backend.name.str()];
  }
  EXPECT_EQ(hits["s1"], 100);
  EXPECT_EQ(hits["a1"], 100);
  EXPECT_EQ(hits["a2"], 100);
}

TEST(Route, FallbackIsMarkedViaPrimary) {
  RoutePolicies fallback;
  fallback.sync.fallback_to_primary = true;
  Topology t = ThreeNodes();
  t.sync_replicas.clear();
  RouteContext ctx{true, nullptr, nullptr, 0};
  std::optional<RouteTarget> r = Route(Role::kSyncReplica, t, fallback, ctx);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->backend.name.str(), "p");
  EXPECT_TRUE(r->via_primary);
  EXPECT_FALSE(Route(Role::kAsyncReplica, t, fallback, ctx)->via_primary);
}

struct ValidCase {
  std::string what;
  Role role;
  RouteTarget target;
  std::function<void(Topology&)> change;
  bool primary_usable;
  bool expected;
};

TEST(SessionStillValid, Table) {
  const RouteTarget to_p{B("p", 5432), true};
  const RouteTarget to_a1{B("a1", 5434, 100), false};
  const RouteTarget to_s1{B("s1", 5433, 10), false};
  auto same = [](Topology&) {};
  const std::vector<ValidCase> cases = {
      {"primary unchanged", Role::kPrimary, to_p, same, true, true},
      {"primary: new generation only", Role::kPrimary, to_p, [](Topology& t) { t.generation = 99; },
       true, true},
      {"primary replaced by another member", Role::kPrimary, to_p,
       [](Topology& t) { t.primary = B("s1", 5433); }, true, false},
      {"primary gone", Role::kPrimary, to_p, [](Topology& t) { t.primary.reset(); }, true, false},
      {"primary moved to another port", Role::kPrimary, to_p,
       [](Topology& t) { t.primary->endpoint.port = 6432; }, true, false},
      {"primary stale etcd view", Role::kPrimary, to_p, same, false, false},
      {"replica port fallback follows the primary rule", Role::kAsyncReplica, to_p,
       [](Topology& t) { t.primary = B("a1", 5434); }, true, false},
      {"replica unchanged", Role::kAsyncReplica, to_a1, same, true, true},
      {"replica survives stale view", Role::kAsyncReplica, to_a1, same, false, true},
      {"replica lag grew: still valid", Role::kAsyncReplica, to_a1,
       [](Topology& t) { t.async_replicas[0].lag_bytes = 1 << 30; }, true, true},
      {"replica tagged noloadbalance: still valid", Role::kAsyncReplica, to_a1,
       [](Topology& t) { t.async_replicas[0].noloadbalance = true; }, true, true},
      {"replica removed", Role::kAsyncReplica, to_a1,
       [](Topology& t) { t.async_replicas.erase(t.async_replicas.begin()); }, true, false},
      {"replica promoted", Role::kAsyncReplica, to_a1,
       [](Topology& t) {
         t.primary = t.async_replicas[0];
         t.async_replicas.erase(t.async_replicas.begin());
       },
       true, false},
      {"async became sync: async port closes", Role::kAsyncReplica, to_a1,
       [](Topology& t) {
         t.sync_replicas.push_back(t.async_replicas[0]);
         t.async_replicas.erase(t.async_replicas.begin());
       },
       true, false},
      {"async became sync: any port keeps it", Role::kAnyReplica, to_a1,
       [](Topology& t) {
         t.sync_replicas.push_back(t.async_replicas[0]);
         t.async_replicas.erase(t.async_replicas.begin());
       },
       true, true},
      {"sync replica still sync", Role::kSyncReplica, to_s1, same, true, true},
  };
  for (const ValidCase& c : cases) {
    Topology t = ThreeNodes();
    c.change(t);
    EXPECT_EQ(SessionStillValid(c.role, c.target, t, c.primary_usable), c.expected) << c.what;
  }
}

TEST(PrimaryChanged, Table) {
  const std::optional<Backend> none;
  const std::optional<Backend> p = B("p", 5432);
  std::optional<Backend> p_lagged = B("p", 5432, 77);
  EXPECT_FALSE(PrimaryChanged(none, none));
  EXPECT_TRUE(PrimaryChanged(none, p));
  EXPECT_TRUE(PrimaryChanged(p, none));
  EXPECT_FALSE(PrimaryChanged(p, p));
  EXPECT_FALSE(PrimaryChanged(p, p_lagged));  // lag is not identity
  EXPECT_TRUE(PrimaryChanged(p, B("q", 5432)));
  EXPECT_TRUE(PrimaryChanged(p, B("p", 5433)));
}

TEST(Endpoint, ToString) {
  EXPECT_EQ((Endpoint{"10.1.2.3", 5432}).ToString(), "10.1.2.3:5432");
  EXPECT_EQ((Endpoint{"::1", 5432}).ToString(), "[::1]:5432");
  EXPECT_EQ(ToString(Role::kAnyReplica), "replica");
}

}  // namespace
}  // namespace pgwarden::proxy
