// A small HTTP/1.1 server for the REST API, on its own thread.
//
// Boost.Beast/Asio stay inside http_server.cc: this header exposes plain structs so that the
// API layer, the agent and the tests compile without them.
//
// Threading: one thread runs one io_context that accepts, reads, calls the handler and writes.
// The handler runs on that thread, so it must be fast (it reads a published snapshot). A
// handler that has slow work to do (a switchover that polls the DCS) uses the asynchronous form:
// it takes the request, hands it to a worker and calls `respond` later from any thread.
//
// Robustness: header and body sizes are capped, every read and write has a deadline (a client
// that connects and says nothing is dropped after `read_timeout`, a slow-loris client costs one
// connection only), the number of connections is capped, malformed requests get `400` with a
// message saying what was wrong, and no input bytes can crash the server.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace pgwarden::api {

struct HttpRequest {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // as sent, e.g. "/replica?lag=10MB"
  std::string path;    // percent-decoded path without the query, e.g. "/replica"
  std::multimap<std::string, std::string> query;    // percent-decoded key -> value
  std::multimap<std::string, std::string> headers;  // lower-cased name -> value
  std::string body;
  std::string remote_address;  // peer IP address, e.g. "127.0.0.1"
  int version = 11;            // 10 for HTTP/1.0, 11 for HTTP/1.1

  // First value of a header (name is matched case-insensitively), nullptr when absent.
  const std::string* Header(std::string_view name) const;
  // First value of a query parameter, nullptr when absent.
  const std::string* Query(std::string_view key) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";  // empty: no Content-Type header
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string json_text);
};

// The reason phrase of a status code ("Service Unavailable"); "Unknown" for unknown codes.
std::string_view StatusReason(int status);

struct HttpServerOptions {
  // "host:port"; host is an IP address, "localhost", "*" or empty (all interfaces); "[::1]:8008"
  // for IPv6. Port 0 picks a free port (see HttpServer::port()).
  std::string listen = "127.0.0.1:8008";
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  // Deadline for receiving one whole request (headers and body) and for an idle keep-alive
  // connection; also the deadline for writing one response.
  std::chrono::milliseconds read_timeout{10'000};
  // Further connections are answered `503` and closed.
  size_t max_connections = 256;
  // When both are set, POST/PUT/PATCH/DELETE need HTTP basic auth with these (`401` otherwise),
  // like Patroni's restapi.authentication. Safe methods (GET/HEAD/OPTIONS) stay open.
  std::string username;
  std::string password;
  // Value of the `Server` response header.
  std::string server_name = "pgwarden";
};

// Standard base64 (with padding), for basic auth headers.
std::string Base64Encode(std::string_view in);

// Parses "host:port", "[v6]:port", ":port", "*:port". kInvalidArgument on anything else.
Result<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view listen);

// A handler that answers on the server thread.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Called exactly once per request, from any thread, with the response to send.
using HttpResponder = std::function<void(HttpResponse)>;
// A handler that may answer later: it must call `respond` exactly once (dropping it without a
// call leaves the client waiting until it gives up or the server stops).
using AsyncHttpHandler = std::function<void(HttpRequest, HttpResponder respond)>;

// HEAD and OPTIONS responses carry the status line and headers only (HAProxy's
// `option httpchk OPTIONS /primary` reads just the status), whatever body the handler built.
class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  HttpServer(HttpServerOptions options, AsyncHttpHandler handler);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the server thread. kInvalidArgument for a bad listen address,
  // kUnavailable when the address cannot be bound. Call once.
  Result<void> Start();
  // Closes the listener and every connection and joins the thread. Idempotent; a response
  // delivered after Stop() is dropped. Must not be called from a handler (it joins the server
  // thread).
  void Stop();

  // The bound port (useful with port 0); 0 before Start().
  uint16_t port() const;
  // Connections open right now (for tests and metrics).
  size_t open_connections() const;

  class Core;  // the Asio side, defined in http_server.cc

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace pgwarden::api
