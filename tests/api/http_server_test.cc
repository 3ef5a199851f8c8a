// The HTTP server and client over real loopback sockets: framing, keep-alive, HEAD/OPTIONS,
// limits, timeouts, hostile clients, concurrency, basic auth.
#include "api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "api/raw_client.h"

namespace pgwarden::api {
namespace {

using std::chrono::milliseconds;
using testing::BodyOf;
using testing::HeaderOf;
using testing::RawClient;
using testing::StatusOf;

// Echoes method, path, query and body; "/slow" sleeps a little; "/throw" throws.
HttpResponse Echo(const HttpRequest& req) {
  if (req.path == "/throw") throw std::runtime_error("boom");
  std::string out = req.method + " " + req.path;
  for (const auto& [k, v] : req.query) out += " " + k + "=" + v;
  if (!req.body.empty()) out += " body=" + req.body;
  return HttpResponse::Text(200, out);
}

HttpServerOptions FastOptions() {
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.read_timeout = milliseconds(300);
  o.max_header_bytes = 2048;
  o.max_body_bytes = 1024;
  return o;
}

std::string Url(const HttpServer& s, const std::string& target) {
  return "http://127.0.0.1:" + std::to_string(s.port()) + target;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = FastOptions()) {
    server_ = std::make_unique<HttpServer>(options, Echo);
    auto started = server_->Start();
    ASSERT_TRUE(started) << started.error().ToString();
    ASSERT_NE(server_->port(), 0);
  }
  // A quick request that must succeed: the server is still serving.
  void ExpectServing() {
    auto res = HttpGet(Url(*server_, "/ping"), milliseconds(2000));
    ASSERT_TRUE(res) << res.error().ToString();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "GET /ping");
  }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, GetWithDecodedQuery) {
  StartServer();
  auto res = HttpGet(Url(*server_, "/a%20b?lag=10MB&tag_dc=east+1&x"), milliseconds(2000));
  ASSERT_TRUE(res) << res.error().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "GET /a b lag=10MB tag_dc=east 1 x=");
}

TEST_F(HttpServerTest, PostBodyReachesHandler) {
  StartServer();
  auto res = HttpPost(Url(*server_, "/switchover"), R"({"leader":"n1"})", milliseconds(2000));
  ASSERT_TRUE(res) << res.error().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, R"(POST /switchover body={"leader":"n1"})");
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer();
  RawClient c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string first = c.ReadResponse();
  EXPECT_EQ(StatusOf(first), 200);
  EXPECT_EQ(BodyOf(first), "GET /one");
  EXPECT_EQ(server_->open_connections(), 1u);
  ASSERT_TRUE(c.Send("GET /two HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string second = c.ReadResponse();
  EXPECT_EQ(StatusOf(second), 200);
  EXPECT_EQ(BodyOf(second), "GET /two");
  // Pipelined: both requests in one write, both answered in order.
  ASSERT_TRUE(c.Send("GET /3 HTTP/1.1\r\nHost: x\r\n\r\nGET /4 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "GET /3");
  EXPECT_EQ(BodyOf(c.ReadResponse()), "GET /4");
}

TEST_F(HttpServerTest, Http10ClosesAfterTheResponse) {
  StartServer();
  RawClient c(server_->port());
  ASSERT_TRUE(c.Send("GET /old HTTP/1.0\r\n\r\n"));
  std::string all = c.ReadUntilClose(milliseconds(2000));
  EXPECT_EQ(all.substr(0, 13), "HTTP/1.0 200 ");
  EXPECT_EQ(BodyOf(all), "GET /old");
}

TEST_F(HttpServerTest, HeadAndOptionsSendStatusAndHeadersOnly) {
  StartServer();
  RawClient c(server_->port());
  ASSERT_TRUE(c.Send("OPTIONS /primary HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string options = c.ReadResponse();
  EXPECT_EQ(StatusOf(options), 200);
  EXPECT_EQ(HeaderOf(options, "Content-Length"), "0");
  EXPECT_EQ(BodyOf(options), "");
  ASSERT_TRUE(c.Send("HEAD /primary HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string head = c.ReadResponse(/*no_body=*/true);
  EXPECT_EQ(StatusOf(head), 200);
  EXPECT_EQ(HeaderOf(head, "Content-Length"), std::to_string(std::string("HEAD /primary").size()));
  // No body bytes followed: the next response starts right after the HEAD headers.
  ASSERT_TRUE(c.Send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string next = c.ReadResponse();
  EXPECT_EQ(next.substr(0, 12), "HTTP/1.1 200");
  EXPECT_EQ(BodyOf(next), "GET /next");
}

TEST_F(HttpServerTest, HaproxyStyleOptionsCheckOverHttp10) {
  StartServer();
  RawClient c(server_->port());
  ASSERT_TRUE(c.Send("OPTIONS /primary HTTP/1.0\r\n\r\n"));
  std::string all = c.ReadUntilClose(milliseconds(2000));
  EXPECT_EQ(all.substr(0, 13), "HTTP/1.0 200 ");
  EXPECT_EQ(BodyOf(all), "");
}

TEST_F(HttpServerTest, GarbageGets400AndTheServerKeepsServing) {
  StartServer();
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.Send(std::string("\x00\x01\xff garbage \r\n\r\n", 16)));
    std::string all = c.ReadUntilClose(milliseconds(2000));
    EXPECT_EQ(StatusOf(all), 400) << all;
    EXPECT_NE(BodyOf(all).find("bad request"), std::string::npos) << all;
  }
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.Send("GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n"));
    EXPECT_EQ(StatusOf(c.ReadUntilClose(milliseconds(2000))), 400);
  }
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.Send("GET x HTTP/1.1\r\nHost: x\r\n\r\n"));  // not an absolute path
    std::string all = c.ReadUntilClose(milliseconds(2000));
    EXPECT_EQ(StatusOf(all), 400);
    EXPECT_NE(BodyOf(all).find("absolute path"), std::string::npos) << all;
  }
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.Send("GET /x?lag=%zz HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string all = c.ReadUntilClose(milliseconds(2000));
    EXPECT_EQ(StatusOf(all), 400);
    EXPECT_NE(BodyOf(all).find("percent-encoding"), std::string::npos) << all;
  }
  // Every byte value in a request line, one connection each: never a crash.
  for (int b = 0; b < 256; b += 3) {
    RawClient c(server_->port());
    std::string req = "GET /";
    req += static_cast<char>(b);
    req += " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    c.Send(req);
    std::string all = c.ReadUntilClose(milliseconds(2000));
    int status = StatusOf(all);
    EXPECT_TRUE(status == 200 || status == 400) << b << ": " << all;
  }
  ExpectServing();
}

TEST_F(HttpServerTest, OversizedHeadersGet431) {
  StartServer();
  RawClient c(server_->port());
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n";
  c.Send(req);
  std::string all = c.ReadUntilClose(milliseconds(2000));
  EXPECT_EQ(StatusOf(all), 431) << all;
  ExpectServing();
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  StartServer();
  RawClient c(server_->port());
  std::string req =
      "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'b');
  c.Send(req);
  std::string all = c.ReadUntilClose(milliseconds(2000));
  EXPECT_EQ(StatusOf(all), 413) << all;
  ExpectServing();
}

TEST_F(HttpServerTest, SilentClientIsDroppedAfterTheReadTimeout) {
  StartServer();
  auto start = std::chrono::steady_clock::now();
  RawClient silent(server_->port());
  ASSERT_TRUE(silent.connected());
  ExpectServing();  // others are served meanwhile
  EXPECT_TRUE(silent.ClosedWithin(milliseconds(3000)));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, milliseconds(2000));
}

TEST_F(HttpServerTest, SlowLorisCostsOneConnectionOnly) {
  StartServer();
  RawClient slow(server_->port());
  ASSERT_TRUE(slow.Send("GET /slow HTTP/1.1\r\n"));
  bool closed = false;
  // Dribble a header line every 100 ms: the whole request must arrive within read_timeout.
  for (int i = 0; i < 20 && !closed; ++i) {
    ExpectServing();
    closed =
        !slow.Send("X-Drip: " + std::to_string(i) + "\r\n") || slow.ClosedWithin(milliseconds(100));
  }
  EXPECT_TRUE(closed);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  StartServer();
  RawClient c(server_->port());
  ASSERT_TRUE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(StatusOf(c.ReadResponse()), 200);
  EXPECT_TRUE(c.ClosedWithin(milliseconds(2000)));
}

TEST_F(HttpServerTest, ConnectionsOverTheLimitGet503) {
  auto options = FastOptions();
  options.max_connections = 2;
  options.read_timeout = milliseconds(2000);
  StartServer(options);
  RawClient a(server_->port());
  RawClient b(server_->port());
  ASSERT_TRUE(a.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(b.Send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(StatusOf(a.ReadResponse()), 200);
  ASSERT_EQ(StatusOf(b.ReadResponse()), 200);
  RawClient c(server_->port());
  std::string all = c.ReadUntilClose(milliseconds(2000));
  EXPECT_EQ(StatusOf(all), 503) << all;
  EXPECT_NE(all.find("too many connections"), std::string::npos);
}

TEST_F(HttpServerTest, ManyConcurrentClients) {
  auto options = FastOptions();
  options.read_timeout = milliseconds(3000);
  StartServer(options);
  constexpr int kThreads = 32;
  constexpr int kRequests = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        auto res = HttpGet(Url(*server_, "/c?t=" + std::to_string(t)), milliseconds(5000));
        if (res && res->status == 200 && res->body == "GET /c t=" + std::to_string(t)) ++ok;
      }
    });
  }
  // And a set of idle connections held open at the same time.
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 50; ++i) idle.push_back(std::make_unique<RawClient>(server_->port()));
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kRequests);
}

TEST_F(HttpServerTest, HandlerExceptionGives500AndServerSurvives) {
  StartServer();
  auto res = HttpGet(Url(*server_, "/throw"), milliseconds(2000));
  ASSERT_TRUE(res) << res.error().ToString();
  EXPECT_EQ(res->status, 500);
  EXPECT_NE(res->body.find("boom"), std::string::npos);
  ExpectServing();
}

TEST_F(HttpServerTest, BasicAuthGuardsUnsafeMethodsOnly) {
  auto options = FastOptions();
  options.username = "admin";
  options.password = "s3cret";
  StartServer(options);

  auto get = HttpGet(Url(*server_, "/patroni"), milliseconds(2000));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);

  auto none = HttpPost(Url(*server_, "/restart"), "{}", milliseconds(2000));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->body, "no auth header received\n");
  bool has_challenge = false;
  for (const auto& [k, v] : none->headers) {
    if (k == "WWW-Authenticate" && v.rfind("Basic ", 0) == 0) has_challenge = true;
  }
  EXPECT_TRUE(has_challenge);

  HttpClientRequest wrong;
  wrong.method = "POST";
  wrong.url = Url(*server_, "/restart");
  wrong.body = "{}";
  wrong.username = "admin";
  wrong.password = "guess";
  auto bad = HttpCall(wrong);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  EXPECT_EQ(bad->body, "not authenticated\n");

  HttpClientRequest right = wrong;
  right.password = "s3cret";
  auto good = HttpCall(right);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
  EXPECT_EQ(good->body, "POST /restart body={}");

  right.method = "DELETE";
  right.body.clear();
  right.password = "nope";
  auto del = HttpCall(right);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 401);
}

TEST(HttpServerAsync, RespondsFromAnotherThreadAndStopDropsLateAnswers) {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::vector<HttpResponder> parked;
  HttpServerOptions options = FastOptions();
  options.read_timeout = milliseconds(3000);
  auto server = std::make_unique<HttpServer>(
      options, AsyncHttpHandler([&](HttpRequest req, HttpResponder respond) {
        if (req.path == "/park") {
          std::lock_guard lock(mu);
          parked.push_back(std::move(respond));
          return;
        }
        workers.emplace_back([respond = std::move(respond)] {
          std::this_thread::sleep_for(milliseconds(20));
          respond(HttpResponse::Text(202, "later"));
          respond(HttpResponse::Text(500, "a second answer is ignored"));
        });
      }));
  ASSERT_TRUE(server->Start());
  auto res = HttpGet(Url(*server, "/work"), milliseconds(2000));
  ASSERT_TRUE(res) << res.error().ToString();
  EXPECT_EQ(res->status, 202);
  EXPECT_EQ(res->body, "later");

  // A request whose answer comes after Stop(): the client sees the connection close.
  std::thread client([&] {
    auto r = HttpGet(Url(*server, "/park"), milliseconds(3000));
    EXPECT_FALSE(r);
  });
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(mu);
      if (!parked.empty()) break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  server->Stop();
  client.join();
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(parked.size(), 1u);
    parked[0](HttpResponse::Text(200, "too late"));  // dropped, no crash
  }
  server.reset();
  parked.clear();  // the last owner of the session goes away after the server
  for (auto& w : workers) w.join();
}

TEST(HttpServerStart, RejectsBadListenAddresses) {
  for (const char* listen : {"nonsense", "127.0.0.1:99999", "127.0.0.1:", "::1:80", "[::1"}) {
    HttpServerOptions options;
    options.listen = listen;
    HttpServer server(options, Echo);
    auto started = server.Start();
    ASSERT_FALSE(started) << listen;
    EXPECT_EQ(started.error().code, ErrorCode::kInvalidArgument) << listen;
  }
}

TEST(HttpServerStart, PortInUseIsUnavailable) {
  HttpServer first(FastOptions(), Echo);
  ASSERT_TRUE(first.Start());
  HttpServerOptions options = FastOptions();
  options.listen = "127.0.0.1:" + std::to_string(first.port());
  HttpServer second(options, Echo);
  auto started = second.Start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, ErrorCode::kUnavailable);
}

TEST(HttpClient, ConnectionRefusedIsUnavailable) {
  uint16_t port = 0;
  {
    HttpServer s(FastOptions(), Echo);
    ASSERT_TRUE(s.Start());
    port = s.port();
  }
  auto res = HttpGet("http://127.0.0.1:" + std::to_string(port) + "/", milliseconds(1000));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, ErrorCode::kUnavailable) << res.error().ToString();
}

TEST(HttpClient, SilentServerTimesOutWithinTheDeadline) {
  HttpServerOptions options = FastOptions();
  options.read_timeout = milliseconds(5000);
  std::vector<HttpResponder> parked;  // never answered
  HttpServer server(options, AsyncHttpHandler([&](HttpRequest, HttpResponder respond) {
                      parked.push_back(std::move(respond));
                    }));
  ASSERT_TRUE(server.Start());
  auto start = std::chrono::steady_clock::now();
  auto res = HttpGet(Url(server, "/patroni"), milliseconds(300));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, ErrorCode::kTimeout) << res.error().ToString();
  EXPECT_LT(took, milliseconds(1500));
  server.Stop();
}

TEST(HttpClient, BadUrlsAreInvalidArguments) {
  for (const char* url : {"https://127.0.0.1:1/", "127.0.0.1:8008/patroni", "http://",
                          "http://h:x/", "http://u:p@127.0.0.1:1/"}) {
    auto res = HttpGet(url, milliseconds(200));
    ASSERT_FALSE(res) << url;
    EXPECT_EQ(res.error().code, ErrorCode::kInvalidArgument) << url;
  }
}

TEST(HttpClient, GarbageAnswerIsCorrupt) {
  // A server that answers anything with non-HTTP bytes.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread peer([fd] {
    int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) return;
    char buf[1024];
    (void)::recv(c, buf, sizeof buf, 0);
    const char junk[] = "SSH-2.0-OpenSSH\r\n\r\n";
    (void)::send(c, junk, sizeof junk - 1, MSG_NOSIGNAL);
    ::close(c);
  });
  auto res =
      HttpGet("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/", milliseconds(2000));
  peer.join();
  ::close(fd);
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, ErrorCode::kCorrupt) << res.error().ToString();
}

}  // namespace
}  // namespace pgwarden::api
