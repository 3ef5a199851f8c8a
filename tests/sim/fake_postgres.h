// FakePostgres: a small model of one member's PostgreSQL for the deterministic simulation.
//
// What it models: a data directory (absent / bootstrap pending / initialized with a system id),
// the process (stopped, starting, running, stopping, crashed), the role (primary or replica),
// the WAL as a lineage of branches (each promotion starts a new branch and timeline at the
// current position; two servers share WAL up to a position only if their lineages agree there),
// writes on a running primary, streaming from an upstream that the replica's WAL is a prefix of,
// and the long operations (initdb, clone, start, stop, promote, rewind, follow) that take
// simulated time. Single-threaded; owned by the simulation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/types.h"
#include "core/actions.h"
#include "core/model.h"

namespace pgwarden::sim {

// A stretch of WAL: positions (start, next segment's start] belong to `branch`.
struct Segment {
  uint64_t branch = 0;
  uint32_t timeline = 1;
  uint64_t start = 0;
  friend bool operator==(const Segment&, const Segment&) = default;
};

struct FakePostgres {
  bool has_data = false;
  bool bootstrap_pending = false;
  std::string sysid;
  core::ProcessState state = core::ProcessState::kStopped;
  bool primary = false;
  uint64_t lsn = 0;  // end of WAL: written (primary) or received (replica)
  std::vector<Segment> lineage;
  std::optional<MemberName> upstream;
  // synchronous_standby_names as applied (the shell's managed config: reset by every start).
  core::SyncStandbyNames sync_names;

  // The operation in flight.
  struct Op {
    core::Action action;
    SteadyTime started_at;
    SteadyTime done_at;
    std::optional<MemberName> source;  // clone / rewind / follow: whose WAL
  };
  std::optional<Op> op;

  uint32_t Timeline() const { return lineage.empty() ? 0 : lineage.back().timeline; }
  bool AcceptsWrites() const { return state == core::ProcessState::kRunning && primary; }
  // The branch of the WAL byte at `pos` (pos >= 1).
  uint64_t BranchAt(uint64_t pos) const;
  // Whether this server's WAL is a prefix of `other`'s (it can stream from it).
  bool IsPrefixOf(const FakePostgres& other) const;
  // Adopts `other`'s WAL up to `new_lsn` (streaming, clone, rewind).
  void CopyWalFrom(const FakePostgres& other, uint64_t new_lsn);
  // What the shell reports to the core.
  core::LocalPostgres Observe() const;
  std::string Describe() const;
};

}  // namespace pgwarden::sim
