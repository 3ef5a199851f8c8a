// FaultyDcs: wraps any Dcs and injects the failures the HA logic must survive (leveldb's
// fault_injection_test idea, applied to the DCS).
//
// The policy can be changed at any time from any thread; each call reads it once at its start:
//  - unavailable: every call fails with kUnavailable without reaching the inner store (etcd
//    unreachable). Watches return kUnavailable from Next() and deliver what they missed once
//    the policy is lifted, as a real watch does after a reconnect.
//  - timeout_after_apply: the call reaches the inner store (a write is applied!) but the
//    caller gets kTimeout: the nasty case where the outcome is unknown to the caller.
//  - latency: each call first "sleeps" through the sleep callback; the simulation passes a
//    callback that advances its FakeClock instead of sleeping.
// Thread-safety: as the inner store; the policy is guarded by a mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "dcs/dcs.h"

namespace pgwarden::dcs {

struct FaultPolicy {
  bool unavailable = false;
  bool timeout_after_apply = false;
  Duration latency{0};
};

class FaultyDcs final : public Dcs {
 public:
  using SleepFn = std::function<void(Duration)>;
  // `inner` must outlive this object and its watches. `sleep` defaults to a real sleep.
  explicit FaultyDcs(Dcs& inner, SleepFn sleep = {});

  void SetPolicy(const FaultPolicy& policy);
  FaultPolicy policy() const;
  // Calls that reached the inner store / that got an injected failure.
  int64_t calls_passed() const { return calls_passed_.load(); }
  int64_t calls_failed() const { return calls_failed_.load(); }

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

 private:
  struct Shared {
    mutable std::mutex mu;
    FaultPolicy policy;
  };

  template <typename T, typename Fn>
  Result<T> Call(const char* what, Fn&& fn);

  Dcs& inner_;
  SleepFn sleep_;
  std::shared_ptr<Shared> shared_;
  std::atomic<int64_t> calls_passed_{0};
  std::atomic<int64_t> calls_failed_{0};
};

}  // namespace pgwarden::dcs
