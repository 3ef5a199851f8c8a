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
// Thread-safety: Facts() / Stop() / Revoke() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

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

  core::LeaseFacts Facts() const;
  // Steady time of the last confirmed send, as nanoseconds since the epoch (0: none). Lock-free.
  int64_t LastConfirmedSendNs() const { return last_send_ns_.load(); }

 private:
  void Run();

  std::unique_ptr<dcs::Dcs> dcs_;
  const std::chrono::seconds ttl_;
  const Duration interval_;
  std::function<void()> on_change_;
  std::function<void()> on_lost_;
  std::atomic<int64_t> lease_id_{0};
  std::atomic<int64_t> last_send_ns_{0};
  std::atomic<bool> lost_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace pgwarden::agent
