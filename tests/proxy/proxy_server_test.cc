// ProxyServer over real loopback sockets: in-process upstream servers (echo, sink, frozen),
// blocking clients with deadlines. No external programs.
#include "proxy/proxy_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace pgwarden::proxy {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using TestClock = std::chrono::steady_clock;

// --- Sockets ---------------------------------------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    Reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Listens on *port (0: an ephemeral port, written back to *port).
Fd Listen(int backlog, uint16_t* port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = Loopback(*port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  if (::listen(fd.get(), backlog) != 0) return Fd();
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

Fd Connect(uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = Loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Reads one '\n'-terminated line (without it); nullopt on timeout, EOF or error.
std::optional<std::string> ReadLine(int fd, milliseconds timeout = 3000ms) {
  const auto deadline = TestClock::now() + timeout;
  std::string line;
  while (true) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - TestClock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char c;
    if (::recv(fd, &c, 1, 0) != 1) return std::nullopt;
    if (c == '\n') return line;
    line += c;
  }
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// True if the peer closed (EOF or reset) within `timeout`; data that arrives is discarded.
bool ClosedWithin(int fd, milliseconds timeout) {
  const auto deadline = TestClock::now() + timeout;
  char buf[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - TestClock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

// True if nothing arrives and the connection stays open for `d`.
bool SilentFor(int fd, milliseconds d) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(d.count())) == 0;
}

std::string HttpGet(uint16_t port, const std::string& path) {
  Fd fd = Connect(port);
  if (!fd.valid()) return "";
  SendAll(fd.get(), "GET " + path + " HTTP/1.0\r\n\r\n");
  std::string out;
  char buf[4096];
  while (true) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 3000) <= 0) break;
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// --- In-process upstream servers -------------------------------------------------------------

// A backend on 127.0.0.1. kEcho: greets with "<name>\n", echoes every byte, and on EOF
// flushes and closes. kSink: greets, then reads and discards, never closes. kFrozen: listens
// and never accepts (the kernel still completes handshakes up to the backlog), like a host
// whose processes are stopped.
class Upstream {
 public:
  enum class Mode { kEcho, kSink, kFrozen };
  // `port`: 0 for an ephemeral one, or a fixed one (a member that comes back where it was).
  explicit Upstream(std::string name, Mode mode = Mode::kEcho, int backlog = 4096,
                    uint16_t port = 0)
      : name_(std::move(name)), mode_(mode), port_(port) {
    listener_ = Listen(backlog, &port_);
    if (mode_ == Mode::kFrozen) return;
    ::fcntl(listener_.get(), F_SETFL, O_NONBLOCK);
    epoll_ = Fd(::epoll_create1(0));
    Watch(listener_.get(), EPOLLIN);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Upstream() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (auto& [fd, c] : conns_) ::close(fd);
  }
  uint16_t port() const { return port_; }
  const std::string& name() const { return name_; }
  int open() const { return open_; }
  int accepted() const { return accepted_; }
  Backend backend(uint64_t lag = 0) const {
    return Backend{MemberName(name_), Endpoint{"127.0.0.1", port_}, lag, false};
  }
  void StopListening() { listener_.Reset(); }

 private:
  struct Conn {
    std::string out;
    bool eof = false;
  };
  void Watch(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  }
  void Modify(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
  }
  void CloseConn(int fd) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    conns_.erase(fd);
    --open_;
  }
  // Writes what it can; closes after EOF once everything is out. False if the conn is gone.
  bool Flush(int fd, Conn& c) {
    while (!c.out.empty()) {
      ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {
        CloseConn(fd);
        return false;
      }
      c.out.erase(0, static_cast<size_t>(n));
    }
    if (c.eof && c.out.empty() && mode_ == Mode::kEcho) {
      CloseConn(fd);
      return false;
    }
    uint32_t events = (c.eof ? 0u : static_cast<uint32_t>(EPOLLIN)) |
                      (c.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
    Modify(fd, events);
    return true;
  }
  void Loop() {
    epoll_event events[256];
    std::vector<char> buf(64 * 1024);
    while (!stop_) {
      int n = ::epoll_wait(epoll_.get(), events, 256, 20);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listener_.get()) {
          while (true) {
            int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK);
            if (c < 0) break;
            ++accepted_;
            ++open_;
            Conn& conn = conns_[c];
            conn.out = name_ + "\n";
            Watch(c, EPOLLIN);
            Flush(c, conn);
          }
          continue;
        }
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        Conn& c = it->second;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
          if (r < 0 && errno != EAGAIN) {
            CloseConn(fd);
            continue;
          }
          if (r == 0) {
            c.eof = true;
          } else if (r > 0 && mode_ == Mode::kEcho) {
            c.out.append(buf.data(), static_cast<size_t>(r));
          }
        }
        Flush(fd, c);
      }
    }
  }

  std::string name_;
  Mode mode_;
  uint16_t port_;
  Fd listener_;
  Fd epoll_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> open_{0};
  std::atomic<int> accepted_{0};
  std::map<int, Conn> conns_;
};

// --- Fixture ---------------------------------------------------------------------------------

// CPU time (user + system) of this process so far.
double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// A loopback port where nothing listens (bound, then closed): connects are refused.
uint16_t DeadPort() {
  uint16_t port = 0;
  Listen(1, &port).Reset();
  return port;
}

Backend At(const std::string& name, uint16_t port) {
  return Backend{MemberName(name), Endpoint{"127.0.0.1", port}, 0, false};
}

ProxyOptions TestOptions() {
  ProxyOptions o;
  o.listen_address = "127.0.0.1";
  o.primary_port = 0;
  o.sync_port = 0;
  o.async_port = 0;
  o.replica_port = 0;
  o.status_port = 0;
  o.dcs_ttl = 0ms;  // freshness rule off unless a test turns it on
  o.hold_timeout = 3000ms;
  o.connect_timeout = 300ms;
  return o;
}

class ProxyTest : public ::testing::Test {
 protected:
  void StartProxy(ProxyOptions o = TestOptions()) {
    proxy_ = std::make_unique<ProxyServer>(std::move(o));
    Result<void> r = proxy_->Start();
    ASSERT_TRUE(r) << r.error().ToString();
  }
  uint16_t Port(Role r) { return *proxy_->BoundPort(r); }
  void Publish(std::optional<Backend> primary, std::vector<Backend> sync = {},
               std::vector<Backend> async = {}) {
    auto t = std::make_shared<Topology>();
    t->generation = ++generation_;
    t->primary = std::move(primary);
    t->sync_replicas = std::move(sync);
    t->async_replicas = std::move(async);
    proxy_->SetTopology(t);
  }
  // Polls the proxy's status until `pred` holds or `timeout` passes.
  template <typename Pred>
  bool WaitStatus(Pred pred, milliseconds timeout = 3000ms) {
    const auto deadline = TestClock::now() + timeout;
    while (TestClock::now() < deadline) {
      if (pred(proxy_->GetStatus())) return true;
      std::this_thread::sleep_for(5ms);
    }
    return pred(proxy_->GetStatus());
  }
  // A client on `role`'s port that got the greeting of `expected` backend.
  Fd ClientTo(Role role, const std::string& expected) {
    Fd fd = Connect(Port(role));
    EXPECT_TRUE(fd.valid());
    std::optional<std::string> hello = ReadLine(fd.get());
    EXPECT_EQ(hello.value_or("<nothing>"), expected);
    return fd;
  }

  std::unique_ptr<ProxyServer> proxy_;
  uint64_t generation_ = 0;
};

// --- Tests -----------------------------------------------------------------------------------

TEST_F(ProxyTest, BytesPassThroughUnchangedBothWaysWithHalfClose) {
  Upstream a("a");
  StartProxy();
  Publish(a.backend());
  Fd fd = ClientTo(Role::kPrimary, "a");
  std::string payload(8 << 20, '\0');
  std::mt19937_64 rng(42);
  for (size_t i = 0; i + 8 <= payload.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(&payload[i], &v, 8);
  }
  // Send everything, then half-close; the echo server flushes and closes after our EOF, so
  // reading to EOF checks both directions and the propagation of the half-close.
  std::thread sender([&] {
    SendAll(fd.get(), payload);
    ::shutdown(fd.get(), SHUT_WR);
  });
  std::string echoed;
  echoed.reserve(payload.size());
  std::vector<char> buf(1 << 16);
  while (true) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n <= 0) break;
    echoed.append(buf.data(), static_cast<size_t>(n));
  }
  sender.join();
  ASSERT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload) << "payload corrupted in transit";
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) {
    return s.active_sessions == 0 && s.counters.sessions_closed == 1;
  }));
  ProxyStatus s = proxy_->GetStatus();
  EXPECT_EQ(s.counters.bytes_client_to_upstream, payload.size());
  EXPECT_EQ(s.counters.bytes_upstream_to_client, payload.size() + 2);  // + "a\n"
  EXPECT_EQ(s.counters.forwarded[RoleIndex(Role::kPrimary)], 1u);
}

TEST_F(ProxyTest, ManyConcurrentStreamsStayIntact) {
  Upstream r1("r1"), r2("r2");
  StartProxy();
  Publish(std::nullopt, {}, {r1.backend(), r2.backend()});
  constexpr int kClients = 16;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      Fd fd = Connect(Port(Role::kAsyncReplica));
      if (!ReadLine(fd.get())) return;
      std::string msg(100000 + c * 977, static_cast<char>('A' + c));
      std::thread sender([&] { SendAll(fd.get(), msg); });
      std::string got;
      char buf[8192];
      while (got.size() < msg.size()) {
        pollfd p{fd.get(), POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) break;
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
      sender.join();
      if (got == msg) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kClients);
  // Least connections with rotation: both replicas got clients.
  EXPECT_GT(r1.accepted(), 0);
  EXPECT_GT(r2.accepted(), 0);
}

TEST_F(ProxyTest, PrimaryChangeClosesOldSessionsAtOnceAndRoutesNewOnes) {
  Upstream a("a"), b("b"), r("r");
  StartProxy();
  Publish(a.backend(), {}, {r.backend()});
  Fd old1 = ClientTo(Role::kPrimary, "a");
  Fd old2 = ClientTo(Role::kPrimary, "a");
  Fd replica = ClientTo(Role::kAsyncReplica, "r");

  const auto t0 = TestClock::now();
  Publish(b.backend(), {}, {r.backend()});
  EXPECT_TRUE(ClosedWithin(old1.get(), 1000ms));
  EXPECT_TRUE(ClosedWithin(old2.get(), 1000ms));
  EXPECT_LT(TestClock::now() - t0, 500ms);
  Fd fresh = ClientTo(Role::kPrimary, "b");
  // The replica session is untouched and still forwards.
  ASSERT_TRUE(SendAll(replica.get(), "ping\n"));
  EXPECT_EQ(ReadLine(replica.get()).value_or(""), "ping");
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.counters.closed_by_topology == 2; }));
  EXPECT_TRUE(WaitStatus([&](const ProxyStatus&) { return a.open() == 0; }));

  // Same member, new generation: nothing is closed.
  Publish(b.backend(1234), {}, {r.backend()});
  ASSERT_TRUE(SendAll(fresh.get(), "still\n"));
  EXPECT_EQ(ReadLine(fresh.get()).value_or(""), "still");
}

TEST_F(ProxyTest, HeldClientsAreForwardedWhenAPrimaryAppears) {
  Upstream a("a"), b("b");
  StartProxy();
  Publish(a.backend());
  Fd before = ClientTo(Role::kPrimary, "a");
  Publish(std::nullopt);  // switchover in progress: no primary
  EXPECT_TRUE(ClosedWithin(before.get(), 1000ms));
  std::vector<Fd> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(Connect(Port(Role::kPrimary)));
    ASSERT_TRUE(held.back().valid());  // accepted, not refused
  }
  // A client that sends its startup packet while held: the bytes wait, then arrive.
  ASSERT_TRUE(SendAll(held[0].get(), "startup\n"));
  EXPECT_TRUE(SilentFor(held[1].get(), 200ms));
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.held_now == 5; }));
  Publish(b.backend());
  for (Fd& fd : held) EXPECT_EQ(ReadLine(fd.get()).value_or(""), "b");
  EXPECT_EQ(ReadLine(held[0].get()).value_or(""), "startup");
  ProxyStatus s = proxy_->GetStatus();
  EXPECT_EQ(s.held_now, 0u);
  EXPECT_EQ(s.counters.held, 5u);
  EXPECT_EQ(s.counters.hold_released, 5u);
  EXPECT_EQ(s.counters.hold_timeouts, 0u);
}

TEST_F(ProxyTest, HeldClientsAreClosedAfterHoldTimeout) {
  ProxyOptions o = TestOptions();
  o.hold_timeout = 300ms;
  StartProxy(o);
  Publish(std::nullopt);
  const auto t0 = TestClock::now();
  Fd fd = Connect(Port(Role::kPrimary));
  ASSERT_TRUE(fd.valid());
  EXPECT_TRUE(ClosedWithin(fd.get(), 3000ms));
  const auto waited = TestClock::now() - t0;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 2000ms);
  EXPECT_TRUE(WaitStatus(
      [](const ProxyStatus& s) { return s.counters.hold_timeouts == 1 && s.held_now == 0; }));
}

TEST_F(ProxyTest, ReplicaPortsRefuseAtOnceWhenNoMemberHasTheRole) {
  Upstream a("a");
  StartProxy();
  Publish(a.backend());  // no replicas, no fallback
  Fd fd = Connect(Port(Role::kSyncReplica));
  EXPECT_TRUE(ClosedWithin(fd.get(), 1000ms));
  EXPECT_EQ(proxy_->GetStatus().counters.refused[RoleIndex(Role::kSyncReplica)], 1u);
}

TEST_F(ProxyTest, ReplicaPortFallsBackToPrimaryWhenConfigured) {
  Upstream a("a"), lagging("lagging");
  ProxyOptions o = TestOptions();
  o.policies.any.fallback_to_primary = true;
  o.policies.any.max_lag_bytes = 1000;
  o.policies.async.max_lag_bytes = 1000;  // same limit, but no fallback on the async port
  StartProxy(o);
  Publish(a.backend(), {}, {lagging.backend(5000)});
  Fd fd = ClientTo(Role::kAnyReplica, "a");
  Fd refused = Connect(Port(Role::kAsyncReplica));  // the async port has no fallback
  EXPECT_TRUE(ClosedWithin(refused.get(), 1000ms));
}

TEST_F(ProxyTest, ConnectRefusedOnAReplicaFailsOverToTheNext) {
  Upstream r2("r2");
  uint16_t dead_port = 0;
  Listen(1, &dead_port).Reset();  // bound then closed: nothing listens there
  StartProxy();
  Backend dead{MemberName("dead"), Endpoint{"127.0.0.1", dead_port}, 0, false};
  Publish(std::nullopt, {}, {dead, r2.backend()});
  // Whatever the rotation, every client ends on r2.
  for (int i = 0; i < 4; ++i) Fd fd = ClientTo(Role::kAsyncReplica, "r2");
  ProxyStatus s = proxy_->GetStatus();
  EXPECT_GE(s.counters.upstream_connect_failures, 1u);
  bool marked = false;
  for (const MemberStatus& m : s.members) {
    if (m.name == "dead") marked = m.unreachable;
  }
  EXPECT_TRUE(marked);
  // The mark puts it last: no further failed attempt for new clients.
  const uint64_t failures = s.counters.upstream_connect_failures;
  for (int i = 0; i < 4; ++i) Fd fd = ClientTo(Role::kAsyncReplica, "r2");
  EXPECT_EQ(proxy_->GetStatus().counters.upstream_connect_failures, failures);
}

TEST_F(ProxyTest, ConnectTimeoutOnABlackHoleFailsOverToTheNext) {
  // A listener whose accept queue is full drops SYNs: connects to it hang.
  uint16_t hole_port = 0;
  Fd hole = Listen(0, &hole_port);
  std::vector<Fd> fillers;
  for (int i = 0; i < 2; ++i) {
    Fd f(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    sockaddr_in addr = Loopback(hole_port);
    ::connect(f.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(std::move(f));
  }
  std::this_thread::sleep_for(50ms);
  Upstream r2("r2");
  StartProxy();  // connect_timeout 300 ms
  Backend black{MemberName("black"), Endpoint{"127.0.0.1", hole_port}, 0, false};
  Publish(std::nullopt, {}, {black, r2.backend()});
  Fd first = Connect(Port(Role::kAsyncReplica));
  Fd second = Connect(Port(Role::kAsyncReplica));
  EXPECT_EQ(ReadLine(first.get()).value_or(""), "r2");
  EXPECT_EQ(ReadLine(second.get()).value_or(""), "r2");
  EXPECT_GE(proxy_->GetStatus().counters.upstream_connect_timeouts, 1u);
}

TEST_F(ProxyTest, PrimaryConnectInProgressIsReheldWhenThePrimaryChanges) {
  uint16_t hole_port = 0;
  Fd hole = Listen(0, &hole_port);
  Fd filler(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  sockaddr_in addr = Loopback(hole_port);
  ::connect(filler.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  std::this_thread::sleep_for(50ms);
  Upstream b("b");
  ProxyOptions o = TestOptions();
  o.connect_timeout = 5000ms;
  StartProxy(o);
  Publish(Backend{MemberName("old"), Endpoint{"127.0.0.1", hole_port}, 0, false});
  Fd fd = Connect(Port(Role::kPrimary));  // its upstream connect hangs on the black hole
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.active_sessions == 1; }));
  const auto t0 = TestClock::now();
  Publish(b.backend());
  // Nothing reached the old primary, so the client is not closed but sent to the new one.
  EXPECT_EQ(ReadLine(fd.get()).value_or(""), "b");
  EXPECT_LT(TestClock::now() - t0, 1000ms);
  EXPECT_EQ(proxy_->GetStatus().counters.closed_by_topology, 0u);
}

// --- Failed connects hold the client (docs/proxy.md "Failed connects") ---

TEST_F(ProxyTest, RefusedPrimaryConnectHoldsTheClientUntilThePrimaryListensAgain) {
  // The primary's PostgreSQL died; etcd still names it. The client is held, not closed, and
  // gets through as soon as PostgreSQL is back on the same member.
  const uint16_t port = DeadPort();
  StartProxy();
  Publish(At("a", port));
  Fd fd = Connect(Port(Role::kPrimary));
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(SendAll(fd.get(), "startup\n"));  // the client speaks first, as libpq does
  EXPECT_TRUE(SilentFor(fd.get(), 300ms)) << "held: open, and nothing sent to it";
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) {
    return s.held_now == 1 && s.counters.reheld >= 1 && s.counters.upstream_connect_failures >= 1;
  }));
  Upstream a("a", Upstream::Mode::kEcho, 4096, port);  // restarted where it was
  const auto t0 = TestClock::now();
  EXPECT_EQ(ReadLine(fd.get()).value_or(""), "a");
  EXPECT_EQ(ReadLine(fd.get()).value_or(""), "startup") << "bytes sent while held arrive";
  EXPECT_LT(TestClock::now() - t0, 600ms) << "found again within the retry backoff";
  ProxyStatus s = proxy_->GetStatus();
  EXPECT_EQ(s.held_now, 0u);
  EXPECT_EQ(s.counters.hold_timeouts, 0u);
  EXPECT_EQ(s.counters.forwarded[RoleIndex(Role::kPrimary)], 1u);
  // One probe per backoff (100 ms doubling to 250 ms), not a tight loop.
  EXPECT_LE(s.counters.upstream_connect_failures, 8u);
  // The port is up again: the next client goes straight through.
  Fd next = ClientTo(Role::kPrimary, "a");
}

TEST_F(ProxyTest, ClientsHeldOnACrashedPrimaryGoToTheNewOneWithFewConnectAttempts) {
  const uint16_t dead = DeadPort();
  Upstream b("b");
  StartProxy();
  Publish(At("a", dead));
  std::vector<Fd> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(Connect(Port(Role::kPrimary)));
    ASSERT_TRUE(clients.back().valid());
  }
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.held_now == 20; }));
  const double cpu_before = CpuSeconds();
  std::this_thread::sleep_for(700ms);
  // Nothing spins while the clients wait (timers, watches and probes only).
  EXPECT_LT(CpuSeconds() - cpu_before, 0.2);
  ProxyStatus s = proxy_->GetStatus();
  // Once a loop saw the primary refuse, its new clients wait and one probes per backoff: with
  // 2 loops over ~0.8 s that is a handful of attempts, not 20 clients x 8 rounds.
  EXPECT_LE(s.counters.upstream_connect_failures, 24u);
  EXPECT_GE(s.counters.upstream_connect_failures, 2u);
  EXPECT_EQ(s.counters.sessions_closed, 0u);
  // The failover finished: a new primary in etcd releases every held client to it.
  Publish(b.backend());
  for (Fd& fd : clients) EXPECT_EQ(ReadLine(fd.get()).value_or(""), "b");
  s = proxy_->GetStatus();
  EXPECT_EQ(s.held_now, 0u);
  EXPECT_EQ(s.counters.forwarded[RoleIndex(Role::kPrimary)], 20u);
  EXPECT_EQ(s.counters.held, 20u) << "each client counted once however often it was re-held";
}

TEST_F(ProxyTest, AClientThatLeavesWhileHeldIsFreedAtOnce) {
  StartProxy();  // hold_timeout 3 s
  Publish(std::nullopt);
  Fd quiet = Connect(Port(Role::kPrimary));
  Fd talker = Connect(Port(Role::kPrimary));
  ASSERT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.held_now == 2; }));
  const auto t0 = TestClock::now();
  quiet.Reset();
  EXPECT_TRUE(WaitStatus(
      [](const ProxyStatus& s) { return s.held_now == 1 && s.counters.held_gone == 1; }, 1000ms));
  // A client that sent its startup packet and then left: the data did not hide the EOF.
  ASSERT_TRUE(SendAll(talker.get(), "startup\n"));
  std::this_thread::sleep_for(50ms);
  talker.Reset();
  EXPECT_TRUE(WaitStatus(
      [](const ProxyStatus& s) { return s.held_now == 0 && s.counters.held_gone == 2; }, 1000ms));
  // Held after a refused connect, then gone.
  Publish(At("a", DeadPort()));
  Fd reheld = Connect(Port(Role::kPrimary));
  ASSERT_TRUE(WaitStatus(
      [](const ProxyStatus& s) { return s.held_now == 1 && s.counters.reheld >= 1; }, 1000ms));
  reheld.Reset();
  EXPECT_TRUE(WaitStatus(
      [](const ProxyStatus& s) { return s.held_now == 0 && s.counters.held_gone == 3; }, 1000ms));
  EXPECT_LT(TestClock::now() - t0, 2500ms) << "freed long before hold_timeout";
  ProxyStatus s = proxy_->GetStatus();
  EXPECT_EQ(s.counters.hold_timeouts, 0u);
  EXPECT_EQ(s.counters.sessions_closed, 3u);
  EXPECT_EQ(s.active_sessions, 0u);
}

TEST_F(ProxyTest, HoldTimeoutClosesAClientWhosePrimaryNeverAnswers) {
  ProxyOptions o = TestOptions();
  o.hold_timeout = 500ms;
  StartProxy(o);
  Publish(At("a", DeadPort()));
  const auto t0 = TestClock::now();
  Fd fd = Connect(Port(Role::kPrimary));
  ASSERT_TRUE(fd.valid());
  EXPECT_TRUE(ClosedWithin(fd.get(), 3000ms));
  const auto waited = TestClock::now() - t0;
  EXPECT_GE(waited, 450ms);
  EXPECT_LT(waited, 1500ms) << "hold_timeout counts from accept, not from the last retry";
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) {
    return s.counters.hold_timeouts == 1 && s.held_now == 0 && s.active_sessions == 0;
  }));
  EXPECT_LE(proxy_->GetStatus().counters.upstream_connect_failures, 6u);
}

TEST_F(ProxyTest, ReplicaPortHoldsWhenEveryMemberRefusesAndTakesTheOneThatComesBack) {
  const uint16_t p1 = DeadPort(), p2 = DeadPort();
  StartProxy();
  Publish(std::nullopt, {}, {At("r1", p1), At("r2", p2)});
  Fd fd = Connect(Port(Role::kAsyncReplica));
  ASSERT_TRUE(fd.valid());
  EXPECT_TRUE(SilentFor(fd.get(), 300ms)) << "held, not refused";
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) {
    return s.held_now == 1 && s.counters.upstream_connect_failures >= 2;
  }));
  Upstream r2("r2", Upstream::Mode::kEcho, 4096, p2);
  EXPECT_EQ(ReadLine(fd.get(), 2000ms).value_or(""), "r2");
  // A replica that joins the role releases held clients at once, without waiting a backoff.
  Publish(std::nullopt, {At("s1", DeadPort())}, {At("r1", p1), At("r2", p2)});
  std::this_thread::sleep_for(50ms);  // the snapshot is applied on the loops
  Fd fd2 = Connect(Port(Role::kSyncReplica));
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.held_now == 1; }));
  Upstream s2("s2");
  Publish(std::nullopt, {At("s1", DeadPort()), s2.backend()}, {At("r1", p1), At("r2", p2)});
  EXPECT_EQ(ReadLine(fd2.get(), 2000ms).value_or(""), "s2");
}

TEST_F(ProxyTest, HoldQueueAndConnectAttemptsAreBounded) {
  ProxyOptions o = TestOptions();
  o.threads = 1;
  o.max_held = 2;
  o.max_connect_attempts = 3;
  o.hold_timeout = 5000ms;
  StartProxy(o);
  Publish(std::nullopt);
  Fd a = Connect(Port(Role::kPrimary));
  Fd b = Connect(Port(Role::kPrimary));
  ASSERT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.held_now == 2; }));
  Fd c = Connect(Port(Role::kPrimary));
  EXPECT_TRUE(ClosedWithin(c.get(), 1000ms)) << "the queue is full: closed at once";
  EXPECT_EQ(proxy_->GetStatus().counters.hold_full, 1u);
  a.Reset();
  b.Reset();
  ASSERT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.held_now == 0; }));
  // A dead primary and a client alone: it probes itself, 3 attempts, then is closed.
  Publish(At("a", DeadPort()));
  const auto t0 = TestClock::now();
  Fd d = Connect(Port(Role::kPrimary));
  EXPECT_TRUE(ClosedWithin(d.get(), 3000ms));
  EXPECT_LT(TestClock::now() - t0, 1500ms);
  ProxyStatus s = proxy_->GetStatus();
  EXPECT_EQ(s.counters.retries_exhausted, 1u);
  EXPECT_EQ(s.counters.upstream_connect_failures, 3u);
}

TEST_F(ProxyTest, FrozenUpstreamCostsOnlyItsOwnSessions) {
  Upstream a("a");
  Upstream frozen("frozen", Upstream::Mode::kFrozen);
  StartProxy();
  Publish(a.backend(), {}, {frozen.backend()});
  // Clients stuck on the frozen member: connected (the kernel accepted), never answered, and
  // one pushes megabytes that the frozen host never reads.
  std::vector<Fd> stuck;
  for (int i = 0; i < 20; ++i) stuck.push_back(Connect(Port(Role::kAsyncReplica)));
  Fd pusher(::socket(AF_INET, SOCK_STREAM, 0));
  {
    sockaddr_in addr = Loopback(Port(Role::kAsyncReplica));
    ASSERT_EQ(::connect(pusher.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::fcntl(pusher.get(), F_SETFL, O_NONBLOCK);
    std::string chunk(1 << 16, 'x');
    for (int i = 0; i < 200; ++i) ::send(pusher.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
  }
  EXPECT_TRUE(SilentFor(stuck[0].get(), 100ms));
  // Other clients, ports and the status endpoint are served promptly meanwhile.
  const auto t0 = TestClock::now();
  for (int i = 0; i < 20; ++i) {
    Fd fd = ClientTo(Role::kPrimary, "a");
    ASSERT_TRUE(SendAll(fd.get(), "q\n"));
    EXPECT_EQ(ReadLine(fd.get()).value_or(""), "q");
  }
  EXPECT_LT(TestClock::now() - t0, 1000ms);
  const std::string metrics = HttpGet(*proxy_->BoundStatusPort(), "/metrics");
  EXPECT_NE(metrics.find("pgwarden_proxy_active_sessions"), std::string::npos);
}

TEST_F(ProxyTest, HalfClosedSessionToASilentUpstreamTimesOut) {
  Upstream sink("sink", Upstream::Mode::kSink);
  ProxyOptions o = TestOptions();
  o.half_close_timeout = 300ms;
  StartProxy(o);
  Publish(sink.backend());
  Fd fd = ClientTo(Role::kPrimary, "sink");
  ::shutdown(fd.get(), SHUT_WR);  // the upstream never answers nor closes
  const auto t0 = TestClock::now();
  EXPECT_TRUE(ClosedWithin(fd.get(), 3000ms));
  EXPECT_GE(TestClock::now() - t0, 250ms);
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.counters.idle_timeouts == 1; }));
}

TEST_F(ProxyTest, StalledWriteToAFrozenUpstreamTimesOut) {
  Upstream frozen("frozen", Upstream::Mode::kFrozen);
  ProxyOptions o = TestOptions();
  o.stall_timeout = 300ms;
  StartProxy(o);
  Publish(frozen.backend());
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr = Loopback(Port(Role::kPrimary));
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::fcntl(fd.get(), F_SETFL, O_NONBLOCK);
  std::string chunk(1 << 16, 'x');
  for (int i = 0; i < 400; ++i) ::send(fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
  EXPECT_TRUE(WaitStatus(
      [](const ProxyStatus& s) { return s.counters.idle_timeouts == 1 && s.active_sessions == 0; },
      5000ms));
}

TEST_F(ProxyTest, GarbageAndAbruptDisconnectsCostOneSessionEach) {
  Upstream a("a"), r("r");
  ProxyOptions o = TestOptions();
  o.hold_timeout = 5000ms;
  StartProxy(o);
  Publish(a.backend(), {}, {r.backend()});
  std::mt19937 rng(7);
  for (int i = 0; i < 60; ++i) {
    const Role role = i % 2 ? Role::kPrimary : Role::kAsyncReplica;
    Fd fd = Connect(Port(role));
    ASSERT_TRUE(fd.valid());
    std::string garbage(rng() % 5000, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    SendAll(fd.get(), garbage);
    if (i % 3 == 0) {  // reset instead of FIN
      linger l{1, 0};
      ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    if (i % 4 == 0) ::shutdown(fd.get(), SHUT_WR);
  }
  // Also: clients that vanish while held.
  Publish(std::nullopt, {}, {r.backend()});
  for (int i = 0; i < 10; ++i) {
    Fd fd = Connect(Port(Role::kPrimary));
    linger l{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  Publish(a.backend(), {}, {r.backend()});
  EXPECT_TRUE(
      WaitStatus([](const ProxyStatus& s) { return s.active_sessions == 0 && s.held_now == 0; }));
  EXPECT_TRUE(WaitStatus([&](const ProxyStatus&) { return a.open() == 0 && r.open() == 0; }));
  // And the proxy still serves.
  Fd ok = ClientTo(Role::kPrimary, "a");
  ASSERT_TRUE(SendAll(ok.get(), "fine\n"));
  EXPECT_EQ(ReadLine(ok.get()).value_or(""), "fine");
}

long RssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

TEST_F(ProxyTest, AThousandIdleClients) {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 8192) {
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 8192);
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  ASSERT_GE(lim.rlim_cur, 4200u) << "needs ~4,100 descriptors";
  Upstream r1("r1"), r2("r2");
  StartProxy();
  Publish(std::nullopt, {r1.backend()}, {r2.backend()});
  const long rss_before = RssKiB();
  constexpr int kClients = 1000;
  std::vector<Fd> clients;
  clients.reserve(kClients);
  std::map<std::string, int> per_member;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Connect(Port(Role::kAnyReplica)));
    ASSERT_TRUE(clients.back().valid()) << i;
    ++per_member[ReadLine(clients.back().get()).value_or("none")];
  }
  EXPECT_EQ(per_member["r1"] + per_member["r2"], kClients);
  EXPECT_NEAR(per_member["r1"], kClients / 2, 2);  // least connections
  ProxyStatus s = proxy_->GetStatus();
  EXPECT_EQ(s.active_sessions, static_cast<uint64_t>(kClients));
  const long rss_after = RssKiB();
  // Both sides of the test live in this process; the proxy's share is well under this.
  std::printf("RSS growth with %d idle proxied clients (proxy + test servers): %ld KiB\n", kClients,
              rss_after - rss_before);
  // Every one of them still works.
  for (int i = 0; i < kClients; i += 1) ASSERT_TRUE(SendAll(clients[i].get(), "x\n"));
  for (int i = 0; i < kClients; i += 1) ASSERT_EQ(ReadLine(clients[i].get()).value_or(""), "x");
  clients.clear();
  EXPECT_TRUE(WaitStatus([](const ProxyStatus& s) { return s.active_sessions == 0; }, 5000ms));
}

TEST_F(ProxyTest, StaleDcsViewStopsPrimaryRoutingAndFreshContactResumesIt) {
  Upstream a("a"), r("r");
  ProxyOptions o = TestOptions();
  o.dcs_ttl = 300ms;
  StartProxy(o);
  Publish(a.backend(), {}, {r.backend()});
  // Never heard from etcd: the primary is not used yet, clients wait.
  Fd early = Connect(Port(Role::kPrimary));
  EXPECT_TRUE(SilentFor(early.get(), 100ms));
  proxy_->ReportDcsContact();
  EXPECT_EQ(ReadLine(early.get()).value_or(""), "a");
  Fd replica = ClientTo(Role::kAsyncReplica, "r");

  // Contact keeps it fresh...
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(100ms);
    proxy_->ReportDcsContact();
  }
  ASSERT_TRUE(SendAll(early.get(), "alive\n"));
  EXPECT_EQ(ReadLine(early.get()).value_or(""), "alive");
  // ...silence for ttl closes primary sessions and holds new clients; replicas keep working.
  EXPECT_TRUE(ClosedWithin(early.get(), 1500ms));
  Fd held = Connect(Port(Role::kPrimary));
  EXPECT_TRUE(SilentFor(held.get(), 100ms));
  ASSERT_TRUE(SendAll(replica.get(), "r-ok\n"));
  EXPECT_EQ(ReadLine(replica.get()).value_or(""), "r-ok");
  Fd replica2 = ClientTo(Role::kAsyncReplica, "r");
  ProxyStatus s = proxy_->GetStatus();
  EXPECT_FALSE(s.dcs_fresh);
  EXPECT_FALSE(s.primary_usable);
  proxy_->ReportDcsContact();
  EXPECT_EQ(ReadLine(held.get()).value_or(""), "a");
}

TEST_F(ProxyTest, SetPrimaryUsableFalseClosesAndHolds) {
  Upstream a("a");
  StartProxy();
  Publish(a.backend());
  Fd fd = ClientTo(Role::kPrimary, "a");
  proxy_->SetPrimaryUsable(false);
  EXPECT_TRUE(ClosedWithin(fd.get(), 1000ms));
  Fd held = Connect(Port(Role::kPrimary));
  EXPECT_TRUE(SilentFor(held.get(), 100ms));
  proxy_->SetPrimaryUsable(true);
  EXPECT_EQ(ReadLine(held.get()).value_or(""), "a");
}

TEST_F(ProxyTest, StatusEndpointServesJsonAndMetrics) {
  Upstream a("a"), r("r");
  StartProxy();
  Publish(a.backend(), {r.backend()});
  Fd fd = ClientTo(Role::kPrimary, "a");
  const std::string resp = HttpGet(*proxy_->BoundStatusPort(), "/status");
  ASSERT_EQ(resp.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << resp;
  nlohmann::json j = nlohmann::json::parse(resp.substr(resp.find("\r\n\r\n") + 4));
  EXPECT_EQ(j["primary"], "a");
  EXPECT_EQ(j["routes"]["sync"]["candidates"], nlohmann::json({"r"}));
  EXPECT_EQ(j["members"][0]["sessions"], 1);
  EXPECT_EQ(j["counters"]["accepted"]["primary"], 1);
  const std::string metrics = HttpGet(*proxy_->BoundStatusPort(), "/metrics");
  EXPECT_NE(metrics.find("pgwarden_proxy_member_sessions{member=\"a\",role=\"primary\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(HttpGet(*proxy_->BoundStatusPort(), "/nope").find("404"), std::string::npos);
  // Garbage on the status port is a 400, not a crash.
  Fd junk = Connect(*proxy_->BoundStatusPort());
  SendAll(junk.get(), std::string("\x16\x03\x01\x00\x00\r\n\r\n", 9));
  EXPECT_TRUE(ClosedWithin(junk.get(), 2000ms));
}

TEST_F(ProxyTest, AcceptBacksOffWhenOutOfDescriptors) {
  Upstream a("a");
  StartProxy();
  Publish(a.backend());
  // Sockets created before the limit drops; their connects then complete in the kernel while
  // the proxy cannot accept them.
  std::vector<Fd> clients;
  for (int i = 0; i < 8; ++i) clients.emplace_back(::socket(AF_INET, SOCK_STREAM, 0));
  rlimit saved{};
  ::getrlimit(RLIMIT_NOFILE, &saved);
  int highest = 0;
  for (int fd = 0; fd < 65536 && fd < static_cast<int>(saved.rlim_cur); ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) highest = fd;
  }
  // Fill the holes below the highest open descriptor, so that none is left at all.
  std::vector<Fd> fillers;
  while (true) {
    Fd f(::open("/dev/null", O_RDONLY));
    if (!f.valid() || f.get() > highest) break;
    fillers.push_back(std::move(f));
  }
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(highest + 1);  // no descriptor left to allocate
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  for (Fd& c : clients) {
    sockaddr_in addr = Loopback(Port(Role::kPrimary));
    ::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  std::this_thread::sleep_for(500ms);
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  ::setrlimit(RLIMIT_NOFILE, &saved);
  fillers.clear();
  auto cpu_us = [](const rusage& r) {
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000L + r.ru_utime.tv_usec +
           r.ru_stime.tv_usec;
  };
  const long used = cpu_us(after) - cpu_us(before);
  EXPECT_LT(used, 150000) << "accept loop spun while out of descriptors";
  EXPECT_GE(proxy_->GetStatus().counters.accept_errors, 1u);
  // With descriptors back, the waiting clients are served.
  for (Fd& c : clients) EXPECT_EQ(ReadLine(c.get()).value_or(""), "a");
}

TEST_F(ProxyTest, OptionsAreValidated) {
  ProxyOptions o;
  o.listen_address = "not-an-ip";
  o.connect_timeout = 0ms;
  o.buffer_size = 10;
  Result<void> r = o.Validate();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("listen_address"), std::string::npos);
  EXPECT_NE(r.error().message.find("no client port"), std::string::npos);
  EXPECT_NE(r.error().message.find("connect_timeout"), std::string::npos);
  EXPECT_NE(r.error().message.find("buffer_size"), std::string::npos);
  ProxyOptions dup = TestOptions();
  dup.primary_port = 6000;
  dup.replica_port = 6000;
  ASSERT_FALSE(dup.Validate());
  EXPECT_NE(dup.Validate().error().message.find("also primary_port"), std::string::npos);
  ProxyServer server(dup);
  EXPECT_FALSE(server.Start());
}

TEST_F(ProxyTest, PortInUseIsAClearError) {
  uint16_t taken = 0;
  Fd holder = Listen(1, &taken);
  ProxyOptions o = TestOptions();
  o.primary_port = taken;
  ProxyServer server(o);
  Result<void> r = server.Start();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(std::to_string(taken)), std::string::npos);
  EXPECT_NE(r.error().message.find("primary port"), std::string::npos);
}

}  // namespace
}  // namespace pgwarden::proxy
