#include "config/ha_timing.h"

#include "config/units.h"

namespace pgwarden::config {

using std::chrono::milliseconds;
using std::chrono::seconds;

HaTiming HaTiming::Resolve(seconds ttl, milliseconds loop_wait, milliseconds retry_timeout,
                           std::optional<milliseconds> keepalive_interval,
                           std::optional<milliseconds> keepalive_timeout) {
  HaTiming t;
  t.ttl = ttl;
  t.loop_wait = loop_wait;
  t.retry_timeout = retry_timeout;
  t.keepalive_interval = keepalive_interval.value_or(DefaultKeepaliveInterval(ttl));
  t.keepalive_timeout = keepalive_timeout.value_or(t.keepalive_interval);
  return t;
}

std::optional<std::string> HaTiming::CheckKeepaliveRule() const {
  const milliseconds ttl_ms = std::chrono::duration_cast<milliseconds>(ttl);
  const milliseconds needed = 2 * keepalive_interval + keepalive_timeout + kFenceMargin;
  if (needed <= ttl_ms) return std::nullopt;
  // What would fit: the smallest whole-second ttl, or the largest interval for this ttl.
  const int64_t min_ttl_s = (needed.count() + 999) / 1000;
  std::string message = "ttl " + FormatDuration(ttl_ms) +
                        " is too short for the keep-alive cadence: 2 x keepalive_interval (" +
                        FormatDuration(keepalive_interval) + ") + keepalive_timeout (" +
                        FormatDuration(keepalive_timeout) + ") + fence margin (" +
                        FormatDuration(kFenceMargin) + ") = " + FormatDuration(needed) +
                        " must not exceed ttl, so that one lost keep-alive does not demote the "
                        "primary; raise ttl to at least " +
                        std::to_string(min_ttl_s) + "s";
  const milliseconds room = ttl_ms - kFenceMargin - keepalive_timeout;
  if (room >= 2 * kMinKeepaliveInterval) {
    message += " or lower pgwarden.keepalive_interval to at most " + FormatDuration(room / 2);
  }
  return message;
}

std::optional<std::string> HaTiming::CheckLoopRule() const {
  const milliseconds ttl_ms = std::chrono::duration_cast<milliseconds>(ttl);
  const milliseconds needed = loop_wait + retry_timeout + kFenceMargin;
  if (needed <= ttl_ms) return std::nullopt;
  const int64_t min_ttl_s = (needed.count() + 999) / 1000;
  return "loop_wait (" + FormatDuration(loop_wait) + ") + retry_timeout (" +
         FormatDuration(retry_timeout) + ") + fence margin (" + FormatDuration(kFenceMargin) +
         ") = " + FormatDuration(needed) + " must not exceed ttl (" + FormatDuration(ttl_ms) +
         "): a leader must finish one HA loop turn and one etcd request before it has to fence "
         "itself; lower loop_wait or retry_timeout, or raise ttl to at least " +
         std::to_string(min_ttl_s) + "s";
}

}  // namespace pgwarden::config
