// A tiny blocking HTTP/1.1 client for the CLI and for peer probes (GET /patroni of the other
// members during a leader race). Plain http only. Every call is bounded: connect within
// `connect_timeout`, the whole exchange within `timeout`, whatever the peer does.
//
// Thread-safe: each call uses its own io_context and connection (no pooling: probes are rare
// and must not share a stuck connection). Boost stays in http_client.cc.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http_server.h"
#include "common/result.h"

namespace pgwarden::api {

struct HttpClientRequest {
  std::string method = "GET";
  std::string url;  // "http://host:port/path?query"; host may be an IP, "[v6]" or a name
  std::string body;
  std::string content_type = "application/json";  // sent only with a body
  std::vector<std::pair<std::string, std::string>> headers;
  std::string username;  // basic auth when non-empty
  std::string password;
  std::chrono::milliseconds connect_timeout{2000};  // capped by `timeout`
  std::chrono::milliseconds timeout{5000};          // the whole exchange
  size_t max_response_bytes = 8 * 1024 * 1024;
};

// The response of any status: a 503 is an answer, not an error. Errors:
//   kInvalidArgument  bad URL (not http://host:port/...)
//   kUnavailable      name not resolved, connection refused or reset
//   kTimeout          connect or the whole exchange did not finish in time
//   kCorrupt          the peer's answer is not HTTP or is too large
// Name resolution of a host name (not an IP literal) uses the system resolver, which cannot be
// interrupted: a hung DNS server can make the call outlast `timeout`. Use IP addresses in
// api_url for peer probes.
Result<HttpResponse> HttpCall(const HttpClientRequest& request);

Result<HttpResponse> HttpGet(std::string_view url, std::chrono::milliseconds timeout);
Result<HttpResponse> HttpPost(std::string_view url, std::string body,
                              std::chrono::milliseconds timeout);

}  // namespace pgwarden::api
