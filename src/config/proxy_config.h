// ProxyConfig: the file of `pgwarden proxy -c proxy.yml`. The proxy finds the cluster in etcd
// exactly as the agents do, so `scope`, `namespace`, `etcd3:` (alias `etcd:`) and `log:` are
// the node config's keys with the same meaning; its own settings live under `proxy:`.
//
// Tuning values are optional: nullopt means "the proxy's default" (proxy::ProxyOptions, which
// docs/proxy.md explains), so the defaults live in one place. Plain data, no yaml-cpp here.
// docs/configuration.md ("The proxy's file") documents every key.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/config.h"

namespace pgwarden::config {

// Routing rules of one replica port.
struct ProxyRoutePolicy {
  std::optional<uint64_t> max_lag;   // bytes; replicas further behind get no new clients
  bool fallback_to_primary = false;  // with no eligible replica, use the primary
  friend bool operator==(const ProxyRoutePolicy&, const ProxyRoutePolicy&) = default;
};

struct ProxyConfig {
  std::string scope;  // required
  std::string dcs_namespace = "/service";
  EtcdConfig etcd;  // at least one host
  LogConfig log;

  // Where the client ports and the status port listen (an IP address).
  std::string listen = "0.0.0.0";
  // Client ports; nullopt: that port is not opened. At least one is required.
  std::optional<uint16_t> primary_port;  // read-write: the primary
  std::optional<uint16_t> replica_port;  // read-only: any replica
  std::optional<uint16_t> sync_port;     // read-only: synchronous replicas
  std::optional<uint16_t> async_port;    // read-only: asynchronous replicas
  std::optional<uint16_t> status_port;   // HTTP GET /status, /metrics
  ProxyRoutePolicy replica;
  ProxyRoutePolicy sync;
  ProxyRoutePolicy async;

  // nullopt: the proxy's default.
  std::optional<std::chrono::milliseconds> hold_timeout;
  std::optional<std::chrono::milliseconds> connect_timeout;
  std::optional<std::chrono::milliseconds> unreachable_for;
  std::optional<std::chrono::milliseconds> half_close_timeout;
  std::optional<std::chrono::milliseconds> idle_timeout;
  std::optional<std::chrono::milliseconds> stall_timeout;
  std::optional<std::chrono::milliseconds> keepalive_idle;
  std::optional<uint64_t> buffer_size;  // bytes
  std::optional<int> listen_backlog;
  // The hold queue's connect retries (docs/proxy.md, "Hold queue"): the pause before a held
  // client probes a failing port again, doubling from min to max; connects per client; clients
  // held at once. Given both, max >= min; given one, the proxy clamps the other to it.
  std::optional<std::chrono::milliseconds> retry_backoff_min;  // > 0
  std::optional<std::chrono::milliseconds> retry_backoff_max;  // > 0
  std::optional<int> max_connect_attempts;                     // >= 1
  std::optional<int64_t> max_held;                             // >= 1
  // Event loops (docs/proxy.md, "Threads").
  std::optional<int> threads;  // 1..64

  // "/service/demo/".
  std::string KeyPrefix() const { return dcs_namespace + "/" + scope + "/"; }
};

struct LoadedProxyConfig {
  ProxyConfig config;
  std::vector<std::string> warnings;
};

// As LoadConfigFile / LoadConfigString: every problem at once, one per line,
// "<file>:<line>:<col>: <key.path>: <what>".
Result<LoadedProxyConfig> LoadProxyConfigFile(const std::string& path);
Result<LoadedProxyConfig> LoadProxyConfigString(std::string_view text,
                                                std::string_view source_name);

// Required keys, port clashes, ranges. Paths as in the YAML ("proxy.primary_port").
std::vector<ConfigProblem> ValidateProxyConfig(const ProxyConfig& config);

}  // namespace pgwarden::config
