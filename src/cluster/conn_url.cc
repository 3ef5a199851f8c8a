#include "cluster/conn_url.h"

namespace pgwarden::cluster {

std::optional<ConnAddress> ParseConnUrl(std::string_view conn_url) {
  size_t scheme = conn_url.find("://");
  if (scheme == std::string_view::npos) return std::nullopt;
  std::string_view rest = conn_url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  ConnAddress out;
  std::string_view port_text;
  bool has_port = false;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = std::string(rest.substr(1, close - 1));
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return std::nullopt;
      port_text = rest.substr(close + 2);
      has_port = true;
    }
  } else {
    size_t colon = rest.rfind(':');
    out.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      has_port = true;
    }
  }
  if (out.host.empty()) return std::nullopt;
  if (has_port) {
    if (port_text.empty() || port_text.size() > 5) return std::nullopt;
    uint32_t port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') return std::nullopt;
      port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) return std::nullopt;
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

}  // namespace pgwarden::cluster
