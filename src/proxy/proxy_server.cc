// The proxy's event loop: listeners, sessions, the hold queue and the status endpoint.
// The only translation unit of the proxy that includes Asio (compiling it is slow).
//
// Forwarding without per-session buffers: a direction of a session first tries a non-blocking
// read into a pooled buffer; with nothing to read it waits for readability (async_wait) and
// holds no buffer. What it read it writes at once, non-blocking; only if the peer cannot take
// it all does the buffer stay with the session until an async write finishes. So an idle
// session costs two sockets and a small object, and a busy one never copies a byte twice.
//
// Edge-triggered epoll hazard: Asio's reactor drops a readiness event that arrives while no
// operation waits on the socket. A direction therefore always reads until the socket is
// drained (short read or EAGAIN) before it waits, and reads first after every write, when
// forwarding starts, and when a held client is released. This relies on each io_context being
// run by one thread (no other thread can consume the event between our read and our wait):
// there are `threads` loops, but a socket belongs to exactly one of them.
#include "proxy/proxy_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <set>
#include <thread>

#include "common/clock.h"

namespace pgwarden::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// ---------------------------------------------------------------------------------------------
// Internals

namespace {

// Forwarding buffers, reused. Keeps a bounded number of free buffers.
class BufferPool {
 public:
  explicit BufferPool(size_t size) : size_(size) {}
  size_t size() const { return size_; }
  std::unique_ptr<char[]> Get() {
    if (free_.empty()) return std::unique_ptr<char[]>(new char[size_]);
    std::unique_ptr<char[]> b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void Put(std::unique_ptr<char[]> b) {
    if (b && free_.size() < kMaxFree) free_.push_back(std::move(b));
  }

 private:
  static constexpr size_t kMaxFree = 64;
  size_t size_;
  std::vector<std::unique_ptr<char[]>> free_;
};

bool IsResourceExhaustion(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory || ec == boost::system::errc::too_many_files_open_in_system;
}

void TuneSocket(tcp::socket& s, std::chrono::seconds keepalive_idle) {
  error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);
  s.non_blocking(true, ignored);
  if (keepalive_idle.count() > 0) {
    s.set_option(asio::socket_base::keep_alive(true), ignored);
    const int fd = s.native_handle();
    const int idle = static_cast<int>(keepalive_idle.count());
    const int interval = std::max(1, idle / 3);
    const int count = 3;
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  }
}

class Session;
class StatusConnection;

}  // namespace

class ProxyServer::Loop {
 public:
  explicit Loop(const ProxyOptions& options)
      : options_(options),
        pool_(options.buffer_size),
        freshness_timer_(io_),
        sweep_timer_(io_),
        retry_timer_(io_),
        resolver_(io_),
        topology_(std::make_shared<const Topology>()) {}

  Result<void> Bind();
  void Run();
  void Shutdown();  // on the loop

  // Called on the loop.
  void ApplyTopology(std::shared_ptr<const Topology> topology);
  void DcsContact();
  void ForcePrimaryUnusable(bool unusable);
  ProxyStatus Snapshot();
  // This loop's snapshot, from another thread (post and wait; direct if the loop is not
  // running). Never call it for a loop from that loop's own thread.
  ProxyStatus SnapshotFromOtherThread();
  // All loops' snapshots merged; on loop 0 (which waits for the others; they never wait for
  // it) or with the loops stopped.
  ProxyStatus AggregateSnapshot();
  // A client accepted by loop 0, handed to this loop (maybe itself).
  void StartSession(Role role, tcp::socket socket);

  // Used by sessions.
  std::vector<RouteTarget> Rank(Role role);
  bool HasUsablePrimary() const { return usable_primary_.has_value(); }
  void AddSession(Session* s) { sessions_.push_front(s); }
  std::list<Session*>::iterator FirstSession() { return sessions_.begin(); }
  void RemoveSession(std::list<Session*>::iterator it) { sessions_.erase(it); }
  std::list<Session*>::iterator AddHeld(Role role, Session* s) {
    auto& q = held_[RoleIndex(role)];
    return q.insert(q.end(), s);
  }
  void RemoveHeld(Role role, std::list<Session*>::iterator it) { held_[RoleIndex(role)].erase(it); }
  bool HoldQueueFull() const { return held_now_ >= max_held_; }
  // Whether a client of `role` may try to connect now. False while the primary port has no
  // usable primary, and while the port is down (its last round of connects all failed) and
  // either a probe is in flight or the backoff has not passed. `probe` is set when the caller
  // would be the port's probe (the port is down and the backoff passed).
  bool MayTry(Role role, bool* probe);
  bool IsPortDown(Role role) const { return gates_[RoleIndex(role)].failures > 0; }
  void StartProbe(Role role, Session* s) { gates_[RoleIndex(role)].probe = s; }
  // The probe `s` (if it is the probe) ended without a verdict (closed, re-held by a topology
  // change): another held client may probe.
  void ProbeEnded(Role role, Session* s);
  // Every candidate of one client failed: the port is down (or stays down) for a backoff.
  void RoundFailed(Role role, Session* s);
  // A connect on `role`'s port succeeded: the port is up, its held clients go (posted).
  void RoundSucceeded(Role role, Session* s);
  // Releases what may go, soon (posted: never re-enters the caller).
  void ScheduleRelease();
  void CountUp(const std::string& member) { ++counts_[member]; }
  void CountDown(const std::string& member);
  void MarkUnreachable(const std::string& member);
  void RegisterStatus(StatusConnection* c) { status_conns_.push_back(c); }
  void UnregisterStatus(StatusConnection* c) { status_conns_.remove(c); }

  const ProxyOptions& options_;
  asio::io_context io_{1};  // run by one thread; other threads only post()
  BufferPool pool_;
  ProxyCounters counters_;
  uint64_t held_now_ = 0;
  uint64_t active_ = 0;
  bool stopping_ = false;
  std::thread thread_;
  std::thread::id loop_thread_id_;
  std::atomic<bool> running_{false};
  size_t index_ = 0;
  std::vector<Loop*> peers_;  // every loop, this one included; set before Start
  size_t next_peer_ = 0;      // round-robin hand-off of accepted clients (loop 0)

  struct Listener {
    Role role;
    tcp::acceptor acceptor;
    asio::steady_timer backoff;
    uint16_t port = 0;
    bool logged_exhaustion = false;
  };
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<tcp::acceptor> status_acceptor_;
  uint16_t status_port_ = 0;

 private:
  void Accept(Listener& l);
  void AcceptStatus();
  void Reevaluate(bool topology_changed);
  bool PrimaryUsableNow(SteadyClock::time_point now) const;
  bool DcsFresh(SteadyClock::time_point now) const;
  void ArmFreshnessTimer();
  void ArmSweep();
  void Sweep();
  void ReleaseHeld();
  void ArmRetry(SteadyClock::time_point at);
  void ResetGatesForChangedCandidates(bool primary_changed);

  // A port whose connects failed, on this loop (docs/proxy.md "Failed connects").
  struct Gate {
    int failures = 0;                  // consecutive failed rounds; 0: the port is up
    SteadyClock::time_point retry_at;  // no probe before this
    Session* probe = nullptr;          // the client trying now, if any
  };

  asio::steady_timer freshness_timer_;
  bool freshness_armed_ = false;
  asio::steady_timer sweep_timer_;
  asio::steady_timer retry_timer_;
  bool retry_armed_ = false;
  SteadyClock::time_point retry_armed_at_;
  bool release_posted_ = false;
  tcp::resolver resolver_;

  std::shared_ptr<const Topology> topology_;
  std::optional<SteadyClock::time_point> dcs_deadline_;
  bool forced_unusable_ = false;
  std::optional<Backend> usable_primary_;

  std::list<Session*> sessions_;          // connecting, forwarding and held sessions
  std::list<Session*> held_[kRoleCount];  // FIFO of held sessions per port; a session leaves
                                          // its queue when it leaves the held state
  Gate gates_[kRoleCount];
  std::vector<std::string> signature_[kRoleCount];  // candidate members, to see them change
  uint64_t max_held_ = 1;                           // per loop
  std::list<StatusConnection*> status_conns_;
  ConnectionCounts counts_;
  std::map<std::string, SteadyClock::time_point> unreachable_until_;
  uint64_t rotation_ = 0;

 public:
  tcp::resolver& resolver() { return resolver_; }
  const std::shared_ptr<const Topology>& topology() const { return topology_; }
  bool PrimaryUsable() const { return usable_primary_.has_value(); }
};

namespace {

using Loop = ProxyServer::Loop;

enum class SessionState { kNew, kHeld, kConnecting, kForwarding, kClosed };

// One client connection and, once connected, its upstream connection. Owned by the handlers
// of its pending operations (shared_from_this); the loop keeps a raw pointer while it is open.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Loop& loop, Role role, tcp::socket client)
      : loop_(loop),
        role_(role),
        client_(std::move(client)),
        upstream_(loop.io_),
        timer_(loop.io_),
        hold_deadline_(SteadyClock::now() + loop.options_.hold_timeout) {
    loop_.AddSession(this);
    self_it_ = loop_.FirstSession();
  }

  void Begin();
  void Release();  // kHeld -> whatever Dispatch() decides
  // kConnecting, and the member it connects to lost its role: back to the hold queue (nothing
  // has been sent upstream yet, so nothing is lost) and routed afresh.
  void Rehold();
  void Close();

  SessionState state() const { return state_; }
  Role role() const { return role_; }
  const std::optional<RouteTarget>& target() const { return target_; }
  // For the sweep: closes the session if one of the forwarding timeouts passed.
  bool TimedOut(SteadyClock::time_point now, const ProxyOptions& o) const;

 private:
  struct Pipe {
    std::unique_ptr<char[]> buf;
    size_t begin = 0;
    size_t end = 0;
    bool eof = false;
    bool writing = false;
    SteadyClock::time_point write_since;
  };

  // Connects if the port may be tried now (Loop::MayTry), else holds; refuses a replica-port
  // client when no member has the role.
  void Dispatch();
  void Hold();
  // Waits for the held client to close (or reset); data it sends is left for forwarding.
  void WatchHeldClient();
  bool ClientGone();
  // kConnecting -> kNew: upstream closed, counts undone, pending handlers stale.
  void LeaveConnecting();
  void ConnectNext();
  void StartConnect(const tcp::endpoint& ep);
  void OnConnectFailed(bool timed_out);
  void StartForwarding();
  void Pump(int d);
  void WaitReadable(int d);
  void WriteRest(int d);
  void OnEof(int d);
  tcp::socket& From(int d) { return d == 0 ? client_ : upstream_; }
  tcp::socket& To(int d) { return d == 0 ? upstream_ : client_; }
  void CountBytes(int d, size_t n) {
    if (d == 0) {
      loop_.counters_.bytes_client_to_upstream += n;
    } else {
      loop_.counters_.bytes_upstream_to_client += n;
    }
  }

  Loop& loop_;
  Role role_;
  SessionState state_ = SessionState::kNew;
  tcp::socket client_;
  tcp::socket upstream_;
  asio::steady_timer timer_;  // hold deadline, then connect deadline
  // Fixed at accept: however often the client is re-held, it waits at most hold_timeout.
  SteadyClock::time_point hold_deadline_;
  std::list<Session*>::iterator self_it_;
  std::list<Session*>::iterator held_it_;  // valid while kHeld
  bool ever_held_ = false;
  bool probe_ = false;  // this client probes a port that is down
  int connect_attempts_ = 0;
  uint64_t hold_epoch_ = 0;  // makes the watch of an earlier hold stale
  std::vector<RouteTarget> candidates_;
  size_t next_candidate_ = 0;
  std::optional<RouteTarget> target_;
  bool counted_ = false;  // target_ counted in the loop's per-member counts
  uint64_t attempt_ = 0;
  bool timed_out_ = false;
  Pipe pipes_[2];
  SteadyClock::time_point last_activity_;
};

void Session::Begin() {
  TuneSocket(client_, loop_.options_.keepalive_idle);
  Dispatch();
}

void Session::Dispatch() {
  bool probe = false;
  if (!loop_.MayTry(role_, &probe)) {
    Hold();
    return;
  }
  candidates_ = loop_.Rank(role_);
  if (candidates_.empty()) {  // a replica port with no member of its role at all
    ++loop_.counters_.refused[RoleIndex(role_)];
    Close();
    return;
  }
  if (probe) {
    probe_ = true;
    loop_.StartProbe(role_, this);
  }
  state_ = SessionState::kConnecting;
  ++loop_.active_;
  next_candidate_ = 0;
  ConnectNext();
}

bool Session::ClientGone() {
  // POLLRDHUP: the client sent its FIN, even when its startup packet is still unread (a peek
  // would see the data and miss the FIN). A PostgreSQL client never half-closes and then
  // waits for an answer, so a FIN from a held client means it left.
  pollfd p{client_.native_handle(), POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void Session::Hold() {
  if (SteadyClock::now() >= hold_deadline_) {
    ++loop_.counters_.hold_timeouts;
    Close();
    return;
  }
  if (loop_.HoldQueueFull()) {
    ++loop_.counters_.hold_full;
    Close();
    return;
  }
  // A client that left while it was connecting (or before it was ever held) goes now; later
  // departures are seen by the watch.
  if (ClientGone()) {
    ++loop_.counters_.held_gone;
    Close();
    return;
  }
  state_ = SessionState::kHeld;
  if (!ever_held_) ++loop_.counters_.held;
  ever_held_ = true;
  ++loop_.held_now_;
  held_it_ = loop_.AddHeld(role_, this);
  timer_.expires_at(hold_deadline_);
  timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->state_ != SessionState::kHeld) return;
    ++self->loop_.counters_.hold_timeouts;
    self->Close();
  });
  WatchHeldClient();
}

void Session::WatchHeldClient() {
  // Readable means data (the startup packet: left in the socket for forwarding) or EOF. The
  // reactor is edge-triggered, so after data we wait for the next edge: more data or the FIN.
  // A client that keeps sending while held wakes us at most until its receive buffer is full.
  const uint64_t epoch = ++hold_epoch_;
  client_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this(), epoch](const error_code& ec) {
                       if (self->state_ != SessionState::kHeld || epoch != self->hold_epoch_) {
                         return;
                       }
                       if (ec || self->ClientGone()) {
                         ++self->loop_.counters_.held_gone;
                         self->Close();
                         return;
                       }
                       self->WatchHeldClient();
                     });
}

void Session::LeaveConnecting() {
  ++attempt_;  // the pending connect / resolve / timer handlers become stale
  if (counted_) loop_.CountDown(target_->backend.name.str());
  counted_ = false;
  target_.reset();
  error_code ignored;
  upstream_.close(ignored);
  --loop_.active_;
  state_ = SessionState::kNew;
}

void Session::Rehold() {
  LeaveConnecting();
  if (probe_) {
    probe_ = false;
    loop_.ProbeEnded(role_, this);
  }
  Hold();
}

void Session::Release() {
  if (state_ != SessionState::kHeld) return;
  loop_.RemoveHeld(role_, held_it_);
  --loop_.held_now_;
  ++loop_.counters_.hold_released;
  state_ = SessionState::kNew;
  ++hold_epoch_;
  timer_.cancel();
  error_code ignored;
  client_.cancel(ignored);  // the hold watch
  Dispatch();
}

void Session::ConnectNext() {
  if (next_candidate_ >= candidates_.size()) {
    // Every candidate failed. Nothing was sent to the client: hold it again, unless it used
    // up its attempts or its time.
    LeaveConnecting();
    probe_ = false;
    loop_.RoundFailed(role_, this);
    if (connect_attempts_ >= loop_.options_.max_connect_attempts) {
      ++loop_.counters_.retries_exhausted;
      Close();
      return;
    }
    ++loop_.counters_.reheld;
    Hold();
    return;
  }
  target_ = candidates_[next_candidate_++];
  ++connect_attempts_;
  loop_.CountUp(target_->backend.name.str());
  counted_ = true;
  const Endpoint& ep = target_->backend.endpoint;
  error_code ec;
  asio::ip::address addr = asio::ip::make_address(ep.host, ec);
  if (!ec) {
    StartConnect(tcp::endpoint(addr, ep.port));
    return;
  }
  // A host name: resolved by Asio's resolver thread; the first address is used.
  const uint64_t attempt = ++attempt_;
  loop_.resolver().async_resolve(
      ep.host, std::to_string(ep.port),
      [self = shared_from_this(), attempt](const error_code& ec,
                                           tcp::resolver::results_type results) {
        if (self->state_ != SessionState::kConnecting || attempt != self->attempt_) return;
        if (ec || results.empty()) {
          self->OnConnectFailed(false);
          return;
        }
        self->StartConnect(results.begin()->endpoint());
      });
}

void Session::StartConnect(const tcp::endpoint& ep) {
  error_code ec;
  upstream_ = tcp::socket(loop_.io_);
  upstream_.open(ep.protocol(), ec);
  if (ec) {
    // Out of descriptors: this client cannot be served now; the others go on.
    spdlog::warn("proxy: cannot open a socket to {}: {}", target_->backend.endpoint.ToString(),
                 ec.message());
    Close();
    return;
  }
  const uint64_t attempt = ++attempt_;
  timed_out_ = false;
  timer_.expires_after(loop_.options_.connect_timeout);
  timer_.async_wait([self = shared_from_this(), attempt](const error_code& ec) {
    if (ec || self->state_ != SessionState::kConnecting || attempt != self->attempt_) return;
    self->timed_out_ = true;
    error_code ignored;
    self->upstream_.close(ignored);  // completes the connect with operation_aborted
  });
  upstream_.async_connect(ep, [self = shared_from_this(), attempt](const error_code& ec) {
    if (self->state_ != SessionState::kConnecting || attempt != self->attempt_) return;
    self->timer_.cancel();
    if (ec) {
      self->OnConnectFailed(self->timed_out_);
      return;
    }
    self->StartForwarding();
  });
}

void Session::OnConnectFailed(bool timed_out) {
  ++loop_.counters_.upstream_connect_failures;
  if (timed_out) ++loop_.counters_.upstream_connect_timeouts;
  const std::string& name = target_->backend.name.str();
  // One line per failing member and round, not per client: a crashed primary with hundreds of
  // clients must not flood the log.
  const spdlog::level::level_enum level =
      loop_.IsPortDown(role_) ? spdlog::level::debug : spdlog::level::info;
  spdlog::log(level, "proxy: {} port: connect to {} ({}) {}", ToString(role_), name,
              target_->backend.endpoint.ToString(), timed_out ? "timed out" : "failed");
  loop_.CountDown(name);
  counted_ = false;
  // The mark ranks a replica last for a while; on the primary it is only shown in the status
  // (the primary port has no other member: its clients are held, see Loop::RoundFailed).
  loop_.MarkUnreachable(name);
  error_code ignored;
  upstream_.close(ignored);
  ConnectNext();
}

void Session::StartForwarding() {
  state_ = SessionState::kForwarding;
  probe_ = false;
  loop_.RoundSucceeded(role_, this);
  ++loop_.counters_.forwarded[RoleIndex(role_)];
  TuneSocket(upstream_, loop_.options_.keepalive_idle);
  last_activity_ = SteadyClock::now();
  Pump(0);
  if (state_ != SessionState::kClosed) Pump(1);
}

void Session::Pump(int d) {
  Pipe& p = pipes_[d];
  const size_t size = loop_.pool_.size();
  // Bounded rounds so that one fast stream cannot starve the other sessions.
  for (int round = 0; round < 8; ++round) {
    if (!p.buf) p.buf = loop_.pool_.Get();
    error_code ec;
    const size_t n = From(d).read_some(asio::buffer(p.buf.get(), size), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      loop_.pool_.Put(std::move(p.buf));
      WaitReadable(d);
      return;
    }
    if (ec == asio::error::eof) {
      loop_.pool_.Put(std::move(p.buf));
      OnEof(d);
      return;
    }
    if (ec) {  // reset by peer and the like: the session is over
      Close();
      return;
    }
    CountBytes(d, n);
    last_activity_ = SteadyClock::now();
    size_t written = To(d).write_some(asio::buffer(p.buf.get(), n), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      written = 0;
      ec.clear();
    }
    if (ec) {
      Close();
      return;
    }
    if (written < n) {
      p.begin = written;
      p.end = n;
      p.writing = true;
      p.write_since = last_activity_;
      WriteRest(d);
      return;
    }
    if (n < size) {  // drained: a new edge will come with new data
      loop_.pool_.Put(std::move(p.buf));
      WaitReadable(d);
      return;
    }
  }
  loop_.pool_.Put(std::move(p.buf));
  asio::post(loop_.io_, [self = shared_from_this(), d] {
    if (self->state_ == SessionState::kForwarding) self->Pump(d);
  });
}

void Session::WaitReadable(int d) {
  From(d).async_wait(tcp::socket::wait_read, [self = shared_from_this(), d](const error_code& ec) {
    if (self->state_ != SessionState::kForwarding) return;
    if (ec) {
      self->Close();
      return;
    }
    self->Pump(d);
  });
}

void Session::WriteRest(int d) {
  Pipe& p = pipes_[d];
  To(d).async_write_some(
      asio::buffer(p.buf.get() + p.begin, p.end - p.begin),
      [self = shared_from_this(), d](const error_code& ec, size_t n) {
        if (self->state_ != SessionState::kForwarding) return;
        if (ec) {
          self->Close();
          return;
        }
        Pipe& p = self->pipes_[d];
        p.begin += n;
        self->last_activity_ = p.write_since = SteadyClock::now();
        if (p.begin < p.end) {
          self->WriteRest(d);
          return;
        }
        p.writing = false;
        self->loop_.pool_.Put(std::move(p.buf));
        self->Pump(d);  // read first: readiness seen during the write was dropped
      });
}

void Session::OnEof(int d) {
  pipes_[d].eof = true;
  error_code ignored;
  To(d).shutdown(tcp::socket::shutdown_send, ignored);
  if (pipes_[1 - d].eof) {
    Close();
    return;
  }
  last_activity_ = SteadyClock::now();  // the half-close timeout counts from here
}

bool Session::TimedOut(SteadyClock::time_point now, const ProxyOptions& o) const {
  if (state_ != SessionState::kForwarding) return false;
  const auto idle = now - last_activity_;
  if ((pipes_[0].eof || pipes_[1].eof) && idle >= o.half_close_timeout) return true;
  if (o.idle_timeout.count() > 0 && idle >= o.idle_timeout) return true;
  if (o.stall_timeout.count() > 0) {
    for (const Pipe& p : pipes_) {
      if (p.writing && now - p.write_since >= o.stall_timeout) return true;
    }
  }
  return false;
}

void Session::Close() {
  if (state_ == SessionState::kClosed) return;
  if (state_ == SessionState::kHeld) {
    --loop_.held_now_;
    loop_.RemoveHeld(role_, held_it_);
  }
  if (probe_) {
    probe_ = false;
    loop_.ProbeEnded(role_, this);
  }
  if (state_ == SessionState::kConnecting || state_ == SessionState::kForwarding) --loop_.active_;
  if (counted_) loop_.CountDown(target_->backend.name.str());
  counted_ = false;
  state_ = SessionState::kClosed;
  error_code ignored;
  client_.close(ignored);
  upstream_.close(ignored);
  timer_.cancel();
  loop_.RemoveSession(self_it_);
  ++loop_.counters_.sessions_closed;
}

// One request on the status port: read the head (at most 8 KiB, 5 s), answer, close.
class StatusConnection : public std::enable_shared_from_this<StatusConnection> {
 public:
  StatusConnection(Loop& loop, tcp::socket socket)
      : loop_(loop), socket_(std::move(socket)), timer_(loop.io_) {
    loop_.RegisterStatus(this);
  }
  void Start() {
    timer_.expires_after(std::chrono::seconds(5));
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec) self->Close();
    });
    Read();
  }
  void Close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
    loop_.UnregisterStatus(this);
  }

 private:
  void Read() {
    socket_.async_read_some(
        asio::buffer(chunk_), [self = shared_from_this()](const error_code& ec, size_t n) {
          if (self->closed_) return;
          if (ec) {
            self->Close();
            return;
          }
          self->head_.append(self->chunk_.data(), n);
          if (self->head_.find("\r\n\r\n") == std::string::npos &&
              self->head_.find("\n\n") == std::string::npos && self->head_.size() < 8192) {
            self->Read();
            return;
          }
          self->Respond();
        });
  }
  void Respond() {
    out_ = SerializeResponse(HandleStatusRequest(head_, loop_.AggregateSnapshot()));
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](const error_code&, size_t) {
                        if (self->closed_) return;
                        error_code ignored;
                        self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
                        self->Close();
                      });
  }

  Loop& loop_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::array<char, 1024> chunk_;
  std::string head_;
  std::string out_;
  bool closed_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Loop

Result<void> Loop::Bind() {
  error_code ec;
  const asio::ip::address addr = asio::ip::make_address(options_.listen_address, ec);
  auto open = [&](tcp::acceptor& acceptor, uint16_t port, std::string_view what) -> Result<void> {
    error_code ec;
    const tcp::endpoint ep(addr, port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(options_.listen_backlog, ec);
    if (!ec) acceptor.non_blocking(true, ec);
    if (ec) {
      return Fail(ErrorCode::kUnavailable, "proxy: cannot listen on " + options_.listen_address +
                                               ":" + std::to_string(port) + " (" +
                                               std::string(what) + "): " + ec.message());
    }
    return Ok();
  };
  const std::pair<Role, std::optional<uint16_t>> ports[] = {
      {Role::kPrimary, options_.primary_port},
      {Role::kSyncReplica, options_.sync_port},
      {Role::kAsyncReplica, options_.async_port},
      {Role::kAnyReplica, options_.replica_port}};
  for (const auto& [role, port] : ports) {
    if (!port) continue;
    auto l = std::unique_ptr<Listener>(
        new Listener{role, tcp::acceptor(io_), asio::steady_timer(io_), 0, false});
    Result<void> r = open(l->acceptor, *port, std::string(ToString(role)) + " port");
    if (!r) return r;
    l->port = l->acceptor.local_endpoint().port();
    listeners_.push_back(std::move(l));
  }
  if (options_.status_port) {
    status_acceptor_ = std::make_unique<tcp::acceptor>(io_);
    Result<void> r = open(*status_acceptor_, *options_.status_port, "status port");
    if (!r) return r;
    status_port_ = status_acceptor_->local_endpoint().port();
  }
  return Ok();
}

void Loop::Run() {
  max_held_ = std::max<uint64_t>(1, (options_.max_held + peers_.size() - 1) / peers_.size());
  for (auto& l : listeners_) Accept(*l);
  if (status_acceptor_) AcceptStatus();
  if (options_.dcs_ttl.count() > 0) spdlog::info("proxy: no primary until etcd is heard from");
  ArmSweep();
  io_.run();
}

void Loop::Shutdown() {
  stopping_ = true;
  error_code ignored;
  for (auto& l : listeners_) {
    l->acceptor.close(ignored);
    l->backoff.cancel();
  }
  if (status_acceptor_) status_acceptor_->close(ignored);
  freshness_timer_.cancel();
  sweep_timer_.cancel();
  retry_timer_.cancel();
  resolver_.cancel();
  while (!sessions_.empty()) sessions_.front()->Close();
  while (!status_conns_.empty()) status_conns_.front()->Close();
}

void Loop::Accept(Listener& l) {
  l.acceptor.async_accept([this, &l](const error_code& ec, tcp::socket socket) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      ++counters_.accept_errors;
      if (IsResourceExhaustion(ec)) {
        // Out of descriptors: pending clients stay in the backlog; retry after a pause
        // instead of spinning on an accept() that fails at once.
        if (!l.logged_exhaustion) {
          spdlog::warn("proxy: {} port: accept failed: {}; retrying every {} ms", ToString(l.role),
                       ec.message(), options_.accept_backoff.count());
          l.logged_exhaustion = true;
        }
        l.backoff.expires_after(options_.accept_backoff);
        l.backoff.async_wait([this, &l](const error_code& ec) {
          if (!ec && !stopping_) Accept(l);
        });
        return;
      }
      Accept(l);
      return;
    }
    l.logged_exhaustion = false;
    Loop* target = peers_[next_peer_++ % peers_.size()];
    if (target == this) {
      StartSession(l.role, std::move(socket));
    } else {
      // Hand the descriptor to the other loop; the session lives there for good.
      error_code ec;
      const tcp::endpoint local = socket.local_endpoint(ec);
      const int fd = ec ? -1 : socket.release(ec);
      if (fd >= 0 && !ec) {
        asio::post(target->io_, [target, role = l.role, protocol = local.protocol(), fd] {
          tcp::socket s(target->io_);
          error_code ec;
          if (!target->stopping_) s.assign(protocol, fd, ec);
          if (target->stopping_ || ec) {
            ::close(fd);
            return;
          }
          target->StartSession(role, std::move(s));
        });
      }
    }
    Accept(l);
  });
}

void Loop::StartSession(Role role, tcp::socket socket) {
  ++counters_.accepted[RoleIndex(role)];
  std::make_shared<Session>(*this, role, std::move(socket))->Begin();
}

ProxyStatus Loop::SnapshotFromOtherThread() {
  if (!running_) return Snapshot();
  std::promise<ProxyStatus> promise;
  std::future<ProxyStatus> future = promise.get_future();
  asio::post(io_, [this, &promise] { promise.set_value(Snapshot()); });
  return future.get();
}

ProxyStatus Loop::AggregateSnapshot() {
  ProxyStatus total = Snapshot();
  for (Loop* peer : peers_) {
    if (peer != this) MergeInto(total, peer->SnapshotFromOtherThread());
  }
  return total;
}

void Loop::AcceptStatus() {
  status_acceptor_->async_accept([this](const error_code& ec, tcp::socket socket) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      asio::post(io_, [this] {
        if (!stopping_) AcceptStatus();
      });
      return;
    }
    std::make_shared<StatusConnection>(*this, std::move(socket))->Start();
    AcceptStatus();
  });
}

bool Loop::DcsFresh(SteadyClock::time_point now) const {
  if (options_.dcs_ttl.count() == 0) return true;
  return dcs_deadline_ && now < *dcs_deadline_;
}

bool Loop::PrimaryUsableNow(SteadyClock::time_point now) const {
  return topology_->primary && !forced_unusable_ && DcsFresh(now);
}

void Loop::ApplyTopology(std::shared_ptr<const Topology> topology) {
  if (stopping_) return;
  topology_ = topology ? std::move(topology) : std::make_shared<const Topology>();
  Reevaluate(true);
}

void Loop::DcsContact() {
  if (stopping_ || options_.dcs_ttl.count() == 0) return;
  const auto now = SteadyClock::now();
  const bool was_fresh = DcsFresh(now);
  dcs_deadline_ = now + options_.dcs_ttl;
  if (!freshness_armed_) ArmFreshnessTimer();
  if (!was_fresh) {
    spdlog::info("proxy: etcd view is fresh again");
    Reevaluate(false);
  }
}

void Loop::ArmFreshnessTimer() {
  freshness_armed_ = true;
  freshness_timer_.expires_at(*dcs_deadline_);
  freshness_timer_.async_wait([this](const error_code& ec) {
    freshness_armed_ = false;
    if (ec || stopping_) return;
    if (SteadyClock::now() < *dcs_deadline_) {  // contact since the timer was armed: wait more
      ArmFreshnessTimer();
      return;
    }
    spdlog::warn("proxy: no contact with etcd for {} ms: not routing to the primary",
                 options_.dcs_ttl.count());
    Reevaluate(false);
  });
}

void Loop::ForcePrimaryUnusable(bool unusable) {
  if (stopping_ || forced_unusable_ == unusable) return;
  forced_unusable_ = unusable;
  Reevaluate(false);
}

void Loop::Reevaluate(bool topology_changed) {
  const bool usable = PrimaryUsableNow(SteadyClock::now());
  std::optional<Backend> primary = UsablePrimary(*topology_, usable);
  const bool changed = PrimaryChanged(usable_primary_, primary);
  if (changed) {
    spdlog::info("proxy: primary {} -> {} (topology generation {})",
                 usable_primary_ ? usable_primary_->name.str() : "none",
                 primary ? primary->name.str() : "none", topology_->generation);
  }
  usable_primary_ = std::move(primary);
  if (changed || topology_changed) ResetGatesForChangedCandidates(changed);
  if (changed || topology_changed) {
    std::vector<Session*> doomed;
    for (Session* s : sessions_) {
      if ((s->state() == SessionState::kConnecting || s->state() == SessionState::kForwarding) &&
          s->target() && !SessionStillValid(s->role(), *s->target(), *topology_, usable)) {
        doomed.push_back(s);
      }
    }
    // Closing never destroys a session synchronously (its handlers own it), so the raw
    // pointers stay valid through this loop.
    for (Session* s : doomed) {
      if (s->state() == SessionState::kConnecting) {  // nothing sent yet: route it afresh
        s->Rehold();
        continue;
      }
      ++counters_.closed_by_topology;
      s->Close();
    }
    if (!doomed.empty()) {
      spdlog::info("proxy: closed {} sessions to members that lost their role", doomed.size());
    }
  }
  ReleaseHeld();
}

void Loop::ResetGatesForChangedCandidates(bool primary_changed) {
  if (primary_changed) gates_[RoleIndex(Role::kPrimary)] = Gate{};
  // A replica port that is down comes up when its candidate members change (a replica came
  // back or joined): held clients should try it now rather than after the backoff.
  for (Role role : {Role::kSyncReplica, Role::kAsyncReplica, Role::kAnyReplica}) {
    RouteContext ctx{usable_primary_.has_value(), nullptr, nullptr, 0};
    std::vector<std::string> sig;
    for (const RouteTarget& t : RankCandidates(role, *topology_, options_.policies, ctx)) {
      sig.push_back(t.backend.name.str() + "@" + t.backend.endpoint.ToString());
    }
    std::sort(sig.begin(), sig.end());
    const size_t i = RoleIndex(role);
    if (sig != signature_[i]) {
      signature_[i] = std::move(sig);
      gates_[i] = Gate{};
    }
  }
}

bool Loop::MayTry(Role role, bool* probe) {
  *probe = false;
  if (role == Role::kPrimary && !usable_primary_) return false;
  const Gate& g = gates_[RoleIndex(role)];
  if (g.failures == 0) return true;
  if (g.probe != nullptr || SteadyClock::now() < g.retry_at) return false;
  *probe = true;
  return true;
}

void Loop::ProbeEnded(Role role, Session* s) {
  Gate& g = gates_[RoleIndex(role)];
  if (g.probe != s) return;
  g.probe = nullptr;
  ScheduleRelease();
}

void Loop::RoundFailed(Role role, Session* s) {
  Gate& g = gates_[RoleIndex(role)];
  if (g.probe == s) g.probe = nullptr;
  // A round that started before the port went down (many clients connecting to a primary that
  // just crashed) fails while a later probe may be out: it does not push the retry further.
  if (g.failures > 0 && SteadyClock::now() < g.retry_at) return;
  if (g.failures == 0) {
    spdlog::warn("proxy: {} port: no member reachable; holding its clients (up to {} ms)",
                 ToString(role), options_.hold_timeout.count());
  }
  ++g.failures;
  auto backoff = options_.retry_backoff_min;
  for (int i = 1; i < g.failures && backoff < options_.retry_backoff_max; ++i) backoff *= 2;
  backoff = std::min(backoff, options_.retry_backoff_max);
  g.retry_at = SteadyClock::now() + backoff;
  ArmRetry(g.retry_at);
}

void Loop::RoundSucceeded(Role role, Session* s) {
  Gate& g = gates_[RoleIndex(role)];
  if (g.failures > 0) {
    spdlog::info("proxy: {} port: {} reachable again; releasing {} held clients", ToString(role),
                 s->target() ? s->target()->backend.name.str() : "member",
                 held_[RoleIndex(role)].size());
  }
  g = Gate{};
  if (s->target()) unreachable_until_.erase(s->target()->backend.name.str());
  if (!held_[RoleIndex(role)].empty()) ScheduleRelease();
}

void Loop::ScheduleRelease() {
  if (release_posted_ || stopping_) return;
  release_posted_ = true;
  asio::post(io_, [this] {
    release_posted_ = false;
    if (!stopping_) ReleaseHeld();
  });
}

void Loop::ArmRetry(SteadyClock::time_point at) {
  if (stopping_ || (retry_armed_ && retry_armed_at_ <= at)) return;
  retry_armed_ = true;
  retry_armed_at_ = at;
  retry_timer_.expires_at(at);  // cancels an earlier wait, whose handler then does nothing
  retry_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_) return;
    retry_armed_ = false;
    ReleaseHeld();
  });
}

void Loop::ReleaseHeld() {
  if (stopping_) return;
  for (Role role : kAllRoles) {
    auto& q = held_[RoleIndex(role)];
    // Each Release() takes the session off the queue, and only while MayTry() holds, so a
    // released client is not held again within this loop; the bound is a belt.
    for (size_t n = q.size(); n > 0 && !q.empty(); --n) {
      bool probe = false;
      if (!MayTry(role, &probe)) break;
      Session* s = q.front();
      s->Release();
    }
    // Clients still held behind a backoff get a timer. Only for a backoff in the future: any
    // other reason to wait (no usable primary, a probe out) ends with an event that releases
    // again, and a timer for a past time would spin.
    const Gate& g = gates_[RoleIndex(role)];
    if (!q.empty() && g.failures > 0 && g.probe == nullptr && g.retry_at > SteadyClock::now()) {
      ArmRetry(g.retry_at);
    }
  }
}

std::vector<RouteTarget> Loop::Rank(Role role) {
  const auto now = SteadyClock::now();
  std::set<std::string> marked;
  for (auto it = unreachable_until_.begin(); it != unreachable_until_.end();) {
    if (it->second <= now) {
      it = unreachable_until_.erase(it);
    } else {
      marked.insert(it->first);
      ++it;
    }
  }
  RouteContext ctx{usable_primary_.has_value(), &counts_, &marked, rotation_++};
  return RankCandidates(role, *topology_, options_.policies, ctx);
}

void Loop::CountDown(const std::string& member) {
  auto it = counts_.find(member);
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

void Loop::MarkUnreachable(const std::string& member) {
  if (options_.unreachable_for.count() == 0) return;
  const auto until = SteadyClock::now() + options_.unreachable_for;
  unreachable_until_[member] = until;
  for (Loop* peer : peers_) {  // every loop skips the member, not only the one that failed
    if (peer == this) continue;
    asio::post(peer->io_, [peer, member, until] {
      auto& u = peer->unreachable_until_[member];
      u = std::max(u, until);
    });
  }
}

void Loop::ArmSweep() {
  // Forwarding timeouts are checked by one periodic sweep, not a timer per session: cheap with
  // thousands of sessions, at a resolution of a quarter of the shortest timeout (<= 1 s).
  auto period = options_.half_close_timeout;
  if (options_.idle_timeout.count() > 0) period = std::min(period, options_.idle_timeout);
  if (options_.stall_timeout.count() > 0) period = std::min(period, options_.stall_timeout);
  period = std::clamp(period / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  sweep_timer_.expires_after(period);
  sweep_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_) return;
    Sweep();
    ArmSweep();
  });
}

void Loop::Sweep() {
  const auto now = SteadyClock::now();
  std::vector<Session*> expired;
  for (Session* s : sessions_) {
    if (s->TimedOut(now, options_)) expired.push_back(s);
  }
  for (Session* s : expired) {
    ++counters_.idle_timeouts;
    s->Close();
  }
}

ProxyStatus Loop::Snapshot() {
  const auto now = SteadyClock::now();
  ProxyStatus st;
  st.generation = topology_->generation;
  st.dcs_fresh = DcsFresh(now);
  st.primary_usable = usable_primary_.has_value();
  if (usable_primary_) st.primary = usable_primary_->name.str();
  for (const auto& l : listeners_) {
    PortStatus p;
    p.role = l->role;
    p.port = l->port;
    std::set<std::string> marked;
    for (const auto& [name, until] : unreachable_until_) {
      if (until > now) marked.insert(name);
    }
    RouteContext ctx{usable_primary_.has_value(), &counts_, &marked, 0};
    for (const RouteTarget& t : RankCandidates(l->role, *topology_, options_.policies, ctx)) {
      p.candidates.push_back(t.backend.name.str());
    }
    st.ports.push_back(std::move(p));
  }
  std::set<std::string> listed;
  auto add = [&](const Backend& b, const char* role) {
    MemberStatus m;
    m.name = b.name.str();
    m.endpoint = b.endpoint.ToString();
    m.role = role;
    m.lag_bytes = b.lag_bytes;
    m.noloadbalance = b.noloadbalance;
    auto c = counts_.find(m.name);
    m.sessions = c == counts_.end() ? 0 : c->second;
    auto u = unreachable_until_.find(m.name);
    m.unreachable = u != unreachable_until_.end() && u->second > now;
    listed.insert(m.name);
    st.members.push_back(std::move(m));
  };
  if (topology_->primary) add(*topology_->primary, "primary");
  for (const Backend& b : topology_->sync_replicas) add(b, "sync");
  for (const Backend& b : topology_->async_replicas) add(b, "async");
  for (const auto& [name, n] : counts_) {  // sessions to members that left the topology
    if (listed.count(name)) continue;
    MemberStatus m;
    m.name = name;
    m.sessions = n;
    st.members.push_back(std::move(m));
  }
  st.active_sessions = active_;
  st.held_now = held_now_;
  st.counters = counters_;
  return st;
}

// ---------------------------------------------------------------------------------------------
// ProxyServer

ProxyServer::ProxyServer(ProxyOptions options) : options_(std::move(options)) {
  const int threads = std::clamp(options_.threads, 1, 64);
  for (int i = 0; i < threads; ++i) {
    loops_.push_back(std::make_unique<Loop>(options_));
    loops_.back()->index_ = static_cast<size_t>(i);
  }
  for (auto& loop : loops_) {
    for (auto& peer : loops_) loop->peers_.push_back(peer.get());
  }
}

ProxyServer::~ProxyServer() { Stop(); }

Result<void> ProxyServer::Start() {
  if (loops_[0]->running_ || loops_[0]->thread_.joinable()) {
    return Fail(ErrorCode::kInvalidArgument, "proxy: Start() called twice");
  }
  if (Result<void> v = options_.Validate(); !v) return v;
  // Loop 0 owns the listening sockets and hands accepted clients out round-robin.
  if (Result<void> b = loops_[0]->Bind(); !b) return b;
  for (auto& loop : loops_) {
    Loop* l = loop.get();
    l->running_ = true;
    std::promise<void> started;
    std::future<void> started_future = started.get_future();
    l->thread_ = std::thread([l, &started] {
      const std::string name = "pgw-proxy-" + std::to_string(l->index_);
      pthread_setname_np(pthread_self(), name.c_str());
      l->loop_thread_id_ = std::this_thread::get_id();
      started.set_value();
      l->Run();
    });
    started_future.wait();
  }
  for (const auto& l : loops_[0]->listeners_) {
    spdlog::info("proxy: {} port listening on {}:{} ({} threads)", ToString(l->role),
                 options_.listen_address, l->port, loops_.size());
  }
  return Ok();
}

void ProxyServer::Stop() {
  // Loop 0 first: it may be waiting for the others (status), never the other way round.
  for (auto& loop : loops_) {
    if (!loop->thread_.joinable()) continue;
    asio::post(loop->io_, [l = loop.get()] { l->Shutdown(); });
    loop->thread_.join();  // run() returns once the closed sessions' handlers have drained
    loop->running_ = false;
  }
}

std::optional<uint16_t> ProxyServer::BoundPort(Role role) const {
  for (const auto& l : loops_[0]->listeners_) {
    if (l->role == role) return l->port;
  }
  return std::nullopt;
}

std::optional<uint16_t> ProxyServer::BoundStatusPort() const {
  if (!loops_[0]->status_acceptor_) return std::nullopt;
  return loops_[0]->status_port_;
}

void ProxyServer::SetTopology(std::shared_ptr<const Topology> topology) {
  for (auto& loop : loops_) {
    asio::post(loop->io_, [l = loop.get(), topology] { l->ApplyTopology(topology); });
  }
}

void ProxyServer::ReportDcsContact() {
  for (auto& loop : loops_) asio::post(loop->io_, [l = loop.get()] { l->DcsContact(); });
}

void ProxyServer::SetPrimaryUsable(bool usable) {
  for (auto& loop : loops_) {
    asio::post(loop->io_, [l = loop.get(), usable] { l->ForcePrimaryUnusable(!usable); });
  }
}

ProxyStatus ProxyServer::GetStatus() const {
  ProxyStatus total = loops_[0]->SnapshotFromOtherThread();
  for (size_t i = 1; i < loops_.size(); ++i) {
    MergeInto(total, loops_[i]->SnapshotFromOtherThread());
  }
  return total;
}

}  // namespace pgwarden::proxy
