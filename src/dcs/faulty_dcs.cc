#include "dcs/faulty_dcs.h"

#include <thread>
#include <utility>

namespace pgwarden::dcs {
namespace {

class FaultyWatch final : public Watch {
 public:
  using PolicyFn = std::function<FaultPolicy()>;
  FaultyWatch(std::unique_ptr<Watch> inner, PolicyFn policy, FaultyDcs::SleepFn sleep)
      : inner_(std::move(inner)), policy_(std::move(policy)), sleep_(std::move(sleep)) {}

  Result<WatchBatch> Next(Duration timeout) override {
    FaultPolicy p = policy_();
    if (p.latency > Duration::zero()) sleep_(p.latency);
    if (p.unavailable) {
      // Events stay queued in the inner watch: they arrive once the store is back.
      return Fail(ErrorCode::kUnavailable, "watch: injected fault: DCS unavailable");
    }
    return inner_->Next(timeout);
  }
  void Cancel() override { inner_->Cancel(); }

 private:
  std::unique_ptr<Watch> inner_;
  PolicyFn policy_;
  FaultyDcs::SleepFn sleep_;
};

}  // namespace

FaultyDcs::FaultyDcs(Dcs& inner, SleepFn sleep)
    : inner_(inner), sleep_(std::move(sleep)), shared_(std::make_shared<Shared>()) {
  if (!sleep_) sleep_ = [](Duration d) { std::this_thread::sleep_for(d); };
}

void FaultyDcs::SetPolicy(const FaultPolicy& policy) {
  std::lock_guard lock(shared_->mu);
  shared_->policy = policy;
}

FaultPolicy FaultyDcs::policy() const {
  std::lock_guard lock(shared_->mu);
  return shared_->policy;
}

template <typename T, typename Fn>
Result<T> FaultyDcs::Call(const char* what, Fn&& fn) {
  FaultPolicy p = policy();
  if (p.latency > Duration::zero()) sleep_(p.latency);
  if (p.unavailable) {
    ++calls_failed_;
    return Fail(ErrorCode::kUnavailable, std::string(what) + ": injected fault: DCS unavailable");
  }
  Result<T> result = fn();
  if (p.timeout_after_apply) {
    ++calls_failed_;
    return Fail(ErrorCode::kTimeout,
                std::string(what) + ": injected fault: timed out (the call reached the store)");
  }
  ++calls_passed_;
  return result;
}

Result<RangeResult> FaultyDcs::Get(const std::string& key, bool prefix) {
  return Call<RangeResult>("get", [&] { return inner_.Get(key, prefix); });
}
Result<Revision> FaultyDcs::Put(const std::string& key, const std::string& value, LeaseId lease) {
  return Call<Revision>("put", [&] { return inner_.Put(key, value, lease); });
}
Result<int64_t> FaultyDcs::Delete(const std::string& key, bool prefix) {
  return Call<int64_t>("delete", [&] { return inner_.Delete(key, prefix); });
}
Result<TxnResult> FaultyDcs::Txn(const std::vector<Compare>& compares,
                                 const std::vector<TxnOp>& success,
                                 const std::vector<TxnOp>& failure) {
  return Call<TxnResult>("txn", [&] { return inner_.Txn(compares, success, failure); });
}
Result<LeaseGrant> FaultyDcs::GrantLease(std::chrono::seconds ttl) {
  return Call<LeaseGrant>("lease grant", [&] { return inner_.GrantLease(ttl); });
}
Result<std::chrono::seconds> FaultyDcs::KeepAlive(LeaseId id) {
  return Call<std::chrono::seconds>("lease keep-alive", [&] { return inner_.KeepAlive(id); });
}
Result<void> FaultyDcs::RevokeLease(LeaseId id) {
  return Call<void>("lease revoke", [&] { return inner_.RevokeLease(id); });
}
Result<LeaseStatus> FaultyDcs::LeaseTimeToLive(LeaseId id) {
  return Call<LeaseStatus>("lease time-to-live", [&] { return inner_.LeaseTimeToLive(id); });
}

std::unique_ptr<Watch> FaultyDcs::WatchPrefix(const std::string& prefix, Revision start_revision) {
  // Creating a watch does not fail (the interface has no error for it): a watch created while
  // the store is "unavailable" fails in Next() instead, as a real one does.
  std::shared_ptr<Shared> shared = shared_;
  return std::make_unique<FaultyWatch>(
      inner_.WatchPrefix(prefix, start_revision),
      [shared] {
        std::lock_guard lock(shared->mu);
        return shared->policy;
      },
      sleep_);
}

}  // namespace pgwarden::dcs
