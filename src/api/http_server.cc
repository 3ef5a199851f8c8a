// The Asio/Beast side of HttpServer. Everything Boost stays in this translation unit.
//
// Object graph: HttpServer owns a shared Core (io_context, acceptor, options, handler). Each
// connection is a Session owned by the handlers of its pending operations (and, while the
// application handler is working on a request, by the responder it was given). A Session holds a
// shared_ptr to the Core so that a responder that outlives the server (a worker finishing a
// switchover after Stop()) never touches freed memory; Stop() closes every socket and lets the
// io_context drain, which releases every Session that is not held by a responder.
#include "api/http_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace pgwarden::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// ---------------------------------------------------------------------------------------------
// Plain helpers.

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in`; `plus_is_space` for query components. nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string Base64Encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

namespace {

// Compares without an early exit, so the time taken does not tell how much of a guess matched.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

bool IsUnsafeMethod(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

// Splits the target into path and query. The error says what is wrong.
Result<void> ParseTarget(HttpRequest& req) {
  std::string_view target = req.target;
  if (target.empty() || target.front() != '/') {
    return Fail(ErrorCode::kInvalidArgument,
                "request target must be an absolute path starting with '/'");
  }
  size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  auto path = PercentDecode(raw_path, false);
  if (!path) return Fail(ErrorCode::kInvalidArgument, "malformed percent-encoding in the path");
  req.path = std::move(*path);
  if (q == std::string_view::npos) return Ok();
  std::string_view query = target.substr(q + 1);
  size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    auto key = PercentDecode(item.substr(0, eq), true);
    auto value = PercentDecode(
        eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1), true);
    if (!key || !value) {
      return Fail(ErrorCode::kInvalidArgument, "malformed percent-encoding in the query string");
    }
    req.query.emplace(std::move(*key), std::move(*value));
  }
  return Ok();
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? nullptr : &it->second;
}

const std::string* HttpRequest::Query(std::string_view key) const {
  auto it = query.find(std::string(key));
  return it == query.end() ? nullptr : &it->second;
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Json(int status, std::string json_text) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(json_text);
  return r;
}

std::string_view StatusReason(int status) {
  if (status < 100 || status > 999) return "Unknown";
  std::string_view reason = http::obsolete_reason(static_cast<http::status>(status));
  return reason.empty() ? std::string_view("Unknown") : reason;
}

Result<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view listen) {
  std::string_view host;
  std::string_view port_text;
  if (!listen.empty() && listen.front() == '[') {
    size_t close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return Fail(ErrorCode::kInvalidArgument,
                  "listen address \"" + std::string(listen) + "\": expected [ipv6]:port");
    }
    host = listen.substr(1, close - 1);
    port_text = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos) {
      return Fail(ErrorCode::kInvalidArgument,
                  "listen address \"" + std::string(listen) + "\": expected host:port");
    }
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Fail(ErrorCode::kInvalidArgument, "listen address \"" + std::string(listen) +
                                                   "\": put an IPv6 address in brackets");
    }
  }
  if (port_text.empty() || port_text.size() > 5) {
    return Fail(ErrorCode::kInvalidArgument,
                "listen address \"" + std::string(listen) + "\": bad port");
  }
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') {
      return Fail(ErrorCode::kInvalidArgument,
                  "listen address \"" + std::string(listen) + "\": port is not a number");
    }
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) {
    return Fail(ErrorCode::kInvalidArgument,
                "listen address \"" + std::string(listen) + "\": port out of range");
  }
  return std::pair<std::string, uint16_t>(std::string(host), static_cast<uint16_t>(port));
}

// ---------------------------------------------------------------------------------------------
// Core and Session.

class Session;

class HttpServer::Core : public std::enable_shared_from_this<HttpServer::Core> {
 public:
  Core(HttpServerOptions opts, AsyncHttpHandler h)
      : options(std::move(opts)), handler(std::move(h)) {
    if (!options.username.empty() || !options.password.empty()) {
      expected_auth = "Basic " + Base64Encode(options.username + ":" + options.password);
    }
  }

  const HttpServerOptions options;
  const AsyncHttpHandler handler;
  std::string expected_auth;  // empty: no authentication

  std::atomic<bool> stopped{false};
  std::atomic<size_t> open{0};
  std::atomic<uint16_t> port{0};

  // Live sessions, for Stop(). A session unregisters in its destructor, which may run on a
  // worker thread after Stop() (when a responder is the last owner), hence the mutex.
  std::mutex sessions_mu;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;
  uint64_t next_id = 0;  // io thread only

  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_backoff{ioc};
  std::thread thread;

  void DoAccept();
  void Reject(tcp::socket socket);
  void CloseAll();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<HttpServer::Core> core, tcp::socket socket, uint64_t id)
      : core_(std::move(core)), stream_(std::move(socket)), id_(id) {
    core_->open.fetch_add(1);
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
  }

  ~Session() {
    {
      std::lock_guard lock(core_->sessions_mu);
      core_->sessions.erase(id_);
    }
    core_->open.fetch_sub(1);
  }

  void Start() { ReadRequest(); }

  // io thread (or after the io thread has been joined).
  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(core_->options.max_header_bytes));
    parser_->body_limit(core_->options.max_body_bytes);
    stream_.expires_after(core_->options.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) {
      if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
          ec == beast::error::timeout || ec == net::error::operation_aborted ||
          ec.category() != http::make_error_code(http::error::bad_target).category()) {
        // The client went away, said nothing in time, or the server is stopping.
        Close();
        return;
      }
      int status = 400;
      std::string message = "bad request: " + ec.message();
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        status = 431;
        message = "request header fields too large (limit " +
                  std::to_string(core_->options.max_header_bytes) + " bytes)";
      } else if (ec == http::error::body_limit) {
        status = 413;
        message = "request body too large (limit " + std::to_string(core_->options.max_body_bytes) +
                  " bytes)";
      }
      keep_alive_ = false;
      head_only_ = false;
      version_ = 11;
      Write(HttpResponse::Text(status, message + "\n"));
      return;
    }

    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.version = msg.version();
    req.remote_address = remote_;
    for (const auto& field : msg) {
      req.headers.emplace(Lower(field.name_string()), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    head_only_ = req.method == "HEAD" || req.method == "OPTIONS";
    is_head_ = req.method == "HEAD";
    parser_.reset();

    if (auto parsed = ParseTarget(req); !parsed) {
      keep_alive_ = false;
      head_only_ = false;
      Write(HttpResponse::Text(400, "bad request: " + parsed.error().message + "\n"));
      return;
    }
    if (!core_->expected_auth.empty() && IsUnsafeMethod(req.method)) {
      const std::string* auth = req.Header("authorization");
      if (auth == nullptr || !ConstantTimeEquals(*auth, core_->expected_auth)) {
        auto res = HttpResponse::Text(
            401, auth == nullptr ? "no auth header received\n" : "not authenticated\n");
        res.headers.emplace_back("WWW-Authenticate", "Basic realm=\"pgwarden\"");
        Write(std::move(res));
        return;
      }
    }

    auto once = std::make_shared<std::atomic<bool>>(false);
    HttpResponder respond = [self = shared_from_this(), once](HttpResponse res) {
      if (once->exchange(true)) return;
      auto& core = *self->core_;
      if (core.stopped.load()) return;
      net::post(core.ioc, [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    };
    try {
      core_->handler(std::move(req), std::move(respond));
    } catch (const std::exception& e) {
      // The responder may already be gone with the handler's stack; answer directly, once.
      if (!once->exchange(true)) {
        keep_alive_ = false;
        Write(HttpResponse::Text(500, std::string("internal error: ") + e.what() + "\n"));
      }
    } catch (...) {
      if (!once->exchange(true)) {
        keep_alive_ = false;
        Write(HttpResponse::Text(500, "internal error\n"));
      }
    }
  }

  void Write(HttpResponse r) {
    if (core_->stopped.load()) keep_alive_ = false;
    res_.emplace();
    auto& res = *res_;
    res.version(version_);
    res.result(static_cast<unsigned>(r.status));
    res.reason(StatusReason(r.status));
    res.set(http::field::server, core_->options.server_name);
    if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) res.insert(name, value);
    if (is_head_) {
      // HEAD: the headers of the GET answer, no body.
      res.content_length(r.body.size());
    } else if (head_only_) {
      res.content_length(0);  // OPTIONS: status line and headers only
    } else {
      res.body() = std::move(r.body);
      res.content_length(res.body().size());
    }
    res.keep_alive(keep_alive_);
    stream_.expires_after(core_->options.read_timeout);
    http::async_write(stream_, res, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(beast::error_code ec) {
    res_.reset();
    is_head_ = head_only_ = false;
    if (ec || !keep_alive_ || core_->stopped.load()) {
      Close();
      return;
    }
    ReadRequest();
  }

  std::shared_ptr<HttpServer::Core> core_;
  beast::tcp_stream stream_;
  uint64_t id_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_only_ = false;
  bool is_head_ = false;
};

// Answers 503 to a connection over the limit and closes it; bounded by a short deadline.
void HttpServer::Core::Reject(tcp::socket socket) {
  struct Rejection {
    explicit Rejection(tcp::socket s) : stream(std::move(s)) {}
    beast::tcp_stream stream;
    std::string text =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        "Connection: close\r\nContent-Length: 21\r\n\r\ntoo many connections\n";
  };
  auto r = std::make_shared<Rejection>(std::move(socket));
  r->stream.expires_after(std::chrono::seconds(1));
  r->stream.async_write_some(net::buffer(r->text), [r](beast::error_code, size_t) {
    beast::error_code ec;
    r->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    r->stream.close();
  });
}

void HttpServer::Core::DoAccept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopped.load() || ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // EMFILE and friends: back off instead of spinning.
      accept_backoff.expires_after(std::chrono::milliseconds(100));
      accept_backoff.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && !stopped.load()) DoAccept();
      });
      return;
    }
    if (open.load() >= options.max_connections) {
      Reject(std::move(socket));
    } else {
      beast::error_code opt_ec;
      socket.set_option(tcp::no_delay(true), opt_ec);
      // The Core is owned by the HttpServer through a shared_ptr; sessions share it.
      uint64_t id = next_id++;
      auto session = std::make_shared<Session>(shared_from_this(), std::move(socket), id);
      {
        std::lock_guard lock(sessions_mu);
        sessions.emplace(id, session);
      }
      session->Start();
    }
    DoAccept();
  });
}

void HttpServer::Core::CloseAll() {
  beast::error_code ec;
  acceptor.close(ec);
  accept_backoff.cancel();
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(sessions_mu);
    for (auto& [id, weak] : sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->Close();
}

// ---------------------------------------------------------------------------------------------
// HttpServer.

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : HttpServer(std::move(options),
                 AsyncHttpHandler([h = std::move(handler)](HttpRequest req, HttpResponder respond) {
                   respond(h(req));
                 })) {}

HttpServer::HttpServer(HttpServerOptions options, AsyncHttpHandler handler)
    : core_(std::make_shared<Core>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { Stop(); }

Result<void> HttpServer::Start() {
  Core& core = *core_;
  if (core.thread.joinable() || core.stopped.load()) {
    return Fail(ErrorCode::kInvalidArgument, "HttpServer::Start called twice");
  }
  auto host_port = SplitHostPort(core.options.listen);
  if (!host_port) return Fail(host_port.error());
  auto [host, port] = *host_port;

  std::vector<tcp::endpoint> candidates;
  if (host.empty() || host == "*") {
    candidates.emplace_back(tcp::v6(), port);  // dual stack where available
    candidates.emplace_back(tcp::v4(), port);
  } else if (host == "localhost") {
    candidates.emplace_back(net::ip::address_v4::loopback(), port);
  } else {
    beast::error_code ec;
    auto address = net::ip::make_address(host, ec);
    if (ec) {
      tcp::resolver resolver(core.ioc);
      auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec || results.empty()) {
        return Fail(ErrorCode::kInvalidArgument, "listen address \"" + core.options.listen +
                                                     "\": cannot resolve host: " + ec.message());
      }
      for (const auto& entry : results) candidates.push_back(entry.endpoint());
    } else {
      candidates.emplace_back(address, port);
    }
  }

  std::string last_error;
  for (const auto& endpoint : candidates) {
    beast::error_code ec;
    core.acceptor.open(endpoint.protocol(), ec);
    if (!ec && endpoint.address().is_v6() && endpoint.address().is_unspecified()) {
      core.acceptor.set_option(net::ip::v6_only(false), ec);
    }
    if (!ec) core.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) core.acceptor.bind(endpoint, ec);
    if (!ec) core.acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) {
      core.port.store(core.acceptor.local_endpoint().port());
      last_error.clear();
      break;
    }
    last_error = endpoint.address().to_string() + ": " + ec.message();
    beast::error_code close_ec;
    core.acceptor.close(close_ec);
  }
  if (!core.acceptor.is_open()) {
    return Fail(ErrorCode::kUnavailable,
                "cannot listen on \"" + core.options.listen + "\": " + last_error);
  }

  core.DoAccept();
  core.thread = std::thread([&core] {
    // A throwing handler must not take the API down; Session already catches the
    // application's exceptions, this is the last net.
    for (;;) {
      try {
        core.ioc.run();
        return;
      } catch (...) {
      }
    }
  });
  return Ok();
}

void HttpServer::Stop() {
  Core& core = *core_;
  if (core.stopped.exchange(true)) return;
  if (core.thread.joinable()) {
    net::post(core.ioc, [&core] { core.CloseAll(); });
    // With the listener and every socket closed, run() returns once the aborted operations
    // have completed, which releases their sessions.
    core.thread.join();
  } else {
    core.CloseAll();
  }
}

uint16_t HttpServer::port() const { return core_->port.load(); }

size_t HttpServer::open_connections() const { return core_->open.load(); }

}  // namespace pgwarden::api
