#include "fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace pgwarden::dcs::testing_support {

FakeHttpServer::FakeHttpServer(Responder respond) : respond_(std::move(respond)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // the kernel picks a free port
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("bind/listen failed");
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

FakeHttpServer::~FakeHttpServer() {
  stop_ = true;
  thread_.join();
  close(listen_fd_);
}

std::string FakeHttpServer::Ok(const std::string& json_body, int status) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
         std::to_string(json_body.size()) + "\r\n\r\n" + json_body;
}

std::string FakeHttpServer::Chunked(const std::string& raw_chunked_body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
         raw_chunked_body;
}

void FakeHttpServer::Serve() {
  // Bounded: polls every 20 ms for the stop flag; one connection at a time.
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Handle(fd);
    close(fd);
  }
}

void FakeHttpServer::Handle(int fd) {
  std::string in;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::size_t header_end = std::string::npos;
  std::size_t want = 0;
  while (std::chrono::steady_clock::now() < deadline && !stop_) {
    if (header_end != std::string::npos && in.size() >= header_end + 4 + want) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return;
    in.append(buf, static_cast<std::size_t>(n));
    if (header_end == std::string::npos) {
      header_end = in.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        auto cl = in.find("Content-Length: ");
        if (cl == std::string::npos) cl = in.find("content-length: ");
        if (cl != std::string::npos && cl < header_end) want = std::stoul(in.substr(cl + 16));
      }
    }
  }
  if (header_end == std::string::npos) return;
  ++requests_;
  const auto sp1 = in.find(' ');
  const auto sp2 = in.find(' ', sp1 + 1);
  const std::string target = in.substr(sp1 + 1, sp2 - sp1 - 1);
  FakeAnswer answer = respond_(target, in.substr(header_end + 4, want));
  std::size_t off = 0;
  while (off < answer.bytes.size()) {
    ssize_t n = write(fd, answer.bytes.data() + off, answer.bytes.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  const auto hold_until = std::chrono::steady_clock::now() + answer.hold;
  while (!stop_ && std::chrono::steady_clock::now() < hold_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace pgwarden::dcs::testing_support
