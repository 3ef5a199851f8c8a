#include "dcs/memory/memory_dcs.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace pgwarden::dcs {
namespace {

bool KeyMatches(const std::string& key, const std::string& pattern, bool prefix) {
  if (!prefix) return key == pattern;
  return key.compare(0, pattern.size(), pattern) == 0;
}

template <typename T>
bool CompareOrdered(const T& lhs, Compare::Op op, const T& rhs) {
  switch (op) {
    case Compare::Op::kEqual:
      return lhs == rhs;
    case Compare::Op::kNotEqual:
      return lhs != rhs;
    case Compare::Op::kLess:
      return lhs < rhs;
    case Compare::Op::kGreater:
      return lhs > rhs;
  }
  return false;
}

std::string LeaseName(LeaseId id) { return "lease " + std::to_string(id); }

}  // namespace

struct MemoryDcsWatcher {
  std::string prefix;
  std::deque<WatchEvent> queue;
  bool compacted = false;  // to be reported by the next Next()
  bool ended = false;      // cancelled
};

struct MemoryDcs::State {
  State(Clock& c, MemoryDcsOptions o) : clock(c), options(o) {}

  Clock& clock;
  MemoryDcsOptions options;
  bool blocking = true;
  bool closed = false;

  mutable std::mutex mu;
  std::condition_variable cv;

  struct Lease {
    std::chrono::seconds ttl{0};
    SteadyTime deadline;
    std::set<std::string> keys;
  };

  Revision revision = 1;       // an empty etcd is at revision 1
  Revision compacted = 0;      // the last Compact() revision
  Revision history_floor = 1;  // events of revisions >= this are all in `history`
  std::map<std::string, KeyValue> kvs;
  std::map<LeaseId, Lease> leases;
  LeaseId next_lease = 0x3a5c'0000'0000'0001;  // large, like etcd's, to catch truncation
  std::deque<WatchEvent> history;
  std::vector<std::weak_ptr<MemoryDcsWatcher>> watchers;

  // ---- writes. A write collects its events; Commit() gives them one new revision. ----

  void PutLocked(const std::string& key, const std::string& value, LeaseId lease, Revision rev,
                 std::vector<WatchEvent>& events) {
    auto [it, inserted] = kvs.try_emplace(key);
    KeyValue& kv = it->second;
    if (inserted) {
      kv.key = key;
      kv.create_revision = rev;
      kv.version = 0;
    } else if (kv.lease != 0 && kv.lease != lease) {
      auto old = leases.find(kv.lease);
      if (old != leases.end()) old->second.keys.erase(key);
    }
    kv.value = value;
    kv.mod_revision = rev;
    kv.version += 1;
    kv.lease = lease;
    if (lease != 0) leases.at(lease).keys.insert(key);
    events.push_back(WatchEvent{WatchEvent::Type::kPut, kv});
  }

  int64_t DeleteLocked(const std::string& key, bool prefix, Revision rev,
                       std::vector<WatchEvent>& events) {
    int64_t deleted = 0;
    auto it = kvs.lower_bound(key);
    while (it != kvs.end() && KeyMatches(it->first, key, prefix)) {
      if (it->second.lease != 0) {
        auto lease = leases.find(it->second.lease);
        if (lease != leases.end()) lease->second.keys.erase(it->first);
      }
      WatchEvent ev;
      ev.type = WatchEvent::Type::kDelete;
      ev.kv.key = it->first;
      ev.kv.mod_revision = rev;
      events.push_back(std::move(ev));
      it = kvs.erase(it);
      ++deleted;
      if (!prefix) break;
    }
    return deleted;
  }

  std::vector<KeyValue> RangeLocked(const std::string& key, bool prefix) const {
    std::vector<KeyValue> out;
    for (auto it = kvs.lower_bound(key); it != kvs.end() && KeyMatches(it->first, key, prefix);
         ++it) {
      out.push_back(it->second);
      if (!prefix) break;
    }
    return out;
  }

  // Publishes the events of one write at revision `rev` (== revision + 1) if there are any.
  void Commit(Revision rev, std::vector<WatchEvent>& events) {
    if (events.empty()) return;
    revision = rev;
    for (auto& ev : events) history.push_back(ev);
    TrimHistory();
    for (auto it = watchers.begin(); it != watchers.end();) {
      auto w = it->lock();
      if (!w) {
        it = watchers.erase(it);
        continue;
      }
      ++it;
      if (w->ended || w->compacted) continue;
      for (const auto& ev : events) {
        if (KeyMatches(ev.kv.key, w->prefix, true)) w->queue.push_back(ev);
      }
      if (w->queue.size() > options.history_limit) {  // a watcher that fell too far behind
        w->queue.clear();
        w->compacted = true;
      }
    }
    cv.notify_all();
  }

  void TrimHistory() {
    while (history.size() > options.history_limit) {
      Revision dropped = history.front().kv.mod_revision;
      while (!history.empty() && history.front().kv.mod_revision == dropped) history.pop_front();
      history_floor = std::max(history_floor, dropped + 1);
    }
  }

  void ExpireLocked() {
    SteadyTime now = clock.SteadyNow();
    for (auto it = leases.begin(); it != leases.end();) {
      if (now < it->second.deadline) {
        ++it;
        continue;
      }
      std::set<std::string> keys = std::move(it->second.keys);
      it = leases.erase(it);
      RemoveKeys(keys);
    }
  }

  // Deletes the keys of an expired or revoked lease at one new revision.
  void RemoveKeys(const std::set<std::string>& keys) {
    Revision rev = revision + 1;
    std::vector<WatchEvent> events;
    for (const auto& key : keys) DeleteLocked(key, false, rev, events);
    Commit(rev, events);
  }

  bool CompareHolds(const Compare& c) const {
    auto it = kvs.find(c.key);
    if (it == kvs.end()) {
      // As etcd: a value compare on a missing key always fails; the numbers of a missing
      // key are all zero.
      if (c.target == Compare::Target::kValue) return false;
      return CompareOrdered<int64_t>(0, c.op, c.number);
    }
    const KeyValue& kv = it->second;
    switch (c.target) {
      case Compare::Target::kValue:
        return CompareOrdered(kv.value, c.op, c.value);
      case Compare::Target::kCreateRevision:
        return CompareOrdered(kv.create_revision, c.op, c.number);
      case Compare::Target::kModRevision:
        return CompareOrdered(kv.mod_revision, c.op, c.number);
      case Compare::Target::kVersion:
        return CompareOrdered(kv.version, c.op, c.number);
    }
    return false;
  }

  Result<void> CheckOps(const std::vector<TxnOp>& ops) const {
    std::set<std::string> put_keys;
    for (const auto& op : ops) {
      if (const auto* put = std::get_if<PutOp>(&op)) {
        if (!put_keys.insert(put->key).second) {
          return Fail(ErrorCode::kInvalidArgument,
                      "txn puts key '" + put->key + "' twice (etcd: duplicate key given in txn)");
        }
        if (put->lease != 0 && leases.count(put->lease) == 0) {
          return Fail(ErrorCode::kNotFound, LeaseName(put->lease) + " not found");
        }
      }
    }
    for (const auto& op : ops) {
      if (const auto* del = std::get_if<DeleteOp>(&op)) {
        for (const auto& key : put_keys) {
          if (KeyMatches(key, del->key, del->prefix)) {
            return Fail(ErrorCode::kInvalidArgument, "txn puts and deletes key '" + key +
                                                         "' (etcd: duplicate key given in txn)");
          }
        }
      }
    }
    return Ok();
  }

  void AddWatcher(const std::shared_ptr<MemoryDcsWatcher>& w, Revision start) {
    if (start <= 0) start = revision + 1;
    watchers.push_back(w);
    if (start < history_floor) {
      w->compacted = true;
      return;
    }
    Replay(*w, start);
  }

  void Replay(MemoryDcsWatcher& w, Revision start) {
    for (const auto& ev : history) {
      if (ev.kv.mod_revision >= start && KeyMatches(ev.kv.key, w.prefix, true)) {
        w.queue.push_back(ev);
      }
    }
  }
};

namespace {

class MemoryWatch final : public Watch {
 public:
  MemoryWatch(std::shared_ptr<MemoryDcs::State> state, std::shared_ptr<MemoryDcsWatcher> watcher)
      : state_(std::move(state)), watcher_(std::move(watcher)) {}

  ~MemoryWatch() override { Cancel(); }

  Result<WatchBatch> Next(Duration timeout) override {
    std::unique_lock lock(state_->mu);
    if (!state_->closed) state_->ExpireLocked();
    if (state_->blocking && timeout > Duration::zero() && Ready() == nullptr) {
      // Real time: wait for events, waking now and then to expire leases.
      const auto deadline = SteadyClock::now() + timeout;
      while (Ready() == nullptr) {
        auto now = SteadyClock::now();
        if (now >= deadline) break;
        state_->cv.wait_for(lock, std::min<Duration>(deadline - now, milliseconds(50)));
        if (!state_->closed) state_->ExpireLocked();
      }
    }
    if (watcher_->ended || state_->closed) {
      return Fail(ErrorCode::kCancelled, "watch of '" + watcher_->prefix + "' was cancelled");
    }
    if (watcher_->compacted) {
      // Reported once; the watch goes on from the oldest revision still in the history.
      const Revision floor = state_->history_floor;
      watcher_->compacted = false;
      watcher_->queue.clear();
      state_->Replay(*watcher_, floor);
      return Fail(ErrorCode::kCompacted,
                  "watch of '" + watcher_->prefix +
                      "': the requested revision has been compacted; resuming from revision " +
                      std::to_string(floor));
    }
    WatchBatch batch;
    batch.events.assign(std::make_move_iterator(watcher_->queue.begin()),
                        std::make_move_iterator(watcher_->queue.end()));
    watcher_->queue.clear();
    batch.revision = state_->revision;
    return batch;
  }

  void Cancel() override {
    std::lock_guard lock(state_->mu);
    watcher_->ended = true;
    watcher_->queue.clear();
    state_->cv.notify_all();
  }

 private:
  // Non-null when Next() has something to return.
  const MemoryDcsWatcher* Ready() const {
    const MemoryDcsWatcher* w = watcher_.get();
    return (!w->queue.empty() || w->compacted || w->ended || state_->closed) ? w : nullptr;
  }

  std::shared_ptr<MemoryDcs::State> state_;
  std::shared_ptr<MemoryDcsWatcher> watcher_;
};

}  // namespace

MemoryDcs::MemoryDcs(Clock& clock, MemoryDcsOptions options)
    : state_(std::make_shared<State>(clock, options)) {
  state_->blocking = options.blocking_watch.value_or(dynamic_cast<FakeClock*>(&clock) == nullptr);
  if (state_->options.history_limit == 0) state_->options.history_limit = 1;
}

MemoryDcs::~MemoryDcs() {
  std::lock_guard lock(state_->mu);
  state_->closed = true;
  state_->cv.notify_all();
}

Result<RangeResult> MemoryDcs::Get(const std::string& key, bool prefix) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  RangeResult out;
  out.kvs = state_->RangeLocked(key, prefix);
  out.revision = state_->revision;
  return out;
}

Result<Revision> MemoryDcs::Put(const std::string& key, const std::string& value, LeaseId lease) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  if (key.empty()) return Fail(ErrorCode::kInvalidArgument, "put: empty key");
  if (lease != 0 && state_->leases.count(lease) == 0) {
    return Fail(ErrorCode::kNotFound, "put '" + key + "': " + LeaseName(lease) + " not found");
  }
  Revision rev = state_->revision + 1;
  std::vector<WatchEvent> events;
  state_->PutLocked(key, value, lease, rev, events);
  state_->Commit(rev, events);
  return rev;
}

Result<int64_t> MemoryDcs::Delete(const std::string& key, bool prefix) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  Revision rev = state_->revision + 1;
  std::vector<WatchEvent> events;
  int64_t deleted = state_->DeleteLocked(key, prefix, rev, events);
  state_->Commit(rev, events);
  return deleted;
}

Result<TxnResult> MemoryDcs::Txn(const std::vector<Compare>& compares,
                                 const std::vector<TxnOp>& success,
                                 const std::vector<TxnOp>& failure) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  if (auto ok = state_->CheckOps(success); !ok) return Fail(ok.error());
  if (auto ok = state_->CheckOps(failure); !ok) return Fail(ok.error());

  TxnResult result;
  result.succeeded = std::all_of(compares.begin(), compares.end(),
                                 [&](const Compare& c) { return state_->CompareHolds(c); });
  const auto& ops = result.succeeded ? success : failure;
  Revision rev = state_->revision + 1;
  std::vector<WatchEvent> events;
  for (const auto& op : ops) {
    if (const auto* put = std::get_if<PutOp>(&op)) {
      state_->PutLocked(put->key, put->value, put->lease, rev, events);
    } else if (const auto* del = std::get_if<DeleteOp>(&op)) {
      state_->DeleteLocked(del->key, del->prefix, rev, events);
    } else if (const auto* get = std::get_if<GetOp>(&op)) {
      result.ranges.push_back(RangeResult{state_->RangeLocked(get->key, get->prefix), 0});
    }
  }
  state_->Commit(rev, events);
  result.revision = state_->revision;
  for (auto& range : result.ranges) range.revision = result.revision;
  return result;
}

Result<LeaseGrant> MemoryDcs::GrantLease(std::chrono::seconds ttl) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  if (ttl < std::chrono::seconds(0)) {
    return Fail(ErrorCode::kInvalidArgument, "lease TTL must not be negative");
  }
  ttl = std::max(ttl, state_->options.min_lease_ttl);
  LeaseId id = state_->next_lease++;
  State::Lease& lease = state_->leases[id];
  lease.ttl = ttl;
  lease.deadline = state_->clock.SteadyNow() + ttl;
  return LeaseGrant{id, ttl};
}

Result<std::chrono::seconds> MemoryDcs::KeepAlive(LeaseId id) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  auto it = state_->leases.find(id);
  if (it == state_->leases.end()) {
    return Fail(ErrorCode::kNotFound, "keep-alive: " + LeaseName(id) + " not found");
  }
  it->second.deadline = state_->clock.SteadyNow() + it->second.ttl;
  return it->second.ttl;
}

Result<void> MemoryDcs::RevokeLease(LeaseId id) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  auto it = state_->leases.find(id);
  if (it == state_->leases.end()) {
    return Fail(ErrorCode::kNotFound, "revoke: " + LeaseName(id) + " not found");
  }
  std::set<std::string> keys = std::move(it->second.keys);
  state_->leases.erase(it);
  state_->RemoveKeys(keys);
  return Ok();
}

Result<LeaseStatus> MemoryDcs::LeaseTimeToLive(LeaseId id) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  auto it = state_->leases.find(id);
  if (it == state_->leases.end()) return LeaseStatus{std::chrono::seconds(-1), {}};
  auto remaining = std::chrono::duration_cast<std::chrono::seconds>(it->second.deadline -
                                                                    state_->clock.SteadyNow());
  return LeaseStatus{remaining, it->second.ttl};
}

std::unique_ptr<Watch> MemoryDcs::WatchPrefix(const std::string& prefix, Revision start_revision) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  auto watcher = std::make_shared<MemoryDcsWatcher>();
  watcher->prefix = prefix;
  state_->AddWatcher(watcher, start_revision);
  return std::make_unique<MemoryWatch>(state_, std::move(watcher));
}

void MemoryDcs::ExpireLeases() {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
}

Result<void> MemoryDcs::Compact(Revision revision) {
  std::lock_guard lock(state_->mu);
  state_->ExpireLocked();
  if (revision > state_->revision) {
    return Fail(ErrorCode::kInvalidArgument, "compact: revision " + std::to_string(revision) +
                                                 " is in the future (store at " +
                                                 std::to_string(state_->revision) + ")");
  }
  if (revision <= state_->compacted) {
    return Fail(ErrorCode::kCompacted,
                "compact: revision " + std::to_string(revision) + " has already been compacted");
  }
  state_->compacted = revision;
  state_->history_floor = std::max(state_->history_floor, revision);
  while (!state_->history.empty() && state_->history.front().kv.mod_revision < revision) {
    state_->history.pop_front();
  }
  return Ok();
}

Revision MemoryDcs::CurrentRevision() const {
  std::lock_guard lock(state_->mu);
  return state_->revision;
}

std::size_t MemoryDcs::LeaseCount() const {
  std::lock_guard lock(state_->mu);
  return state_->leases.size();
}

}  // namespace pgwarden::dcs
