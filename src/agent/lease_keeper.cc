#include "agent/lease_keeper.h"

#include <spdlog/spdlog.h>

namespace pgwarden::agent {

LeaseKeeper::LeaseKeeper(std::unique_ptr<dcs::Dcs> dcs, std::chrono::seconds ttl, Duration interval,
                         std::function<void()> on_change, std::function<void()> on_lost)
    : dcs_(std::move(dcs)),
      ttl_(ttl),
      interval_(interval),
      on_change_(std::move(on_change)),
      on_lost_(std::move(on_lost)) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

void LeaseKeeper::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LeaseKeeper::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::StopAndRevoke() {
  Stop();
  int64_t id = lease_id_.exchange(0);
  if (id != 0) {
    if (auto r = dcs_->RevokeLease(id); !r) {
      spdlog::warn("revoking lease {:x}: {}", id, r.error().ToString());
    }
  }
}

core::LeaseFacts LeaseKeeper::Facts() const {
  core::LeaseFacts f;
  f.id = lease_id_.load();
  int64_t ns = last_send_ns_.load();
  if (ns != 0) f.last_confirmed_send = SteadyTime(std::chrono::nanoseconds(ns));
  f.lost = lost_.load();
  return f;
}

void LeaseKeeper::Run() {
  SteadyTime next = SteadyClock::now();
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, next, [this] { return stop_; })) return;
    }
    const SteadyTime sent = SteadyClock::now();
    next = sent + interval_;
    int64_t id = lease_id_.load();
    if (id == 0) {
      auto grant = dcs_->GrantLease(ttl_);
      if (!grant) {
        spdlog::warn("granting a lease: {}", grant.error().ToString());
        next = sent + std::min<Duration>(interval_, milliseconds(200));
        continue;
      }
      last_send_ns_.store(sent.time_since_epoch().count());
      lease_id_.store(grant->id);
      lost_.store(false);
      spdlog::info("lease {:x} granted (ttl {}s)", grant->id, grant->ttl.count());
      on_change_();
      continue;
    }
    auto kept = dcs_->KeepAlive(id);
    if (kept) {
      if (kept->count() > 0) {
        last_send_ns_.store(sent.time_since_epoch().count());
        continue;
      }
    } else if (kept.error().code != ErrorCode::kNotFound) {
      // Unavailable / timeout: try again at the next interval; the fence deadline does not move.
      spdlog::debug("lease keep-alive: {}", kept.error().ToString());
      continue;
    }
    spdlog::warn("lease {:x} is gone at etcd (expired or revoked)", id);
    lost_.store(true);
    last_send_ns_.store(0);
    on_lost_();
    lease_id_.store(0);
    next = SteadyClock::now();
    on_change_();
  }
}

}  // namespace pgwarden::agent
