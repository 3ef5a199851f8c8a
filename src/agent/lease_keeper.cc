#include "agent/lease_keeper.h"

#include <spdlog/spdlog.h>

namespace pgwarden::agent {

LeaseKeeper::LeaseKeeper(std::unique_ptr<dcs::Dcs> dcs, std::chrono::seconds ttl, Duration interval,
                         std::function<void()> on_change, std::function<void()> on_lost)
    : dcs_(std::move(dcs)),
      on_change_(std::move(on_change)),
      on_lost_(std::move(on_lost)),
      want_ttl_(ttl),
      interval_(interval),
      want_interval_(interval) {}

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
  std::vector<int64_t> ids;
  {
    std::lock_guard lock(mu_);
    ids = to_revoke_;
    to_revoke_.clear();
    if (current_.id != 0) ids.push_back(current_.id);
    if (successor_.id != 0) ids.push_back(successor_.id);
    current_ = Held{};
    successor_ = Held{};
    UpdateEndLocked();
  }
  for (int64_t id : ids) {
    if (auto r = dcs_->RevokeLease(id); !r && r.error().code != ErrorCode::kNotFound) {
      spdlog::warn("revoking lease {:x}: {}", id, r.error().ToString());
    }
  }
}

void LeaseKeeper::UpdateEndLocked() {
  int64_t end = 0;
  if (current_.id != 0 && current_.send_ns != 0) {
    end = current_.send_ns + std::chrono::nanoseconds(current_.ttl).count();
    if (successor_.id != 0) {
      // The keys may be on either lease (a move in progress): the earlier end counts.
      const int64_t other =
          successor_.send_ns == 0
              ? 0
              : successor_.send_ns + std::chrono::nanoseconds(successor_.ttl).count();
      end = other == 0 ? end : std::min(end, other);
    }
  }
  lease_end_ns_.store(end);
}

core::LeaseFacts LeaseKeeper::Facts(std::chrono::seconds* ttl) const {
  std::lock_guard lock(mu_);
  core::LeaseFacts f;
  f.id = current_.id;
  const int64_t end = lease_end_ns_.load();
  if (end != 0) {
    f.last_confirmed_send =
        SteadyTime(std::chrono::nanoseconds(end - std::chrono::nanoseconds(current_.ttl).count()));
  }
  f.lost = lost_;
  if (ttl) *ttl = current_.ttl.count() > 0 ? current_.ttl : want_ttl_;
  return f;
}

void LeaseKeeper::SetReconnect(std::function<std::unique_ptr<dcs::Dcs>(Duration)> reconnect,
                               Duration current) {
  std::lock_guard lock(mu_);
  reconnect_ = std::move(reconnect);
  timeout_ = current;
  want_timeout_ = current;
}

void LeaseKeeper::SetTiming(std::chrono::seconds ttl, Duration interval, Duration request_timeout) {
  std::lock_guard lock(mu_);
  want_ttl_ = ttl;
  want_interval_ = interval;
  if (request_timeout.count() > 0) want_timeout_ = request_timeout;
  // The lease held now keeps a cadence that fits ITS ttl until the successor is adopted: a
  // slower cadence for a longer ttl would let the current, shorter lease lapse.
  if (current_.id != 0 && ttl != current_.ttl) {
    interval_ = std::min(interval_, interval);
  } else {
    interval_ = interval;
  }
}

std::optional<LeaseKeeper::Successor> LeaseKeeper::PendingSuccessor() const {
  std::lock_guard lock(mu_);
  if (successor_.id == 0 || successor_.send_ns == 0) return std::nullopt;
  return Successor{successor_.id, successor_.ttl};
}

void LeaseKeeper::Adopt(int64_t id) {
  std::lock_guard lock(mu_);
  if (successor_.id != id || id == 0) return;
  if (current_.id != 0) to_revoke_.push_back(current_.id);
  current_ = successor_;
  successor_ = Held{};
  if (current_.ttl == want_ttl_) interval_ = want_interval_;
  UpdateEndLocked();
}

void LeaseKeeper::Abandon(int64_t id) {
  std::lock_guard lock(mu_);
  if (successor_.id != id || id == 0) return;
  to_revoke_.push_back(id);
  successor_ = Held{};
  UpdateEndLocked();
}

void LeaseKeeper::Run() {
  SteadyTime next = SteadyClock::now();
  while (true) {
    Held current, successor;
    std::chrono::seconds want;
    std::vector<int64_t> revoke;
    Duration reconnect_with{};
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, next, [this] { return stop_; })) return;
      if (reconnect_ && timeout_.count() > 0 && want_timeout_.count() > 0) {
        const bool settled = current_.id == 0 || current_.ttl == want_ttl_;
        const Duration use = settled ? want_timeout_ : std::min(timeout_, want_timeout_);
        if (use != timeout_) reconnect_with = use;
      }
      current = current_;
      successor = successor_;
      want = want_ttl_;
      revoke.swap(to_revoke_);
      next = SteadyClock::now() + interval_;
    }
    if (reconnect_with.count() > 0) {
      if (auto fresh = reconnect_(reconnect_with)) {
        dcs_ = std::move(fresh);
        std::lock_guard lock(mu_);
        timeout_ = reconnect_with;
        spdlog::info("lease keep-alive request timeout now {} ms",
                     std::chrono::duration_cast<milliseconds>(reconnect_with).count());
      }
    }
    for (int64_t id : revoke) {
      if (auto r = dcs_->RevokeLease(id); !r && r.error().code != ErrorCode::kNotFound) {
        spdlog::warn("revoking the replaced lease {:x}: {}", id, r.error().ToString());
      } else {
        spdlog::info("replaced lease {:x} revoked", id);
      }
    }
    const SteadyTime sent = SteadyClock::now();
    if (current.id == 0) {
      auto grant = dcs_->GrantLease(want);
      if (!grant) {
        spdlog::warn("granting a lease: {}", grant.error().ToString());
        next = sent + std::min<Duration>(next - sent, milliseconds(200));
        continue;
      }
      {
        std::lock_guard lock(mu_);
        current_ = Held{grant->id, want, sent.time_since_epoch().count()};
        if (want == want_ttl_) interval_ = want_interval_;
        lost_ = false;
        UpdateEndLocked();
      }
      spdlog::info("lease {:x} granted (ttl {}s)", grant->id, grant->ttl.count());
      on_change_();
      continue;
    }
    auto kept = dcs_->KeepAlive(current.id);
    bool gone = false;
    if (kept) {
      if (kept->count() > 0) {
        std::lock_guard lock(mu_);
        if (current_.id == current.id) {
          current_.send_ns = sent.time_since_epoch().count();
          UpdateEndLocked();
        }
      } else {
        gone = true;
      }
    } else if (kept.error().code == ErrorCode::kNotFound) {
      gone = true;
    } else {
      // Unavailable / timeout: try again at the next interval; the fence deadline does not move.
      spdlog::debug("lease keep-alive: {}", kept.error().ToString());
    }
    if (gone) {
      spdlog::warn("lease {:x} is gone at etcd (expired or revoked)", current.id);
      {
        std::lock_guard lock(mu_);
        lost_ = true;
        current_.send_ns = 0;
        UpdateEndLocked();
      }
      on_lost_();
      {
        std::lock_guard lock(mu_);
        current_ = Held{};
        if (successor_.id != 0) to_revoke_.push_back(successor_.id);
        successor_ = Held{};
        UpdateEndLocked();
      }
      next = SteadyClock::now();
      on_change_();
      continue;
    }
    if (successor.id != 0) {
      const SteadyTime s2 = SteadyClock::now();
      auto k2 = dcs_->KeepAlive(successor.id);
      std::lock_guard lock(mu_);
      if (successor_.id == successor.id) {
        if (k2 && k2->count() > 0) {
          successor_.send_ns = s2.time_since_epoch().count();
        } else if (k2 || k2.error().code == ErrorCode::kNotFound) {
          spdlog::warn("successor lease {:x} is gone at etcd", successor.id);
          successor_ = Held{};
        }
        UpdateEndLocked();
      }
    } else if (want != current.ttl) {
      const SteadyTime s2 = SteadyClock::now();
      auto grant = dcs_->GrantLease(want);
      if (!grant) {
        spdlog::warn("granting a lease with the new ttl {}s: {}", want.count(),
                     grant.error().ToString());
        continue;
      }
      {
        std::lock_guard lock(mu_);
        successor_ = Held{grant->id, want, s2.time_since_epoch().count()};
        UpdateEndLocked();
      }
      spdlog::info("ttl {}s -> {}s: successor lease {:x} granted; moving our keys to it",
                   current.ttl.count(), want.count(), grant->id);
      on_change_();
    }
  }
}

}  // namespace pgwarden::agent
