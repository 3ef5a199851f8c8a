// The only translation unit of pgwarden_etcd that includes Boost.Asio/Beast.
#include "dcs/etcd3/http_client.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <optional>
#include <vector>

namespace pgwarden::dcs::etcd3 {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr std::size_t kMaxAnswer = 64 * 1024 * 1024;

// Runs handlers until `done` or `deadline`. Returns whether `done` became true.
bool RunUntil(asio::io_context& ioc, const bool& done, SteadyTime deadline) {
  ioc.restart();
  while (!done) {
    const auto now = SteadyClock::now();
    if (now >= deadline) break;
    if (ioc.run_one_for(deadline - now) == 0 && ioc.stopped()) break;  // out of work
  }
  return done;
}

// Closes the socket and runs the aborted handlers to completion.
void CloseAndDrain(asio::io_context& ioc, tcp::socket& sock) {
  error_code ignored;
  sock.shutdown(tcp::socket::shutdown_both, ignored);
  sock.close(ignored);
  ioc.restart();
  ioc.run();
}

bool IsParseError(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_version).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// Connects `sock` to `ep` by min(connect deadline, deadline). kTimeout only when the
// caller's whole deadline passed; a connect that fails or times out before it is kUnavailable.
Result<void> Connect(asio::io_context& ioc, tcp::socket& sock, const Endpoint& ep,
                     Duration connect_timeout, SteadyTime deadline) {
  const SteadyTime connect_deadline = std::min(deadline, SteadyClock::now() + connect_timeout);
  std::vector<tcp::endpoint> targets;
  error_code ec;
  auto address = asio::ip::make_address(ep.host, ec);
  if (!ec) {
    targets.emplace_back(address, ep.port);
  } else {
    tcp::resolver resolver(ioc);
    bool done = false;
    resolver.async_resolve(ep.host, std::to_string(ep.port),
                           [&](const error_code& e, const tcp::resolver::results_type& r) {
                             ec = e;
                             for (const auto& entry : r) targets.push_back(entry.endpoint());
                             done = true;
                           });
    if (!RunUntil(ioc, done, connect_deadline)) {
      resolver.cancel();
      ioc.restart();
      ioc.run();
      return Fail(ErrorCode::kUnavailable, "etcd " + ep.ToString() + ": name resolution timed out");
    }
    if (ec || targets.empty()) {
      return Fail(ErrorCode::kUnavailable,
                  "etcd " + ep.ToString() + ": cannot resolve host: " + ec.message());
    }
  }
  bool done = false;
  asio::async_connect(sock, targets, [&](const error_code& e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  if (!RunUntil(ioc, done, connect_deadline)) {
    CloseAndDrain(ioc, sock);
    if (SteadyClock::now() >= deadline) {
      return Fail(ErrorCode::kTimeout, "etcd " + ep.ToString() + ": connect timed out");
    }
    return Fail(ErrorCode::kUnavailable, "etcd " + ep.ToString() + ": connect timed out");
  }
  if (ec) {
    error_code ignored;
    sock.close(ignored);
    return Fail(ErrorCode::kUnavailable, "etcd " + ep.ToString() + ": connect: " + ec.message());
  }
  sock.set_option(tcp::no_delay(true), ec);
  return Ok();
}

http::request<http::string_body> MakeRequest(const Endpoint& ep, std::string_view target,
                                             std::string_view body) {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, ep.ToString());
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "pgwarden");
  req.keep_alive(true);
  req.body() = std::string(body);
  req.prepare_payload();
  return req;
}

}  // namespace

Result<Endpoint> ParseEndpoint(std::string_view text) {
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    return Fail(ErrorCode::kInvalidArgument,
                "etcd endpoint '" + std::string(text) + "': https is not supported");
  }
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  while (rest.ends_with('/')) rest.remove_suffix(1);
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
    return Fail(ErrorCode::kInvalidArgument, "etcd endpoint '" + std::string(text) +
                                                 "': expected host:port or http://host:port");
  }
  std::string_view host = rest.substr(0, colon);
  std::string_view port_text = rest.substr(colon + 1);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535 || host.find('/') != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "etcd endpoint '" + std::string(text) + "': bad host or port");
  }
  return Endpoint{std::string(host), static_cast<uint16_t>(port)};
}

// ---------------------------------------------------------------------------------------------

struct HttpConnection::Impl {
  Impl(Endpoint ep, Duration timeout) : endpoint(std::move(ep)), connect_timeout(timeout) {}

  // A kept-alive connection the server closed meanwhile (or that holds stray bytes) is not
  // reused: a request sent on it could be lost without an answer.
  bool PeerGone() {
    char byte;
    ssize_t n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    return true;  // 0: closed by the peer; > 0: unexpected data
  }

  void Close() {
    if (connected) CloseAndDrain(ioc, sock);
    connected = false;
    buffer.clear();
  }

  Endpoint endpoint;
  Duration connect_timeout;
  asio::io_context ioc;
  tcp::socket sock{ioc};
  boost::beast::flat_buffer buffer;
  bool connected = false;
};

HttpConnection::HttpConnection(Endpoint endpoint, Duration connect_timeout)
    : impl_(std::make_unique<Impl>(std::move(endpoint), connect_timeout)) {}
HttpConnection::~HttpConnection() { impl_->Close(); }
void HttpConnection::Close() { impl_->Close(); }
const Endpoint& HttpConnection::endpoint() const { return impl_->endpoint; }

Result<HttpResponse> HttpConnection::Post(std::string_view target, std::string_view body,
                                          SteadyTime deadline, bool* request_sent) {
  Impl& s = *impl_;
  *request_sent = false;
  if (s.connected && s.PeerGone()) s.Close();
  if (!s.connected) {
    auto ok = Connect(s.ioc, s.sock, s.endpoint, s.connect_timeout, deadline);
    if (!ok) return Fail(ok.error());
    s.connected = true;
  }
  *request_sent = true;
  auto req = MakeRequest(s.endpoint, target, body);
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxAnswer);
  bool done = false;
  error_code ec;
  http::async_write(s.sock, req, [&](const error_code& e, std::size_t) {
    if (e) {
      ec = e;
      done = true;
      return;
    }
    http::async_read(s.sock, s.buffer, parser, [&](const error_code& e2, std::size_t) {
      ec = e2;
      done = true;
    });
  });
  const std::string where = "etcd " + s.endpoint.ToString() + " " + std::string(target);
  if (!RunUntil(s.ioc, done, deadline)) {
    s.Close();
    return Fail(ErrorCode::kTimeout, where + ": no answer before the deadline");
  }
  if (ec) {
    s.Close();
    if (IsParseError(ec)) return Fail(ErrorCode::kCorrupt, where + ": bad HTTP: " + ec.message());
    return Fail(ErrorCode::kUnavailable, where + ": " + ec.message());
  }
  auto res = parser.release();
  if (!res.keep_alive()) s.Close();
  return HttpResponse{static_cast<int>(res.result_int()), std::move(res.body())};
}

// ---------------------------------------------------------------------------------------------

struct HttpStream::Impl {
  explicit Impl(Duration timeout) : connect_timeout(timeout) {}

  void Close() {
    CloseAndDrain(ioc, sock);
    parser.reset();
    buffer.clear();
    open = false;
    read_pending = false;
    read_done = false;
  }

  Duration connect_timeout;
  asio::io_context ioc;
  tcp::socket sock{ioc};
  boost::beast::flat_buffer buffer;
  std::optional<http::response_parser<http::buffer_body>> parser;
  char chunk[16 * 1024];
  bool open = false;
  bool read_pending = false;
  bool read_done = false;
  error_code read_ec;
  std::atomic<bool> interrupted{false};
};

HttpStream::HttpStream(Duration connect_timeout) : impl_(std::make_unique<Impl>(connect_timeout)) {}
HttpStream::~HttpStream() { impl_->Close(); }
bool HttpStream::is_open() const { return impl_->open; }
void HttpStream::Close() { impl_->Close(); }

void HttpStream::Interrupt() {
  impl_->interrupted = true;
  Impl* s = impl_.get();
  asio::post(s->ioc, [s] {
    error_code ignored;
    s->sock.close(ignored);
  });
}

Result<HttpResponse> HttpStream::Open(const Endpoint& endpoint, std::string_view target,
                                      std::string_view body, SteadyTime deadline) {
  Impl& s = *impl_;
  s.Close();
  if (s.interrupted) return Fail(ErrorCode::kCancelled, "stream interrupted");
  auto ok = Connect(s.ioc, s.sock, endpoint, s.connect_timeout, deadline);
  if (!ok) return Fail(ok.error());
  s.open = true;
  const std::string where = "etcd " + endpoint.ToString() + " " + std::string(target);
  auto req = MakeRequest(endpoint, target, body);
  s.parser.emplace();
  s.parser->body_limit(boost::none);
  bool done = false;
  error_code ec;
  http::async_write(s.sock, req, [&](const error_code& e, std::size_t) {
    if (e) {
      ec = e;
      done = true;
      return;
    }
    http::async_read_header(s.sock, s.buffer, *s.parser, [&](const error_code& e2, std::size_t) {
      ec = e2;
      done = true;
    });
  });
  if (!RunUntil(s.ioc, done, deadline)) {
    s.Close();
    return Fail(ErrorCode::kTimeout, where + ": no answer before the deadline");
  }
  if (ec) {
    s.Close();
    if (s.interrupted) return Fail(ErrorCode::kCancelled, "stream interrupted");
    if (IsParseError(ec)) return Fail(ErrorCode::kCorrupt, where + ": bad HTTP: " + ec.message());
    return Fail(ErrorCode::kUnavailable, where + ": " + ec.message());
  }
  HttpResponse head{static_cast<int>(s.parser->get().result_int()), {}};
  if (head.status != 200) {
    // Read the (small) error body, bounded by the deadline, then give up on this stream.
    for (int i = 0; i < 64 && head.body.size() < 64 * 1024; ++i) {
      auto piece = Read(deadline);
      if (!piece || piece->empty()) break;
      head.body += *piece;
    }
    s.Close();
  }
  return head;
}

Result<std::string> HttpStream::Read(SteadyTime deadline) {
  Impl& s = *impl_;
  if (s.interrupted) {
    if (s.open) s.Close();
    return Fail(ErrorCode::kCancelled, "stream interrupted");
  }
  if (!s.open) return Fail(ErrorCode::kUnavailable, "stream is not open");
  for (;;) {
    if (!s.read_pending) {
      if (s.parser->is_done()) {
        s.Close();
        return Fail(ErrorCode::kUnavailable, "the server ended the stream");
      }
      s.parser->get().body().data = s.chunk;
      s.parser->get().body().size = sizeof(s.chunk);
      s.read_pending = true;
      s.read_done = false;
      http::async_read_some(s.sock, s.buffer, *s.parser, [&s](const error_code& e, std::size_t) {
        s.read_ec = e;
        s.read_done = true;
        s.read_pending = false;
      });
    }
    if (!RunUntil(s.ioc, s.read_done, deadline)) return std::string();  // stays pending
    s.read_done = false;
    const std::size_t n = sizeof(s.chunk) - s.parser->get().body().size;
    error_code ec = s.read_ec;
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      s.Close();
      if (s.interrupted) return Fail(ErrorCode::kCancelled, "stream interrupted");
      if (IsParseError(ec)) return Fail(ErrorCode::kCorrupt, "bad HTTP stream: " + ec.message());
      return Fail(ErrorCode::kUnavailable, "stream broken: " + ec.message());
    }
    if (n > 0) return std::string(s.chunk, n);
    if (SteadyClock::now() >= deadline) return std::string();
    // Progress without body bytes (a chunk header): read on.
  }
}

}  // namespace pgwarden::dcs::etcd3
