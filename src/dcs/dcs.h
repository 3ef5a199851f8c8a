// The distributed configuration store (DCS) that holds the cluster's state.
//
// pgwarden never implements consensus: the store is etcd (EtcdDcs), and MemoryDcs is an
// in-process store with the same semantics (revisions, leases that expire on a Clock,
// watches) for unit tests and the deterministic simulation. FaultyDcs wraps either one and
// injects unavailability, timeouts and latency.
//
// The interface is etcd v3's data model, kept small: a flat ordered key space, every
// change numbered by a cluster-wide revision, keys optionally attached to a lease that
// deletes them when it expires, compare-and-swap transactions, and prefix watches.
//
// Thread-safety: every implementation is safe to call from several threads. EtcdDcs
// serializes calls on one connection, so a caller whose latency matters (the lease
// keep-alive) owns its own instance. Every call is bounded by a deadline (the
// implementation's request timeout): none blocks forever.
//
// Errors (see common/result.h): kUnavailable / kTimeout when no answer was had (the outcome
// of a write is then unknown), kConflict is never returned by Txn (a failed compare is
// TxnResult::succeeded == false) but by helpers built on it, kNotFound for an unknown or
// expired lease, kCompacted for a watch start revision that no longer exists, kCorrupt for an
// answer that cannot be parsed.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace pgwarden::dcs {

using Revision = int64_t;
using LeaseId = int64_t;  // 0 means "no lease"

struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;  // revision of the put that created the key
  Revision mod_revision = 0;     // revision of the last put to the key
  int64_t version = 0;           // number of puts since creation
  LeaseId lease = 0;

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // sorted by key
  Revision revision = 0;      // the store's revision when the read was served
};

// One condition of a transaction, as etcd's Compare.
struct Compare {
  enum class Target { kValue, kCreateRevision, kModRevision, kVersion };
  enum class Op { kEqual, kNotEqual, kLess, kGreater };
  std::string key;
  Target target = Target::kValue;
  Op op = Op::kEqual;
  std::string value;      // for kValue
  int64_t number = 0;     // for the revision / version targets

  // Helpers for the common cases.
  static Compare ValueEquals(std::string key, std::string value);
  static Compare Absent(std::string key);  // create_revision == 0
  static Compare ModRevisionEquals(std::string key, Revision rev);
  static Compare CreateRevisionEquals(std::string key, Revision rev);
};

struct PutOp {
  std::string key;
  std::string value;
  LeaseId lease = 0;
};
struct DeleteOp {
  std::string key;
  bool prefix = false;  // delete every key that starts with `key`
};
struct GetOp {
  std::string key;
  bool prefix = false;
};
using TxnOp = std::variant<PutOp, DeleteOp, GetOp>;

struct TxnResult {
  bool succeeded = false;            // true: all compares held and `success` ran
  Revision revision = 0;             // store revision after the transaction
  std::vector<RangeResult> ranges;   // one per GetOp of the branch that ran, in order
};

struct LeaseGrant {
  LeaseId id = 0;
  std::chrono::seconds ttl{0};  // as granted (etcd may raise a TTL below its minimum)
};

struct LeaseStatus {
  std::chrono::seconds ttl{0};        // remaining; -1 s when the lease has expired/is unknown
  std::chrono::seconds granted_ttl{0};
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete: key and mod_revision (the deleting revision) only
};

// A batch of events from a watch. Events come in revision order, each exactly once.
struct WatchBatch {
  std::vector<WatchEvent> events;
  Revision revision = 0;  // the store revision this batch brings the watcher up to
};

// A prefix watch. Owned by one thread at a time; Cancel() may be called from any thread.
// The implementation reconnects by itself after a dropped connection (to the next endpoint
// if there are several) and resumes from the revision after the last one delivered, so a
// caller never misses or sees twice an event, unless etcd compacted the history meanwhile:
// then Next() returns kCompacted once and the caller must re-read the state.
class Watch {
 public:
  virtual ~Watch() = default;
  // Waits at most `timeout` for events. An empty batch means nothing happened in time.
  // kUnavailable when the store cannot be reached (the watch keeps trying on the next call),
  // kCompacted as described above, kCancelled after Cancel().
  virtual Result<WatchBatch> Next(Duration timeout) = 0;
  virtual void Cancel() = 0;
};

class Dcs {
 public:
  virtual ~Dcs() = default;

  // Reads one key, or every key under a prefix when `prefix` is true.
  virtual Result<RangeResult> Get(const std::string& key, bool prefix = false) = 0;
  // Writes a key, attached to `lease` when non-zero. Returns the new revision.
  virtual Result<Revision> Put(const std::string& key, const std::string& value,
                               LeaseId lease = 0) = 0;
  // Deletes a key (or a prefix). Returns the number of keys deleted.
  virtual Result<int64_t> Delete(const std::string& key, bool prefix = false) = 0;
  // Atomically: if every compare holds, runs `success`, else `failure`.
  virtual Result<TxnResult> Txn(const std::vector<Compare>& compares,
                                const std::vector<TxnOp>& success,
                                const std::vector<TxnOp>& failure = {}) = 0;

  virtual Result<LeaseGrant> GrantLease(std::chrono::seconds ttl) = 0;
  // Renews a lease to its full TTL. Returns the TTL it now has; kNotFound if it expired.
  virtual Result<std::chrono::seconds> KeepAlive(LeaseId id) = 0;
  // Revokes a lease, deleting every key attached to it. Revoking an unknown lease is kNotFound.
  virtual Result<void> RevokeLease(LeaseId id) = 0;
  virtual Result<LeaseStatus> LeaseTimeToLive(LeaseId id) = 0;

  // Watches every key under `prefix`, from `start_revision` (0: from now on).
  virtual std::unique_ptr<Watch> WatchPrefix(const std::string& prefix,
                                             Revision start_revision = 0) = 0;
};

}  // namespace pgwarden::dcs
