// The proxy's routing model: an immutable snapshot of who holds which role (Topology), and the
// pure functions that pick a backend for a new client connection (Route / RankCandidates) and
// decide whether an open session survives a new snapshot (SessionStillValid).
//
// Plain values, no I/O, no clock, no Boost: the etcd watcher (src/cluster, later) turns watch
// events into Topology snapshots; ProxyServer (proxy_server.h) applies them on its event loop.
// Everything here is deterministic and tested with tables (tests/proxy/topology_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/types.h"

namespace pgwarden::proxy {

// The four client-facing ports. kAnyReplica balances over sync and async replicas together.
enum class Role { kPrimary, kSyncReplica, kAsyncReplica, kAnyReplica };
inline constexpr Role kAllRoles[] = {Role::kPrimary, Role::kSyncReplica, Role::kAsyncReplica,
                                     Role::kAnyReplica};

// "primary", "sync", "async", "replica" (used in status JSON, metrics labels and logs).
std::string_view ToString(Role role);

// A TCP address the proxy connects to. `host` is an IP literal or a host name.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;  // "10.0.0.1:5432", "[::1]:5432"
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// One PostgreSQL member as the proxy sees it.
struct Backend {
  MemberName name;
  Endpoint endpoint;
  uint64_t lag_bytes = 0;      // replication lag behind the primary; 0 for the primary
  bool noloadbalance = false;  // tag: receives no balanced read-only traffic
  friend bool operator==(const Backend&, const Backend&) = default;
};

// One routing snapshot. Contract for the producer (the etcd watcher): `primary` is set only
// while the member holding the leader lock reports itself running as primary; a replica
// appears in exactly one of the two replica lists. Snapshots are immutable once published.
struct Topology {
  uint64_t generation = 0;  // grows with every snapshot the producer publishes (display only)
  std::optional<Backend> primary;
  std::vector<Backend> sync_replicas;
  std::vector<Backend> async_replicas;
};

// Routing rules of one replica port (ignored for kPrimary).
struct RoutePolicy {
  // Members lagging more than this are skipped for new connections. nullopt: no limit.
  std::optional<uint64_t> max_lag_bytes;
  // With no eligible replica, send the client to the primary (if usable) instead of closing.
  bool fallback_to_primary = false;
};

struct RoutePolicies {
  RoutePolicy sync;
  RoutePolicy async;
  RoutePolicy any;
  const RoutePolicy& For(Role role) const;
};

// Live (connecting or forwarding) sessions per member name, maintained by the server.
using ConnectionCounts = std::unordered_map<std::string, uint32_t>;

// The routing inputs besides the snapshot: whether the primary may be used now (the freshness
// rule: the proxy has heard from etcd within ttl), sessions per member, members marked
// unreachable after a failed connect, and a rotation that breaks ties between members with
// equal counts (the server increments it per routed connection so that short connections,
// which often see all counts at 0, still spread).
struct RouteContext {
  bool primary_usable = false;
  const ConnectionCounts* counts = nullptr;            // nullptr: all zero
  const std::set<std::string>* unreachable = nullptr;  // nullptr: none marked
  uint64_t rotation = 0;
};

// Where a routed session goes and why; `via_primary` is true when the backend is the primary
// (the primary port, or a replica port's fallback), which decides the closing rule.
struct RouteTarget {
  Backend backend;
  bool via_primary = false;
  friend bool operator==(const RouteTarget&, const RouteTarget&) = default;
};

// The members a new client on `role`'s port may be sent to, best first; the server tries
// them in order when a connect fails. Rules:
//  * kPrimary: the primary, if present and usable; nothing else.
//  * Replica ports: members of the role (kAnyReplica: sync then async lists) that are not
//    tagged noloadbalance and do not lag more than the policy's limit, ordered by fewest
//    sessions (ties rotate by `rotation`); members marked unreachable come after all others
//    (a mark is a hint that expires, and trying a marked member beats refusing the client).
//    Then, if the policy says so and the primary is usable, the primary as a fallback.
std::vector<RouteTarget> RankCandidates(Role role, const Topology& topology,
                                        const RoutePolicies& policies, const RouteContext& ctx);

// The first of RankCandidates, or nullopt when the client cannot be served now.
std::optional<RouteTarget> Route(Role role, const Topology& topology, const RoutePolicies& policies,
                                 const RouteContext& ctx);

// Whether a session opened on `role`'s port to `target` stays open under a new snapshot.
// Sessions to the primary close as soon as the usable primary is a different member or
// endpoint, or there is none (stale etcd view included): the old primary may be fenced or
// demoted, and clients must reconnect to the new one. Replica sessions close only when their
// member left the role's lists or moved to another endpoint; lag and noloadbalance changes
// affect new connections only.
bool SessionStillValid(Role role, const RouteTarget& target, const Topology& topology,
                       bool primary_usable);

// The usable primary of a snapshot: `topology.primary` when usable, else nullopt.
std::optional<Backend> UsablePrimary(const Topology& topology, bool primary_usable);

// True when the usable primary differs (member name or endpoint, or presence) between two
// routing states. Same member with a new generation is not a change.
bool PrimaryChanged(const std::optional<Backend>& before, const std::optional<Backend>& after);

}  // namespace pgwarden::proxy
