#include "support/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <stdexcept>

namespace pgwarden::testing {
namespace {

bool CanBind(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

uint16_t FreeLoopbackPort() {
  // 20000-29999 sits below Linux's ephemeral range (32768+), so outgoing connections never
  // take a port a test is about to listen on.
  static std::atomic<uint32_t> next = [] {
    std::random_device rd;
    return static_cast<uint32_t>(rd() % 10000);
  }();
  for (int attempt = 0; attempt < 10000; ++attempt) {
    uint16_t port = static_cast<uint16_t>(20000 + (next.fetch_add(7) % 10000));
    if (CanBind(port)) return port;
  }
  throw std::runtime_error("no free loopback port in 20000-29999");
}

}  // namespace pgwarden::testing
