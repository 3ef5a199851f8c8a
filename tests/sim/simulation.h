// The deterministic simulation: N members over one MemoryDcs and one FakeClock, each with a
// FakePostgres and a "shell" that does what the real agent does (observe through
// cluster::ClusterStore on its own FaultyDcs -> core::Decide -> carry out the actions, with a
// keep-alive on its own cadence), and random faults drawn from a seed. Invariants are checked
// after every step (docs/ha-core.md, "Simulation").
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cluster/cluster_store.h"
#include "common/clock.h"
#include "core/decide.h"
#include "dcs/faulty_dcs.h"
#include "dcs/memory/memory_dcs.h"
#include "sim/fake_postgres.h"

namespace pgwarden::sim {

struct SimOptions {
  uint64_t seed = 1;
  int members = 3;
  Duration step = std::chrono::milliseconds(50);
  // Lease TTL (whole seconds, as etcd's); loop_wait 0.5 s, retry_timeout 1 s, fence_margin 1 s
  // (0.5 s below 3 s), keep-alive every 0.5 s.
  std::chrono::seconds ttl{3};
  Duration fault_phase = std::chrono::seconds(40);   // faults are injected during this time
  Duration settle_bound = std::chrono::seconds(45);  // then the cluster must converge within
  double fault_rate_per_second = 0.15;
  bool switchovers = true;
  // A deliberately broken shell, to prove the invariant checker catches a violation: it
  // never carries out an immediate stop, so a primary never fences itself.
  bool break_fence = false;
  // Synchronous replication (docs/sync-replication.md): commits are acknowledged per
  // synchronous_standby_names, and the checker verifies that no acknowledged commit is ever
  // missing from a primary or from a member listed in `sync`.
  bool synchronous_mode = false;
  bool synchronous_mode_strict = false;
  int synchronous_node_count = 1;
  // `synchronous_mode: quorum`: 'ANY k (...)' acknowledges a commit once k listed connected
  // standbys have flushed it; the checker verifies that every acknowledged commit is on at
  // least |sync_standby| - quorum members listed in `sync`.
  bool synchronous_quorum = false;
  // Patroni's maximum_lag_on_syncnode (HaConfig), and a fault that makes one replica's
  // streaming slow to a trickle (20 bytes a step, below the write rate) for 2-10 s, so that
  // it falls behind the other standbys (docs/sync-replication.md, maximum_lag_on_syncnode).
  int64_t maximum_lag_on_syncnode = -1;
  bool lagging_replicas = false;
  // A deliberately broken shell: it writes `sync` with a quorum one lower than the core asked
  // for (claims more than is true).
  bool break_quorum = false;
  // A deliberately broken shell: when it applies synchronous_standby_names it also writes the
  // new standbys into `sync` at once, before they are synchronous and caught up.
  bool break_sync_order = false;
  // Maintenance mode: once the cluster first converges every member is paused
  // (HaConfig::pause); the fault phase then runs paused and the checker fails on any
  // promotion, start, rewind, re-clone or initdb a paused member decides; at the end of the
  // faults the cluster is resumed and must converge again.
  bool paused = false;
  size_t trace_lines = 60;
};

struct SimResult {
  bool ok = true;
  std::string violation;  // the first broken invariant
  std::string trace;      // the last events before it
  // Failover figures: time from the loss of the primary (crash) to the next primary accepting
  // writes, for each crash of a primary.
  std::vector<Duration> failover_times;
  // Synchronous mode: time from a promotion to `sync` naming a standby of the new leader.
  std::vector<Duration> sync_after_promotion;
  // Commits acknowledged to clients, and (asynchronous mode) how many a later primary lacked.
  int64_t acked_commits = 0;
  int64_t lost_acked_commits = 0;
  // How often interesting things happened (promotions, planned promotions, fences, rewinds,
  // re-clones, expired decisions, ...): evidence that the seeds exercise the paths.
  std::map<std::string, int> counts;
};

SimResult RunSimulation(const SimOptions& options);

}  // namespace pgwarden::sim
