// LeaseKeeper: this member's etcd lease, kept alive on a thread of its own.
//
// The thread grants a lease of `ttl`, then renews it every `interval`, each request bounded by
// the EtcdDcs's own request timeout (keepalive_timeout). It records, for every renewal etcd
// confirmed, the steady time at which the request was SENT: etcd renewed the lease no earlier,
// so the lease cannot expire before send + ttl. That is the clock the fence runs on.
// Nothing but keep-alives runs on this thread, so no PostgreSQL call, etcd read or HTTP request
// can delay a renewal.
//
// When etcd answers that the lease is gone (kNotFound: expired or revoked), the keeper calls
// `on_lost` at once (the agent fences from there), then grants a new lease.
//
// A ttl change at runtime (SetTiming, from the dynamic config): an etcd lease's TTL is fixed at
// grant, so the keeper grants a SUCCESSOR lease with the new ttl and keeps both alive. The
// control thread moves the leader and member keys to the successor with a compare-and-swap
// (their value and mod revision unchanged meanwhile) and then calls Adopt(): the successor
// becomes the lease and the old one is revoked. While both are held, the lease end the fence
// uses is the EARLIER of the two, since the keys may be on either.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "core/model.h"
#include "dcs/dcs.h"

namespace pgwarden::agent {

class LeaseKeeper {
 public:
  // `dcs` is owned (used by this thread only).
  LeaseKeeper(std::unique_ptr<dcs::Dcs> dcs, std::chrono::seconds ttl, Duration interval,
              std::function<void()> on_change, std::function<void()> on_lost);
  ~LeaseKeeper();  // Stop()s

  void Start();
  // Stops renewing (the lease then expires at etcd unless revoked).
  void Stop();
  // Stops and revokes the lease (bounded by the request timeout): our keys disappear at once.
  void StopAndRevoke();

  // The lease facts the core decides on, and (`*ttl`) the ttl the fence deadline is computed
  // with: last_confirmed_send + ttl is the earliest end of any lease our keys may be on.
  core::LeaseFacts Facts(std::chrono::seconds* ttl = nullptr) const;
  // The earliest moment the lease our keys are on can expire at etcd, as steady nanoseconds
  // since the epoch (0: no lease confirmed). Lock-free: the fence thread reads it.
  int64_t LeaseEndNs() const { return lease_end_ns_.load(); }

  // New ttl / renewal cadence / keep-alive request timeout (zero: unchanged). A lease already
  // granted gets a successor (see above). Until it is adopted, the cadence and the timeout in
  // use are the shorter of the old and the new ones, which fit the lease held either way.
  void SetTiming(std::chrono::seconds ttl, Duration interval, Duration request_timeout = {});
  // How to open a new connection with another request timeout (a changed keepalive_timeout);
  // `current`: the timeout of the connection given to the constructor. Call before Start().
  void SetReconnect(std::function<std::unique_ptr<dcs::Dcs>(Duration)> reconnect, Duration current);
  struct Successor {
    int64_t id = 0;
    std::chrono::seconds ttl{0};
  };
  // A successor lease waiting for the keys to move to it.
  std::optional<Successor> PendingSuccessor() const;
  // The keys are on successor `id` now: it becomes the lease; the old one is revoked.
  void Adopt(int64_t id);
  // Gives successor `id` up (revoked); a new one is granted at a later renewal.
  void Abandon(int64_t id);

 private:
  struct Held {
    int64_t id = 0;
    std::chrono::seconds ttl{0};
    int64_t send_ns = 0;  // steady ns of the last confirmed send; 0: none
  };
  void Run();
  void UpdateEndLocked();  // mu_ held

  std::unique_ptr<dcs::Dcs> dcs_;
  std::function<void()> on_change_;
  std::function<void()> on_lost_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  Held current_;                    // guarded by mu_
  Held successor_;                  // guarded by mu_; id 0: none
  std::chrono::seconds want_ttl_;   // guarded by mu_
  Duration interval_;               // guarded by mu_; the cadence in use
  Duration want_interval_;          // guarded by mu_; the cadence for want_ttl_
  bool lost_ = false;               // guarded by mu_
  std::vector<int64_t> to_revoke_;  // guarded by mu_
  Duration timeout_{};              // guarded by mu_; request timeout in use (0: unknown)
  Duration want_timeout_{};         // guarded by mu_; for want_ttl_
  std::function<std::unique_ptr<dcs::Dcs>(Duration)> reconnect_;
  std::atomic<int64_t> lease_end_ns_{0};
  std::thread thread_;
};

}  // namespace pgwarden::agent
