// A tiny HTTP server on loopback for tests of the etcd client's handling of bad answers.
// Each connection gets one request read (header + Content-Length body), then the raw bytes
// the test's responder returns, then the connection is closed (or kept open for `hold` when
// the responder asks to, to test streaming and deadlines).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace pgwarden::dcs::testing_support {

struct FakeAnswer {
  std::string bytes;                  // written as they are
  std::chrono::milliseconds hold{0};  // keep the connection open this long after
};

class FakeHttpServer {
 public:
  // `respond` gets the request target ("/v3/kv/range") and body.
  using Responder = std::function<FakeAnswer(const std::string& target, const std::string& body)>;
  explicit FakeHttpServer(Responder respond);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }

  // Helpers for answers.
  static std::string Ok(const std::string& json_body, int status = 200);
  static std::string Chunked(const std::string& raw_chunked_body);

 private:
  void Serve();
  void Handle(int fd);

  Responder respond_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace pgwarden::dcs::testing_support
