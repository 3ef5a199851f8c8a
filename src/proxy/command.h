// Registers the `proxy` subcommand on pgwarden's command line: `pgwarden proxy -c proxy.yml`
// loads the file (config/proxy_config.h), starts the data plane (ProxyServer) and feeds it from
// etcd (EtcdFeed) until SIGINT/SIGTERM. Exit status: 0 after a signal, 2 for a bad config,
// 1 when a port cannot be bound.
#pragma once

#include <string>

#include "common/result.h"
#include "config/proxy_config.h"
#include "proxy/proxy_server.h"

namespace CLI {
class App;
}

namespace pgwarden::proxy {

void RegisterCommand(CLI::App& app);

// proxy.yml -> ProxyOptions (tuning keys left out keep ProxyOptions' defaults). `dcs_ttl` is
// the cluster's ttl, read from etcd at start.
ProxyOptions MakeProxyOptions(const config::ProxyConfig& config, std::chrono::milliseconds dcs_ttl);

int RunProxy(const std::string& config_path);

}  // namespace pgwarden::proxy
