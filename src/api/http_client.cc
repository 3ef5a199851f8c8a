// HttpCall on Beast: one io_context per call, every step bounded by the call's deadline.
#include "api/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>

namespace pgwarden::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

struct ParsedUrl {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";
};

Result<ParsedUrl> ParseUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Fail(ErrorCode::kInvalidArgument,
                "URL \"" + std::string(url) + "\": only http:// URLs are supported");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  ParsedUrl out;
  if (slash != std::string_view::npos) {
    out.target = std::string(rest.substr(slash));
    if (out.target.front() == '?') out.target.insert(out.target.begin(), '/');
  }
  if (authority.find('@') != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "URL \"" + std::string(url) + "\": credentials in URLs are not supported");
  }
  if (authority.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "URL \"" + std::string(url) + "\": no host");
  }
  bool has_port = false;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Fail(ErrorCode::kInvalidArgument, "URL \"" + std::string(url) + "\": unclosed '['");
    }
    has_port = close + 1 < authority.size();
    if (has_port && authority[close + 1] != ':') {
      return Fail(ErrorCode::kInvalidArgument, "URL \"" + std::string(url) + "\": bad host");
    }
  } else {
    has_port = authority.find(':') != std::string_view::npos;
  }
  if (has_port) {
    auto host_port = SplitHostPort(authority);
    if (!host_port) {
      return Fail(ErrorCode::kInvalidArgument,
                  "URL \"" + std::string(url) + "\": " + host_port.error().message);
    }
    out.host = host_port->first;
    out.port = host_port->second;
  } else {
    out.host = authority.front() == '[' ? std::string(authority.substr(1, authority.size() - 2))
                                        : std::string(authority);
  }
  if (out.host.empty() || out.port == 0) {
    return Fail(ErrorCode::kInvalidArgument, "URL \"" + std::string(url) + "\": bad host or port");
  }
  return out;
}

// Runs the io_context until the pending operation completes. The operation itself carries the
// deadline (tcp_stream expiry), so this returns by then.
void RunOnce(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

Error Classify(const beast::error_code& ec, const std::string& where, bool connecting) {
  if (ec == beast::error::timeout) {
    return Error{ErrorCode::kTimeout,
                 where + ": " + (connecting ? "connect timed out" : "no answer in time")};
  }
  if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return Error{ErrorCode::kCorrupt, where + ": malformed HTTP response: " + ec.message()};
  }
  return Error{ErrorCode::kUnavailable, where + ": " + ec.message()};
}

}  // namespace

Result<HttpResponse> HttpCall(const HttpClientRequest& request) {
  auto url = ParseUrl(request.url);
  if (!url) return Fail(url.error());
  const std::string where = request.method + " " + request.url;
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + request.timeout;
  auto connect_deadline = start + std::min(request.connect_timeout, request.timeout);

  net::io_context ioc{1};
  beast::error_code ec;

  std::vector<tcp::endpoint> endpoints;
  std::string host = url->host == "localhost" ? "127.0.0.1" : url->host;
  auto address = net::ip::make_address(host, ec);
  if (!ec) {
    endpoints.emplace_back(address, url->port);
  } else {
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, std::to_string(url->port), ec);
    if (ec) return Fail(ErrorCode::kUnavailable, where + ": cannot resolve host: " + ec.message());
    for (const auto& r : results) endpoints.push_back(r.endpoint());
    if (endpoints.empty()) {
      return Fail(ErrorCode::kUnavailable, where + ": host resolves to no address");
    }
  }

  beast::tcp_stream stream(ioc);
  stream.expires_at(connect_deadline);
  beast::error_code op_ec;
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { op_ec = e; });
  RunOnce(ioc);
  if (op_ec) return Fail(Classify(op_ec, where, true));

  http::request<http::string_body> req{http::string_to_verb(request.method), url->target, 11};
  if (req.method() == http::verb::unknown) req.method_string(request.method);
  req.set(http::field::host, url->host + ":" + std::to_string(url->port));
  req.set(http::field::user_agent, "pgwarden");
  req.set(http::field::connection, "close");
  if (!request.username.empty() || !request.password.empty()) {
    req.set(http::field::authorization,
            "Basic " + Base64Encode(request.username + ":" + request.password));
  }
  for (const auto& [name, value] : request.headers) req.set(name, value);
  if (!request.body.empty() || req.method() == http::verb::post ||
      req.method() == http::verb::put || req.method() == http::verb::patch) {
    if (!request.body.empty()) req.set(http::field::content_type, request.content_type);
    req.body() = request.body;
    req.prepare_payload();
  }

  stream.expires_at(deadline);
  http::async_write(stream, req, [&](beast::error_code e, size_t) { op_ec = e; });
  RunOnce(ioc);
  if (op_ec) return Fail(Classify(op_ec, where, false));

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(request.max_response_bytes);
  if (req.method() == http::verb::head) parser.skip(true);
  stream.expires_at(deadline);
  http::async_read(stream, buffer, parser, [&](beast::error_code e, size_t) { op_ec = e; });
  RunOnce(ioc);
  if (op_ec) return Fail(Classify(op_ec, where, false));

  auto& msg = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(msg.result_int());
  out.content_type = std::string(msg[http::field::content_type]);
  for (const auto& field : msg) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(msg.body());
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
}

Result<HttpResponse> HttpGet(std::string_view url, std::chrono::milliseconds timeout) {
  HttpClientRequest req;
  req.url = std::string(url);
  req.timeout = timeout;
  req.connect_timeout = timeout;
  return HttpCall(req);
}

Result<HttpResponse> HttpPost(std::string_view url, std::string body,
                              std::chrono::milliseconds timeout) {
  HttpClientRequest req;
  req.method = "POST";
  req.url = std::string(url);
  req.body = std::move(body);
  req.timeout = timeout;
  req.connect_timeout = timeout;
  return HttpCall(req);
}

}  // namespace pgwarden::api
