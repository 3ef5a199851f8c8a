// A small synchronous HTTP/1.1 client with deadlines, for etcd's JSON gateway.
//
// Boost.Beast/Asio stay inside http_client.cc: this header includes no Boost. Each object
// runs its async operations on a private io_context with run_for(remaining): when a deadline
// passes, the socket is closed and the call returns kTimeout. Plain HTTP only (etcd on
// loopback / a private network); no TLS yet.
//
// Thread-safety: an object is used by one thread at a time, except HttpStream::Interrupt(),
// which any thread may call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace pgwarden::dcs::etcd3 {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const { return host + ":" + std::to_string(port); }
};

// "127.0.0.1:2379", "localhost:2379" or "http://host:port[/]"; kInvalidArgument otherwise
// (https is refused with a clear message).
Result<Endpoint> ParseEndpoint(std::string_view text);

struct HttpResponse {
  int status = 0;
  std::string body;
};

// One keep-alive connection to one endpoint, opened on first use and reopened after an error.
class HttpConnection {
 public:
  HttpConnection(Endpoint endpoint, Duration connect_timeout);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // POSTs `body` (JSON) to `target` and reads the whole answer, by `deadline`.
  // Errors: kUnavailable (cannot connect, connection dropped), kTimeout (deadline passed),
  // kCorrupt (not HTTP). `*request_sent` tells whether any byte of the request may have
  // reached the server: when false, nothing was sent and retrying elsewhere is safe.
  Result<HttpResponse> Post(std::string_view target, std::string_view body, SteadyTime deadline,
                            bool* request_sent);
  void Close();
  const Endpoint& endpoint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One streaming answer (etcd's watch): a POST whose chunked body arrives piece by piece.
class HttpStream {
 public:
  explicit HttpStream(Duration connect_timeout);
  ~HttpStream();
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;

  // Connects, sends the request and reads the response header, by `deadline`. Returns the
  // status; for a status other than 200 the stream is closed again and `body` holds the
  // (bounded) error body for the caller to map.
  Result<HttpResponse> Open(const Endpoint& endpoint, std::string_view target,
                            std::string_view body, SteadyTime deadline);
  bool is_open() const;
  // Returns the next piece of the body, or "" when nothing arrived by `deadline` (the read
  // stays pending, the stream stays open). kUnavailable when the stream ended or broke (the
  // stream is then closed), kCancelled after Interrupt().
  Result<std::string> Read(SteadyTime deadline);
  void Close();
  // From any thread: makes a pending or the next Read() return kCancelled.
  void Interrupt();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgwarden::dcs::etcd3
