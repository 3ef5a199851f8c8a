#include "proxy/topology.h"

#include <algorithm>

namespace pgwarden::proxy {

std::string_view ToString(Role role) {
  switch (role) {
    case Role::kPrimary:
      return "primary";
    case Role::kSyncReplica:
      return "sync";
    case Role::kAsyncReplica:
      return "async";
    case Role::kAnyReplica:
      return "replica";
  }
  return "unknown";
}

std::string Endpoint::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

const RoutePolicy& RoutePolicies::For(Role role) const {
  switch (role) {
    case Role::kSyncReplica:
      return sync;
    case Role::kAsyncReplica:
      return async;
    default:
      return any;
  }
}

std::optional<Backend> UsablePrimary(const Topology& topology, bool primary_usable) {
  if (!primary_usable || !topology.primary) return std::nullopt;
  return topology.primary;
}

bool PrimaryChanged(const std::optional<Backend>& before, const std::optional<Backend>& after) {
  if (before.has_value() != after.has_value()) return true;
  if (!before) return false;
  return before->name != after->name || before->endpoint != after->endpoint;
}

namespace {

// The replica lists a port draws from.
template <typename F>
void ForEachRoleMember(Role role, const Topology& topology, F&& f) {
  if (role == Role::kSyncReplica || role == Role::kAnyReplica) {
    for (const Backend& b : topology.sync_replicas) f(b);
  }
  if (role == Role::kAsyncReplica || role == Role::kAnyReplica) {
    for (const Backend& b : topology.async_replicas) f(b);
  }
}

uint32_t CountOf(const RouteContext& ctx, const MemberName& name) {
  if (ctx.counts == nullptr) return 0;
  auto it = ctx.counts->find(name.str());
  return it == ctx.counts->end() ? 0 : it->second;
}

bool Marked(const RouteContext& ctx, const MemberName& name) {
  return ctx.unreachable != nullptr && ctx.unreachable->count(name.str()) > 0;
}

}  // namespace

std::vector<RouteTarget> RankCandidates(Role role, const Topology& topology,
                                        const RoutePolicies& policies, const RouteContext& ctx) {
  std::vector<RouteTarget> out;
  const std::optional<Backend> primary = UsablePrimary(topology, ctx.primary_usable);
  if (role == Role::kPrimary) {
    if (primary) out.push_back(RouteTarget{*primary, true});
    return out;
  }

  const RoutePolicy& policy = policies.For(role);
  struct Ranked {
    const Backend* backend;
    bool marked;
    uint32_t count;
    size_t rotated_index;
  };
  std::vector<const Backend*> eligible;
  ForEachRoleMember(role, topology, [&](const Backend& b) {
    if (b.noloadbalance) return;
    if (policy.max_lag_bytes && b.lag_bytes > *policy.max_lag_bytes) return;
    eligible.push_back(&b);
  });
  std::vector<Ranked> ranked;
  ranked.reserve(eligible.size());
  const size_t n = eligible.size();
  for (size_t i = 0; i < n; ++i) {
    const Backend* b = eligible[i];
    // Rotating the tie-break index spreads clients over members with equal counts.
    size_t rotated = (i + n - static_cast<size_t>(ctx.rotation % n)) % n;
    ranked.push_back(Ranked{b, Marked(ctx, b->name), CountOf(ctx, b->name), rotated});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.marked != b.marked) return !a.marked;
    if (a.count != b.count) return a.count < b.count;
    return a.rotated_index < b.rotated_index;
  });
  // Unmarked replicas first, then the primary fallback, then marked replicas as a last resort.
  size_t first_marked = 0;
  while (first_marked < ranked.size() && !ranked[first_marked].marked) ++first_marked;
  for (size_t i = 0; i < first_marked; ++i) out.push_back(RouteTarget{*ranked[i].backend, false});
  if (policy.fallback_to_primary && primary) out.push_back(RouteTarget{*primary, true});
  for (size_t i = first_marked; i < ranked.size(); ++i) {
    out.push_back(RouteTarget{*ranked[i].backend, false});
  }
  return out;
}

std::optional<RouteTarget> Route(Role role, const Topology& topology, const RoutePolicies& policies,
                                 const RouteContext& ctx) {
  std::vector<RouteTarget> all = RankCandidates(role, topology, policies, ctx);
  if (all.empty()) return std::nullopt;
  return std::move(all.front());
}

bool SessionStillValid(Role role, const RouteTarget& target, const Topology& topology,
                       bool primary_usable) {
  if (target.via_primary) {
    const std::optional<Backend> primary = UsablePrimary(topology, primary_usable);
    return primary && primary->name == target.backend.name &&
           primary->endpoint == target.backend.endpoint;
  }
  bool found = false;
  ForEachRoleMember(role, topology, [&](const Backend& b) {
    if (b.name == target.backend.name && b.endpoint == target.backend.endpoint) found = true;
  });
  return found;
}

}  // namespace pgwarden::proxy
