#include "proxy/command.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include "cluster/cluster_store.h"
#include "common/process.h"
#include "config/ha_timing.h"
#include "config/logging.h"
#include "dcs/etcd3/etcd_dcs.h"
#include "proxy/etcd_feed.h"

namespace pgwarden::proxy {

using std::chrono::milliseconds;

ProxyOptions MakeProxyOptions(const config::ProxyConfig& c, milliseconds dcs_ttl) {
  ProxyOptions o;
  o.listen_address = c.listen;
  o.primary_port = c.primary_port;
  o.sync_port = c.sync_port;
  o.async_port = c.async_port;
  o.replica_port = c.replica_port;
  o.status_port = c.status_port;
  auto policy = [](const config::ProxyRoutePolicy& p) {
    return RoutePolicy{p.max_lag, p.fallback_to_primary};
  };
  o.policies.any = policy(c.replica);
  o.policies.sync = policy(c.sync);
  o.policies.async = policy(c.async);
  o.dcs_ttl = dcs_ttl;
  if (c.hold_timeout) o.hold_timeout = *c.hold_timeout;
  if (c.connect_timeout) o.connect_timeout = *c.connect_timeout;
  if (c.unreachable_for) o.unreachable_for = *c.unreachable_for;
  if (c.half_close_timeout) o.half_close_timeout = *c.half_close_timeout;
  if (c.idle_timeout) o.idle_timeout = *c.idle_timeout;
  if (c.stall_timeout) o.stall_timeout = *c.stall_timeout;
  if (c.keepalive_idle) {
    o.keepalive_idle = std::chrono::duration_cast<std::chrono::seconds>(*c.keepalive_idle);
  }
  if (c.buffer_size) o.buffer_size = static_cast<size_t>(*c.buffer_size);
  if (c.listen_backlog) o.listen_backlog = *c.listen_backlog;
  // One bound given: the other, at its default, moves to it (a lone max below the default min,
  // or a lone min above the default max, is what the user meant, not an error).
  if (c.retry_backoff_min) {
    o.retry_backoff_min = *c.retry_backoff_min;
    if (!c.retry_backoff_max)
      o.retry_backoff_max = std::max(o.retry_backoff_max, *c.retry_backoff_min);
  }
  if (c.retry_backoff_max) {
    o.retry_backoff_max = *c.retry_backoff_max;
    if (!c.retry_backoff_min)
      o.retry_backoff_min = std::min(o.retry_backoff_min, *c.retry_backoff_max);
  }
  if (c.max_connect_attempts) o.max_connect_attempts = *c.max_connect_attempts;
  if (c.max_held) o.max_held = static_cast<size_t>(*c.max_held);
  if (c.threads) o.threads = *c.threads;
  return o;
}

namespace {

dcs::EtcdOptions EtcdOptionsFor(const config::ProxyConfig& c, milliseconds request_timeout) {
  dcs::EtcdOptions o;
  for (const config::HostPort& h : c.etcd.hosts) o.endpoints.push_back(h.ToString());
  o.request_timeout = request_timeout;
  o.connect_timeout = std::min<Duration>(milliseconds(500), request_timeout);
  return o;
}

}  // namespace

int RunProxy(const std::string& config_path) {
  auto loaded = config::LoadProxyConfigFile(config_path);
  if (!loaded) {
    std::cerr << "pgwarden proxy: bad configuration:\n" << loaded.error().message << "\n";
    return 2;
  }
  const config::ProxyConfig& cfg = loaded->config;
  if (auto logging = config::StartLogging(cfg.log, "proxy", "pgwarden-proxy.log"); !logging) {
    std::cerr << "pgwarden proxy: " << logging.error().message << "\n";
    return 2;
  }
  for (const auto& w : loaded->warnings) spdlog::warn("{}", w);

  // Signals are taken by one thread with sigtimedwait; every other thread has them blocked.
  const sigset_t set = BlockStopSignals();

  // Three connections: full reads, the periodic contact read, the watch.
  auto read_dcs = dcs::EtcdDcs::Create(EtcdOptionsFor(cfg, milliseconds(2000)));
  auto contact_dcs = dcs::EtcdDcs::Create(EtcdOptionsFor(cfg, milliseconds(1000)));
  auto watch_dcs = dcs::EtcdDcs::Create(EtcdOptionsFor(cfg, milliseconds(2000)));
  for (auto* d : {&read_dcs, &contact_dcs, &watch_dcs}) {
    if (!*d) {
      std::cerr << "pgwarden proxy: etcd3: " << d->error().message << "\n";
      return 2;
    }
  }

  // The freshness rule needs the cluster's ttl (etcd `config`); one bounded read at start.
  std::chrono::seconds ttl = config::HaTiming::kDefaultTtl;
  {
    cluster::ClusterStore store(**read_dcs, cluster::Keys(cfg.dcs_namespace, cfg.scope));
    if (auto read = store.Read(); !read) {
      spdlog::warn("etcd not reachable at start ({}); ttl {} s assumed", read.error().ToString(),
                   ttl.count());
    } else if (auto t = TtlOfView(read->view)) {
      ttl = *t;
    } else {
      spdlog::warn("no valid `config` key in etcd yet; ttl {} s assumed", ttl.count());
    }
  }

  ProxyServer server(MakeProxyOptions(cfg, ttl));
  if (auto r = server.Start(); !r) {
    spdlog::critical("cannot start: {}", r.error().ToString());
    return r.error().code == ErrorCode::kInvalidArgument ? 2 : 1;
  }
  auto port = [](std::optional<uint16_t> p) { return p ? std::to_string(*p) : std::string("-"); };
  spdlog::info(
      "pgwarden proxy for {} on {}: primary {}, sync {}, async {}, replica {}, status {}; "
      "ttl {} s",
      cfg.KeyPrefix(), cfg.listen, port(server.BoundPort(Role::kPrimary)),
      port(server.BoundPort(Role::kSyncReplica)), port(server.BoundPort(Role::kAsyncReplica)),
      port(server.BoundPort(Role::kAnyReplica)), port(server.BoundStatusPort()), ttl.count());

  EtcdFeedOptions fo;
  fo.name_space = cfg.dcs_namespace;
  fo.scope = cfg.scope;
  fo.contact_interval = std::max(milliseconds(100), milliseconds(ttl) / 4);
  TopologySink sink{[&server](std::shared_ptr<const Topology> t) { server.SetTopology(t); },
                    [&server] { server.ReportDcsContact(); }};
  EtcdFeed feed(fo, **read_dcs, **contact_dcs, **watch_dcs, sink);
  feed.Start();

  std::chrono::seconds applied_ttl = ttl;
  timespec tick{0, 200'000'000};
  int ticks = 0;
  while (true) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("signal {}: stopping", sig);
      break;
    }
    if (sig == SIGHUP) spdlog::info("SIGHUP: configuration reload is not implemented; ignored");
    if (++ticks % 25 == 0) {
      if (auto t = feed.LastTtl(); t && *t != applied_ttl) {
        spdlog::warn("the cluster's ttl is now {} s (the proxy uses {} s): restart the proxy",
                     t->count(), applied_ttl.count());
        applied_ttl = *t;
      }
    }
  }
  feed.Stop();
  server.Stop();
  spdlog::info("stopped");
  spdlog::default_logger()->flush();
  return 0;
}

void RegisterCommand(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "proxy", "Run the role-aware TCP proxy (primary / replica ports), fed from etcd");
  auto path = std::make_shared<std::string>();
  sub->add_option("-c,--config", *path, "Proxy configuration file (YAML)")->required();
  sub->callback([path] { std::exit(RunProxy(*path)); });
}

}  // namespace pgwarden::proxy
