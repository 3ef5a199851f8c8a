// MemoryDcs: an in-process Dcs with etcd v3's semantics, for unit tests and the
// deterministic simulation.
//
// What it guarantees (the same as etcd 3.4, checked by the contract suite in tests/dcs):
//  - One store-wide revision, starting at 1 for an empty store. Every write that changes
//    something (a put, a delete that removes at least one key, a transaction with such
//    writes, a lease expiry or revocation that deletes keys) takes exactly one new revision;
//    all changes of one transaction share it. Reads, no-op deletes and lease grants do not
//    move the revision.
//  - Per key: create_revision, mod_revision, version (1 on creation, +1 per put) and lease.
//  - Leases run on the injected Clock: a lease expires when clock.SteadyNow() >= its last
//    keep-alive (or grant) + its TTL. Expiry is evaluated at the start of every call (and of
//    every Watch::Next) and by ExpireLeases(); it deletes the attached keys at one new
//    revision per lease and emits delete events. TTLs below `min_lease_ttl` are raised to it.
//  - Txn: compares as etcd (a value compare on a missing key is always false; the revision
//    and version targets of a missing key are 0); gets inside a transaction see the writes
//    before them; two puts of one key in one branch are kInvalidArgument, as in etcd.
//  - Watches: prefix watches from a start revision (0: from the next revision), fed from a
//    bounded event history. A start revision below the compaction point (Compact(), or the
//    oldest event still kept) makes the next Next() return kCompacted once; the watch then goes
//    on from the oldest revision still kept (the caller re-reads the state and ignores events
//    at or below the revision of that read). A watcher that falls more than `history_limit`
//    events behind is treated the same way, as etcd would after a compaction.
//
// Thread-safety: every method may be called from any thread (one mutex). Watches keep the
// store's state alive, so a Watch may outlive its MemoryDcs (it then reports kCancelled).
// With a real clock Watch::Next waits on a condition variable up to its timeout; with a
// FakeClock (or `blocking_watch = false`) it never blocks and returns what is queued.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "dcs/dcs.h"

namespace pgwarden::dcs {

struct MemoryDcsOptions {
  // Events kept for watches that start in the past; older ones count as compacted.
  std::size_t history_limit = 10000;
  // etcd raises TTLs below its minimum (2 s with the default election timeout).
  std::chrono::seconds min_lease_ttl{1};
  // Whether Watch::Next may block. Default: block unless the clock is a FakeClock.
  std::optional<bool> blocking_watch;
};

class MemoryDcs final : public Dcs {
 public:
  // `clock` must outlive this object and every Watch created from it.
  explicit MemoryDcs(Clock& clock, MemoryDcsOptions options = {});
  ~MemoryDcs() override;
  MemoryDcs(const MemoryDcs&) = delete;
  MemoryDcs& operator=(const MemoryDcs&) = delete;

  Result<RangeResult> Get(const std::string& key, bool prefix = false) override;
  Result<Revision> Put(const std::string& key, const std::string& value,
                       LeaseId lease = 0) override;
  Result<int64_t> Delete(const std::string& key, bool prefix = false) override;
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure = {}) override;

  Result<LeaseGrant> GrantLease(std::chrono::seconds ttl) override;
  Result<std::chrono::seconds> KeepAlive(LeaseId id) override;
  Result<void> RevokeLease(LeaseId id) override;
  Result<LeaseStatus> LeaseTimeToLive(LeaseId id) override;

  std::unique_ptr<Watch> WatchPrefix(const std::string& prefix,
                                     Revision start_revision = 0) override;

  // Test helpers.
  // Expires every lease whose time is up (also done implicitly by every call).
  void ExpireLeases();
  // Drops the history before `revision`: a watch starting below it gets kCompacted.
  // kInvalidArgument for a future revision, kCompacted for one at or below the last compaction.
  Result<void> Compact(Revision revision);
  Revision CurrentRevision() const;
  // Number of live leases (not yet expired or revoked).
  std::size_t LeaseCount() const;

  struct State;  // shared with the watches

 private:
  std::shared_ptr<State> state_;
};

}  // namespace pgwarden::dcs
