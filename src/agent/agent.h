// Agent: the HA agent's shell. It observes (etcd through ClusterStore, the local PostgreSQL
// through PgWorker's snapshot, the lease through LeaseKeeper, peer probes), asks the pure core
// (core::Decide) what to do, and carries the actions out honouring core/actions.h.
//
// Threads (docs/agent.md):
//   control    owns AgentMemory and the HA state; runs Decide and the etcd actions (inline,
//              deadline-bounded); hands PostgreSQL work to the worker; publishes API snapshots
//   keep-alive LeaseKeeper: renews the lease, nothing else
//   fence      every 50 ms: a primary whose last confirmed keep-alive was sent FenceAfter()
//              ago is stopped at once (SIGQUIT to the postmaster), whatever the control thread
//              is doing
//   watch      WatchPrefix on the cluster prefix; every event wakes the control thread
//   worker     PgWorker: PostgreSQL operations; status: PgWorker's poller
//   probe      parallel GET /patroni of the peers when the core asks
//   api        HttpServer + PatroniApi (its own worker runs the ControlPlane calls)
//   signals    SIGTERM / SIGINT -> graceful shutdown
#pragma once

#include <string>

namespace pgwarden::agent {

// `pgwarden agent -c <config>`: runs until SIGTERM/SIGINT. Exit status: 0 after a clean
// shutdown, 2 for a bad configuration (nothing started), 1 when it cannot start.
int RunAgent(const std::string& config_path);

}  // namespace pgwarden::agent
