// HaTiming: the one place where pgwarden's HA timing defaults and the rule that ties them
// together live. Everything else (the YAML/JSON readers, the validator, the agent) reads the
// numbers from here, so tuning failover speed is a change to this file alone.
//
// How a host crash becomes a failover (docs/configuration.md, "Timing"):
//   1. The primary renews its etcd lease (TTL = `ttl`) every `keepalive_interval`, from a path
//      that nothing else blocks; each keep-alive request has a deadline of `keepalive_timeout`.
//   2. The host dies. etcd expires the lease at most `ttl` after the last renewal it received;
//      the leader key, attached to the lease, disappears.
//   3. The replicas watch the leader key, see the delete at once, compare positions, and the
//      best one takes the key and promotes.
// So the worst-case failover is about ttl + (watch + election + pg promote) ~= ttl + 0.5 s.
// The team targets <= 3 s, hence the default ttl of 2 s (etcd's smallest lease TTL with its
// default 100 ms heartbeat / 1 s election timeout is also 2 s: ceil(1.5 x election timeout)).
//
// The rule (enforced; "ttl too short for the keep-alive cadence"):
//     2 * keepalive_interval + keepalive_timeout + kFenceMargin <= ttl
// Why: the primary computes its own deadline from the SEND time `s` of the last keep-alive etcd
// acknowledged: etcd renewed the lease at or after `s`, so the lease lives until at least
// `s + ttl`. The primary must have stopped acting as primary by `s + ttl - kFenceMargin`
// (FenceAfter()). For one lost keep-alive not to cause a demotion, the keep-alive sent at
// `s + K` may fail, and the one sent at `s + 2K` must still be answered (within its timeout D)
// before that deadline: 2K + D <= ttl - kFenceMargin.
// The loop rule (enforced; the decision core's own rule, core::HaConfig::Check()):
//     loop_wait + retry_timeout + kFenceMargin <= ttl
// Why: the lease is renewed outside the HA loop, but the leader must still get one decision turn
// (loop_wait) plus one etcd request or peer probe (retry_timeout) done before it would have to
// fence itself; otherwise it learns it lost the key only after the fact.
// Patroni's rule (loop_wait + 2 * retry_timeout <= ttl) counts two DCS round trips per turn
// because Patroni renews the leader key from its loop; pgwarden's loop renews nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace pgwarden::config {

struct HaTiming {
  // Defaults (bootstrap.dcs / the etcd `config` key).
  static constexpr std::chrono::seconds kDefaultTtl{2};
  static constexpr std::chrono::milliseconds kDefaultLoopWait{500};
  static constexpr std::chrono::milliseconds kDefaultRetryTimeout{1000};
  // keepalive_interval defaults to ttl / kKeepalivesPerTtl (500 ms for the default ttl), and
  // keepalive_timeout to keepalive_interval; both then satisfy the rule for every ttl >= 2 s.
  static constexpr int kKeepalivesPerTtl = 4;

  // Time kept between the primary's own fencing deadline and the earliest lease expiry at
  // etcd: covers the time it takes to stop accepting writes and clock-rate differences.
  static constexpr std::chrono::milliseconds kFenceMargin{500};

  // Limits.
  static constexpr std::chrono::seconds kMinTtl{2};  // etcd's minimum lease TTL by default
  static constexpr std::chrono::seconds kMaxTtl{3600};
  static constexpr std::chrono::milliseconds kMinLoopWait{100};
  static constexpr std::chrono::milliseconds kMinRetryTimeout{100};
  static constexpr std::chrono::milliseconds kMinKeepaliveInterval{100};
  static constexpr std::chrono::milliseconds kMinKeepaliveTimeout{50};

  std::chrono::seconds ttl = kDefaultTtl;  // etcd leases count whole seconds
  std::chrono::milliseconds loop_wait = kDefaultLoopWait;
  std::chrono::milliseconds retry_timeout = kDefaultRetryTimeout;
  std::chrono::milliseconds keepalive_interval = DefaultKeepaliveInterval(kDefaultTtl);
  std::chrono::milliseconds keepalive_timeout = DefaultKeepaliveInterval(kDefaultTtl);

  static constexpr std::chrono::milliseconds DefaultKeepaliveInterval(std::chrono::seconds ttl) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(ttl) / kKeepalivesPerTtl;
  }

  // Builds the effective timing: explicit keep-alive settings win, the others derive from ttl.
  static HaTiming Resolve(std::chrono::seconds ttl, std::chrono::milliseconds loop_wait,
                          std::chrono::milliseconds retry_timeout,
                          std::optional<std::chrono::milliseconds> keepalive_interval,
                          std::optional<std::chrono::milliseconds> keepalive_timeout);

  // How long after SENDING the last keep-alive that etcd acknowledged the primary may go on
  // acting as primary. Past this it must demote (the lease may expire kFenceMargin later).
  std::chrono::milliseconds FenceAfter() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(ttl) - kFenceMargin;
  }

  // nullopt when `2 * keepalive_interval + keepalive_timeout + kFenceMargin <= ttl` holds;
  // otherwise a sentence that says which numbers break it and what would fit.
  std::optional<std::string> CheckKeepaliveRule() const;
  // nullopt when `loop_wait + retry_timeout + kFenceMargin <= ttl` holds; else why not.
  std::optional<std::string> CheckLoopRule() const;

  friend bool operator==(const HaTiming&, const HaTiming&) = default;
};

}  // namespace pgwarden::config
