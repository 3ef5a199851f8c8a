// ProxyServer: the data plane of `pgwarden proxy`. Listens on one TCP port per role and
// forwards each client connection, byte for byte, to a member that has the role now.
//
// Threads: `threads` event loops (default 2), each one thread with its own io_context.
// Loop 0 owns the listening sockets and hands each accepted client to a loop round-robin; a
// session, its sockets and its counters then belong to that loop alone. The other methods may
// be called from any thread: they post to every loop (SetTopology, ReportDcsContact,
// SetPrimaryUsable) or post and wait (GetStatus; never call it from a loop thread). Why
// more than one loop, and why few: docs/proxy.md "Threads".
//
// Routing: see topology.h. The primary port routes only while a primary is in the snapshot
// AND the etcd view is fresh (ReportDcsContact() within `dcs_ttl`). When the usable primary
// changes or disappears, every session to the old one is closed at once, and new primary-port
// clients are held (accepted, not read from) for up to `hold_timeout`, then forwarded to the
// new primary or closed.
//
// Failed connects hold too (docs/proxy.md "Failed connects"): when every candidate of a port
// refused or timed out (the primary's host crashed and etcd still names it; every replica is
// down), the client goes back to the hold queue, nothing having been sent to it. The port is
// then "down" on that loop: new clients are held as well, and one held client at a time probes
// the members again after a short backoff (`retry_backoff_min` doubling up to
// `retry_backoff_max`). The first successful connect, or a new member for the port in the
// topology, releases every held client of the port. Bounds: `hold_timeout` counted from
// accept, `max_connect_attempts` per client, `max_held` clients held at once; a held client
// that disconnects is noticed and freed at once.
//
// This header is plain on purpose (no Boost): Asio lives in proxy_server.cc only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "proxy/status.h"
#include "proxy/topology.h"

namespace pgwarden::proxy {

struct ProxyOptions {
  // Address the client ports and the status port bind to.
  std::string listen_address = "0.0.0.0";
  // Client ports; nullopt disables the port, 0 binds an ephemeral port (tests).
  std::optional<uint16_t> primary_port;
  std::optional<uint16_t> sync_port;
  std::optional<uint16_t> async_port;
  std::optional<uint16_t> replica_port;  // any replica (sync or async)
  // HTTP status endpoint (GET /status, GET /metrics); nullopt disables it.
  std::optional<uint16_t> status_port;

  RoutePolicies policies;

  // How long a primary-port client waits for a primary when there is none. A few seconds
  // longer than a normal failover (ttl 2 s + promotion).
  std::chrono::milliseconds hold_timeout{10000};
  // Freshness rule: with no ReportDcsContact() for this long, the primary is not used (its
  // sessions are closed and new clients held). Zero disables the rule (static topologies).
  std::chrono::milliseconds dcs_ttl{2000};
  // Upstream TCP connect deadline; on a replica port the next candidate is tried after it.
  std::chrono::milliseconds connect_timeout{2000};
  // How long a replica stays ranked last after a failed connect (a hint: it is still tried
  // when nothing else is left).
  std::chrono::milliseconds unreachable_for{5000};
  // After every candidate of a port failed to connect: the pause before one held client tries
  // again, doubling per failed round from min to max. Short, so that a PostgreSQL restarted on
  // the same member, or a new primary, is found within a fraction of a second.
  std::chrono::milliseconds retry_backoff_min{100};
  std::chrono::milliseconds retry_backoff_max{250};
  // Upstream connect attempts one client may make before it is closed (with hold_timeout, the
  // bound on what a client can cost while members are down).
  int max_connect_attempts = 100;
  // Clients held at once (split evenly over the loops); one more is closed at once.
  size_t max_held = 10000;
  // A session with one direction closed (half-closed) is closed after this long without
  // traffic in the other direction.
  std::chrono::milliseconds half_close_timeout{30000};
  // A session with no traffic either way for this long is closed. Zero: never (PostgreSQL
  // clients and poolers keep idle connections for hours).
  std::chrono::milliseconds idle_timeout{0};
  // A write to a peer that takes no bytes for this long closes the session: the peer (a
  // frozen host, a stuck client) stopped reading. Zero: never.
  std::chrono::milliseconds stall_timeout{120000};
  // Pause before accepting again after accept() failed for lack of descriptors or memory.
  std::chrono::milliseconds accept_backoff{100};
  // TCP keepalive on both sockets of a session (detects dead peers, not frozen ones).
  std::chrono::seconds keepalive_idle{30};
  // Size of one forwarding buffer. Buffers are pooled: an idle session holds none, a session
  // holds one per direction only while a write to a slow peer is pending.
  size_t buffer_size = 32 * 1024;
  // Event loops (threads). Loop 0 accepts and hands clients out round-robin; a session stays
  // on its loop. Each loop applies every snapshot and the freshness rule on its own.
  int threads = 2;
  int listen_backlog = 1024;

  // Every problem at once, each saying which option is wrong.
  Result<void> Validate() const;
};

class ProxyServer {
 public:
  explicit ProxyServer(ProxyOptions options);
  ~ProxyServer();  // Stop()s
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Validates the options, binds every configured port (failing with kInvalidArgument or
  // kUnavailable naming the port if one cannot be bound) and starts the loop thread.
  // Call once.
  Result<void> Start();
  // Closes listeners and every session, and joins the loop thread. Idempotent.
  void Stop();

  // Ports actually bound (useful with port 0); nullopt for a disabled port.
  std::optional<uint16_t> BoundPort(Role role) const;
  std::optional<uint16_t> BoundStatusPort() const;

  // Installs a new routing snapshot (may be null: no members known). Any thread.
  void SetTopology(std::shared_ptr<const Topology> topology);
  // The etcd watcher heard from etcd (a watch event or progress notification, a successful
  // read): the view is fresh for another dcs_ttl. Any thread.
  void ReportDcsContact();
  // Forces the primary unusable (false) or lifts that (true), independently of the freshness
  // timer; e.g. the watcher knows its view is broken. Any thread.
  void SetPrimaryUsable(bool usable);

  // A consistent snapshot taken on the loop. Any thread except the loop thread.
  ProxyStatus GetStatus() const;

  class Loop;  // proxy_server.cc

 private:
  ProxyOptions options_;
  std::vector<std::unique_ptr<Loop>> loops_;
};

}  // namespace pgwarden::proxy
