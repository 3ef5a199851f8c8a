// The address part of a member's `conn_url` ("postgres://user@10.0.0.1:5432/postgres", as
// Patroni writes it into members/<name>): the one parser the agent, the proxy and the CLI use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgwarden::cluster {

struct ConnAddress {
  std::string host;              // without brackets for IPv6 ("::1")
  std::optional<uint16_t> port;  // nullopt when the URL names none (libpq then uses 5432)
  friend bool operator==(const ConnAddress&, const ConnAddress&) = default;
};

// nullopt when `conn_url` is not "<scheme>://[userinfo@]host[:port][/...][?...]", the host is
// empty, or the port is not a number in 1..65535.
std::optional<ConnAddress> ParseConnUrl(std::string_view conn_url);

}  // namespace pgwarden::cluster
