// A raw TCP client for the HTTP server tests: sends exact bytes, reads exact responses, and can
// tell whether the server closed the connection. Every read is bounded.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgwarden::api::testing {

class RawClient {
 public:
  explicit RawClient(uint16_t port);
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  // False if the peer has closed or reset the connection.
  bool Send(std::string_view bytes);
  // One response: the header block, then Content-Length bytes of body unless `no_body` (HEAD).
  // Empty when the connection closed or nothing arrived within `timeout`.
  std::string ReadResponse(bool no_body = false,
                           std::chrono::milliseconds timeout = std::chrono::seconds(3));
  // Everything until the server closes (or `timeout`).
  std::string ReadUntilClose(std::chrono::milliseconds timeout = std::chrono::seconds(3));
  // True if the server closes the connection within `timeout` (data before the close is
  // discarded).
  bool ClosedWithin(std::chrono::milliseconds timeout);

 private:
  // Reads into buffer_; false on close or timeout.
  bool Fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;
};

// "HTTP/1.1 200 OK\r\n..." -> 200; 0 when not a status line.
int StatusOf(std::string_view response);
// The body after the header block.
std::string BodyOf(std::string_view response);
// A header's value (case-insensitive name) or "" when absent.
std::string HeaderOf(std::string_view response, std::string_view name);

}  // namespace pgwarden::api::testing
