// pgwarden-proxy-static: ProxyServer with a fixed topology from the command line, for
// benchmarks and manual tests until `pgwarden proxy` is wired to etcd. Not installed.
//
//   pgwarden-proxy-static --listen 127.0.0.1 --primary-port 6000 --replica-port 6001
//                         --status-port 6002 --primary n1=127.0.0.1:5432 --replica
//                         n2=127.0.0.1:5433
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "proxy/proxy_server.h"

using namespace pgwarden;
using namespace pgwarden::proxy;

namespace {

bool ParseBackend(const std::string& arg, Backend* out) {
  const size_t eq = arg.find('=');
  const size_t colon = arg.rfind(':');
  if (eq == std::string::npos || colon == std::string::npos || colon < eq) return false;
  out->name = MemberName(arg.substr(0, eq));
  out->endpoint.host = arg.substr(eq + 1, colon - eq - 1);
  out->endpoint.port = static_cast<uint16_t>(std::atoi(arg.substr(colon + 1).c_str()));
  return out->endpoint.port != 0;
}

}  // namespace

int main(int argc, char** argv) {
  ProxyOptions options;
  options.dcs_ttl = std::chrono::milliseconds(0);  // static topology: no freshness rule
  auto topology = std::make_shared<Topology>();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    const auto port = static_cast<uint16_t>(std::atoi(value.c_str()));
    Backend b;
    if (flag == "--listen") {
      options.listen_address = value;
    } else if (flag == "--primary-port") {
      options.primary_port = port;
    } else if (flag == "--replica-port") {
      options.replica_port = port;
    } else if (flag == "--sync-port") {
      options.sync_port = port;
    } else if (flag == "--async-port") {
      options.async_port = port;
    } else if (flag == "--status-port") {
      options.status_port = port;
    } else if (flag == "--threads") {
      options.threads = std::atoi(value.c_str());
    } else if (flag == "--buffer-size") {
      options.buffer_size = static_cast<size_t>(std::atol(value.c_str()));
    } else if ((flag == "--primary" || flag == "--replica" || flag == "--sync") &&
               ParseBackend(value, &b)) {
      if (flag == "--primary") {
        topology->primary = b;
      } else if (flag == "--sync") {
        topology->sync_replicas.push_back(b);
      } else {
        topology->async_replicas.push_back(b);
      }
    } else {
      std::fprintf(stderr, "bad argument: %s %s\n", flag.c_str(), value.c_str());
      return 2;
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the loop thread inherits the mask
  ProxyServer server(options);
  if (Result<void> r = server.Start(); !r) {
    std::fprintf(stderr, "%s\n", r.error().ToString().c_str());
    return 1;
  }
  server.SetTopology(topology);
  int sig = 0;
  sigwait(&set, &sig);
  server.Stop();
  return 0;
}
