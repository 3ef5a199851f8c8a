// ProxyOptions::Validate(): kept out of proxy_server.cc so that it compiles without Asio.
#include <arpa/inet.h>

#include <map>
#include <string>
#include <vector>

#include "proxy/proxy_server.h"

namespace pgwarden::proxy {

Result<void> ProxyOptions::Validate() const {
  std::vector<std::string> errors;
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, listen_address.c_str(), &v4) != 1 &&
      inet_pton(AF_INET6, listen_address.c_str(), &v6) != 1) {
    errors.push_back("listen_address '" + listen_address + "' is not an IP address");
  }
  if (!primary_port && !sync_port && !async_port && !replica_port) {
    errors.push_back(
        "no client port configured (primary_port, sync_port, async_port, "
        "replica_port)");
  }
  std::map<uint16_t, std::string> seen;
  auto check_port = [&](const std::optional<uint16_t>& port, const char* name) {
    if (!port || *port == 0) return;
    auto [it, inserted] = seen.emplace(*port, name);
    if (!inserted) {
      errors.push_back(std::string(name) + " " + std::to_string(*port) + " is also " + it->second);
    }
  };
  check_port(primary_port, "primary_port");
  check_port(sync_port, "sync_port");
  check_port(async_port, "async_port");
  check_port(replica_port, "replica_port");
  check_port(status_port, "status_port");
  auto positive = [&](std::chrono::milliseconds d, const char* name) {
    if (d.count() <= 0) errors.push_back(std::string(name) + " must be > 0");
  };
  auto not_negative = [&](std::chrono::milliseconds d, const char* name) {
    if (d.count() < 0) errors.push_back(std::string(name) + " must be >= 0");
  };
  not_negative(hold_timeout, "hold_timeout");
  not_negative(dcs_ttl, "dcs_ttl");
  positive(connect_timeout, "connect_timeout");
  not_negative(unreachable_for, "unreachable_for");
  positive(half_close_timeout, "half_close_timeout");
  not_negative(idle_timeout, "idle_timeout");
  not_negative(stall_timeout, "stall_timeout");
  positive(accept_backoff, "accept_backoff");
  positive(retry_backoff_min, "retry_backoff_min");
  if (retry_backoff_max < retry_backoff_min) {
    errors.push_back("retry_backoff_max must be >= retry_backoff_min");
  }
  if (max_connect_attempts < 1) errors.push_back("max_connect_attempts must be >= 1");
  if (max_held < 1) errors.push_back("max_held must be >= 1");
  if (keepalive_idle.count() < 0) errors.push_back("keepalive_idle must be >= 0");
  if (buffer_size < 1024 || buffer_size > 16 * 1024 * 1024) {
    errors.push_back("buffer_size " + std::to_string(buffer_size) +
                     " must be between 1 KiB and 16 MiB");
  }
  if (threads < 1 || threads > 64) errors.push_back("threads must be between 1 and 64");
  if (listen_backlog <= 0) errors.push_back("listen_backlog must be > 0");
  if (errors.empty()) return Ok();
  std::string message = "proxy options:";
  for (const std::string& e : errors) message += " " + e + ";";
  message.pop_back();
  return Fail(ErrorCode::kInvalidArgument, message);
}

}  // namespace pgwarden::proxy
