// What the proxy reports about itself: a plain snapshot (ProxyStatus) taken on the event loop,
// and pure renderers for the status endpoint (JSON) and for Prometheus (text format 0.0.4),
// plus the tiny HTTP/1.0 request handling of that endpoint. No I/O here; proxy_server.cc owns
// the sockets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proxy/topology.h"

namespace pgwarden::proxy {

inline constexpr size_t kRoleCount = 4;
inline size_t RoleIndex(Role role) { return static_cast<size_t>(role); }

// Monotonic counters since start. Per-role arrays are indexed by RoleIndex().
struct ProxyCounters {
  std::array<uint64_t, kRoleCount> accepted{};   // client connections accepted per port
  std::array<uint64_t, kRoleCount> forwarded{};  // sessions whose upstream connect succeeded
  std::array<uint64_t, kRoleCount> refused{};    // closed at once: no backend for the role
  uint64_t held = 0;           // clients put on hold (no usable primary, or connects failing)
  uint64_t hold_released = 0;  // times a held client was let go to try a member
  uint64_t hold_timeouts = 0;  // held clients closed after hold_timeout (counted from accept)
  uint64_t reheld = 0;         // clients put back on hold after every candidate's connect failed
  uint64_t hold_full = 0;      // clients closed at once because the hold queue was full
  uint64_t held_gone = 0;      // held clients that disconnected while waiting
  uint64_t retries_exhausted = 0;   // clients closed after max_connect_attempts failed connects
  uint64_t closed_by_topology = 0;  // sessions closed because their backend lost the role
  uint64_t upstream_connect_failures = 0;  // connect attempts refused, failed or timed out
  uint64_t upstream_connect_timeouts = 0;  // of which timed out
  uint64_t idle_timeouts = 0;              // sessions closed by the idle / half-close timeouts
  uint64_t accept_errors = 0;              // accept() failures (EMFILE and the like)
  uint64_t bytes_client_to_upstream = 0;
  uint64_t bytes_upstream_to_client = 0;
  uint64_t sessions_closed = 0;  // every session (held or forwarded) that ended
};

struct MemberStatus {
  std::string name;
  std::string endpoint;
  std::string role;  // "primary", "sync", "async" or "" (no longer in the topology)
  uint64_t lag_bytes = 0;
  bool noloadbalance = false;
  uint32_t sessions = 0;     // live sessions (connecting or forwarding) to this member
  bool unreachable = false;  // marked after a failed connect, for a short time
};

struct PortStatus {
  Role role = Role::kPrimary;
  uint16_t port = 0;
  std::vector<std::string> candidates;  // member names a new client would try, best first
};

struct ProxyStatus {
  uint64_t generation = 0;  // of the current topology snapshot
  bool dcs_fresh = false;   // heard from etcd within ttl (always true when the rule is off)
  bool primary_usable = false;
  std::optional<std::string> primary;  // member name of the usable primary
  std::vector<PortStatus> ports;
  std::vector<MemberStatus> members;
  uint64_t active_sessions = 0;  // connecting or forwarding
  uint64_t held_now = 0;
  ProxyCounters counters;
};

// Adds `part` (another event loop's snapshot) to `total`: counters and gauges are summed,
// members merged by name (sessions summed, unreachable if any loop marked it); the routing
// view (generation, primary, ports) stays `total`'s.
void MergeInto(ProxyStatus& total, const ProxyStatus& part);

std::string RenderStatusJson(const ProxyStatus& status);
std::string RenderPrometheus(const ProxyStatus& status);

// The request line of an HTTP request head ("GET /status HTTP/1.1\r\n...").
struct HttpRequestLine {
  std::string method;
  std::string path;  // without the query string
};
// kInvalidArgument with what is wrong when the head is not "<METHOD> <target> HTTP/<x>".
Result<HttpRequestLine> ParseRequestLine(std::string_view head);

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};
// GET /status -> JSON, GET /metrics -> Prometheus text, anything else -> 404/405/400.
HttpResponse HandleStatusRequest(std::string_view head, const ProxyStatus& status);
// An HTTP/1.0 response with Content-Length and Connection: close.
std::string SerializeResponse(const HttpResponse& response);

}  // namespace pgwarden::proxy
