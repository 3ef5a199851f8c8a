// EtcdDcs against a real etcd 3.4: the Dcs contract suite, plus what only a real server
// shows: restarts, compaction, failover between members, deadlines on a frozen etcd, and
// malformed answers from a fake server.
#include "dcs/etcd3/etcd_dcs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "common/process.h"
#include "dcs_contract.h"
#include "fake_http_server.h"
#include "support/etcd_server.h"
#include "support/ports.h"

namespace pgwarden::dcs {
namespace {

using pgwarden::testing::EtcdCluster;
using pgwarden::testing::EtcdServer;
using std::chrono::seconds;
using testing_support::FakeAnswer;
using testing_support::FakeHttpServer;

// One etcd for the whole contract suite (cases use distinct key prefixes).
EtcdServer& SharedEtcd() {
  static EtcdServer* server = [] {
    auto* s = new EtcdServer();
    auto started = s->Start();
    if (!started) {
      ADD_FAILURE() << "cannot start etcd: " << started.error().ToString();
    }
    return s;
  }();
  return *server;
}

class SharedEtcdCleanup : public ::testing::Environment {
 public:
  void TearDown() override { SharedEtcd().Kill(); }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new SharedEtcdCleanup);

std::unique_ptr<EtcdDcs> Client(std::vector<std::string> endpoints,
                                Duration request_timeout = seconds(2)) {
  EtcdOptions options;
  options.endpoints = std::move(endpoints);
  options.request_timeout = request_timeout;
  options.connect_timeout = std::chrono::milliseconds(300);
  auto client = EtcdDcs::Create(options);
  EXPECT_TRUE(client) << client.error().ToString();
  return client ? std::move(*client) : nullptr;
}

class EtcdHarness final : public contract::DcsHarness {
 public:
  EtcdHarness() : dcs_(Client({SharedEtcd().endpoint()})) {
    static std::atomic<int> counter{0};
    prefix_ = "/contract/" + std::to_string(++counter) + "/";
  }
  Dcs& dcs() override { return *dcs_; }
  std::string prefix() override { return prefix_; }
  void Pass(Duration d) override { std::this_thread::sleep_for(d); }
  Duration expiry_slack() override { return seconds(5); }

 private:
  std::unique_ptr<EtcdDcs> dcs_;
  std::string prefix_;
};

std::unique_ptr<contract::DcsHarness> MakeEtcdHarness() { return std::make_unique<EtcdHarness>(); }

using contract::DcsContractTest;
INSTANTIATE_TEST_SUITE_P(Etcd, DcsContractTest, ::testing::Values(&MakeEtcdHarness));

// Reads from `watch` until `count` events arrived or `budget` passed.
std::vector<WatchEvent> Collect(Watch& watch, std::size_t count, Duration budget = seconds(10)) {
  std::vector<WatchEvent> events;
  const auto deadline = SteadyClock::now() + budget;
  while (events.size() < count && SteadyClock::now() < deadline) {
    auto batch = watch.Next(std::chrono::milliseconds(200));
    if (!batch) continue;  // kUnavailable while reconnecting
    for (auto& ev : batch->events) events.push_back(std::move(ev));
  }
  return events;
}

template <typename Fn>
auto Timed(Fn&& fn, Duration* took) {
  const auto start = SteadyClock::now();
  auto result = fn();
  *took = SteadyClock::now() - start;
  return result;
}

TEST(EtcdDcsTest, CreateRejectsBadOptions) {
  EXPECT_EQ(EtcdDcs::Create({}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(EtcdDcs::Create({{"no-port"}}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(EtcdDcs::Create({{"https://127.0.0.1:2379"}}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(EtcdDcs::Create({{"127.0.0.1:99999"}}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(EtcdDcs::Create({{"http://127.0.0.1:2379/"}}));
}

TEST(EtcdDcsTest, WatchSurvivesAnEtcdRestartWithoutLossOrDuplicates) {
  EtcdServer etcd;
  ASSERT_TRUE(etcd.Start());
  auto dcs = Client({etcd.endpoint()});
  auto watch = dcs->WatchPrefix("/r/");
  ASSERT_TRUE(dcs->Put("/r/a", "1"));
  ASSERT_TRUE(dcs->Put("/r/b", "2"));
  auto before = Collect(*watch, 2);
  ASSERT_EQ(before.size(), 2u);
  // An event the watcher has not read yet when etcd goes down.
  ASSERT_TRUE(dcs->Put("/r/c", "3"));

  etcd.Stop();
  Duration took;
  auto down = Timed([&] { return watch->Next(std::chrono::milliseconds(500)); }, &took);
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  if (!down) {
    EXPECT_EQ(down.error().code, ErrorCode::kUnavailable) << down.error().ToString();
  }
  auto put_down = dcs->Put("/r/x", "lost");
  ASSERT_FALSE(put_down);
  EXPECT_EQ(put_down.error().code, ErrorCode::kUnavailable) << put_down.error().ToString();

  ASSERT_TRUE(etcd.Start());
  ASSERT_TRUE(dcs->Put("/r/d", "4"));
  ASSERT_TRUE(dcs->Put("/r/e", "5"));
  std::vector<WatchEvent> after;
  if (down) after = down->events;  // /r/c may have arrived before the stop
  auto rest = Collect(*watch, 3 - after.size());
  after.insert(after.end(), rest.begin(), rest.end());
  std::vector<std::string> keys;
  for (const auto& ev : after) keys.push_back(ev.kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"/r/c", "/r/d", "/r/e"}));
  for (std::size_t i = 1; i < after.size(); ++i) {
    EXPECT_GT(after[i].kv.mod_revision, after[i - 1].kv.mod_revision);
  }
  auto extra = watch->Next(std::chrono::milliseconds(300));
  ASSERT_TRUE(extra);
  EXPECT_TRUE(extra->events.empty()) << "no event twice";
}

TEST(EtcdDcsTest, CompactedStartRevisionIsReportedOnceThenTheWatchResumes) {
  auto dcs = Client({SharedEtcd().endpoint()});
  auto r1 = dcs->Put("/compact/a", "1");
  auto r2 = dcs->Put("/compact/a", "2");
  auto r3 = dcs->Put("/compact/a", "3");
  ASSERT_TRUE(r1 && r2 && r3);
  auto compacted = pgwarden::Run(
      {{"etcdctl", "--endpoints=" + SharedEtcd().endpoint(), "compact", std::to_string(*r3)}},
      std::chrono::milliseconds(10000));
  ASSERT_TRUE(compacted && compacted->exit_code == 0)
      << (compacted ? compacted->output : compacted.error().ToString());

  auto watch = dcs->WatchPrefix("/compact/", *r1);
  auto first = watch->Next(seconds(2));
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, ErrorCode::kCompacted) << first.error().ToString();
  // Then the watch goes on from the compaction revision: nothing after it is missed.
  auto resumed = Collect(*watch, 1, seconds(3));
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].kv.mod_revision, *r3);
  ASSERT_TRUE(dcs->Put("/compact/b", "4"));
  auto later = Collect(*watch, 1, seconds(3));
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].kv.key, "/compact/b");

  // A watch from the compaction revision itself is fine.
  auto ok = dcs->WatchPrefix("/compact/", *r3);
  auto events = Collect(*ok, 2, seconds(3));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kv.value, "3");
}

TEST(EtcdDcsTest, CancelFromAnotherThreadWakesABlockedNext) {
  auto dcs = Client({SharedEtcd().endpoint()});
  auto watch = dcs->WatchPrefix("/cancel/");
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    watch->Cancel();
  });
  Duration took;
  auto next = Timed([&] { return watch->Next(seconds(10)); }, &took);
  canceller.join();
  ASSERT_FALSE(next);
  EXPECT_EQ(next.error().code, ErrorCode::kCancelled);
  EXPECT_LT(took, seconds(2));
  EXPECT_EQ(watch->Next(Duration::zero()).error().code, ErrorCode::kCancelled);
}

TEST(EtcdDcsTest, DeadFirstEndpointIsSkipped) {
  // A port nothing listens on: connect fails, nothing was sent, so even writes move on.
  const std::string dead = "127.0.0.1:" + std::to_string(pgwarden::testing::FreeLoopbackPort());
  auto dcs = Client({dead, SharedEtcd().endpoint()});
  auto put = dcs->Put("/failover/dead-first", "x");
  ASSERT_TRUE(put) << put.error().ToString();
  auto got = dcs->Get("/failover/dead-first");
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(dcs->current_endpoint(), SharedEtcd().endpoint());
  auto watch = dcs->WatchPrefix("/failover/w/");
  ASSERT_TRUE(dcs->Put("/failover/w/1", "x"));
  EXPECT_EQ(Collect(*watch, 1, seconds(3)).size(), 1u);
}

TEST(EtcdDcsTest, ClusterKeepsServingWhenAMemberIsKilled) {
  EtcdCluster cluster(3);
  auto started = cluster.Start();
  ASSERT_TRUE(started) << started.error().ToString();
  auto dcs = Client(cluster.endpoints(), seconds(3));
  auto watch = dcs->WatchPrefix("/ha/");
  ASSERT_TRUE(dcs->Put("/ha/1", "before"));
  ASSERT_EQ(Collect(*watch, 1, seconds(3)).size(), 1u);
  ASSERT_EQ(dcs->current_endpoint(), cluster.member(0).endpoint());

  cluster.member(0).Kill();
  // Reads move on at once; the first write may find the dead connection (kUnavailable: its
  // outcome is unknown to the client), a retry goes to a live member.
  auto got = dcs->Get("/ha/1");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_NE(dcs->current_endpoint(), cluster.member(0).endpoint());
  Result<Revision> put = Fail(ErrorCode::kUnavailable, "not tried");
  for (int i = 0; i < 20 && !put; ++i) {
    put = dcs->Put("/ha/2", "after");
    if (!put) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(put) << put.error().ToString();
  auto lease = dcs->GrantLease(seconds(5));
  ASSERT_TRUE(lease) << lease.error().ToString();
  EXPECT_TRUE(dcs->KeepAlive(lease->id));

  auto events = Collect(*watch, 1, seconds(10));
  ASSERT_EQ(events.size(), 1u) << "the watch resumed on another member";
  EXPECT_EQ(events[0].kv.key, "/ha/2");
  EXPECT_EQ(events[0].kv.mod_revision, *put);
}

TEST(EtcdDcsTest, FrozenEtcdTimesOutWithinTheDeadline) {
  EtcdServer etcd;
  ASSERT_TRUE(etcd.Start());
  const Duration timeout = std::chrono::milliseconds(500);
  const Duration margin = std::chrono::milliseconds(300);
  auto dcs = Client({etcd.endpoint()}, timeout);
  ASSERT_TRUE(dcs->Put("/f/a", "1"));
  auto watch = dcs->WatchPrefix("/f/");
  ASSERT_TRUE(watch->Next(std::chrono::milliseconds(10)));

  etcd.Freeze();
  Duration took;
  auto get = Timed([&] { return dcs->Get("/f/a"); }, &took);
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().code, ErrorCode::kTimeout) << get.error().ToString();
  EXPECT_LT(took, timeout + margin);
  EXPECT_GE(took, timeout - std::chrono::milliseconds(50));

  auto put = Timed([&] { return dcs->Put("/f/b", "2"); }, &took);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kTimeout) << put.error().ToString();
  EXPECT_LT(took, timeout + margin);

  auto next = Timed([&] { return watch->Next(std::chrono::milliseconds(300)); }, &took);
  EXPECT_LT(took, std::chrono::milliseconds(300) + margin);
  if (next) {
    EXPECT_TRUE(next->events.empty());
  }

  // A new watch on a frozen etcd is bounded too.
  auto fresh = Timed([&] { return dcs->WatchPrefix("/f/"); }, &took);
  EXPECT_LT(took, timeout + margin);

  etcd.Thaw();
  auto after = dcs->Get("/f/a");
  ASSERT_TRUE(after) << after.error().ToString();
  // The put that timed out may or may not have been applied; the watch sees the truth.
  ASSERT_TRUE(dcs->Put("/f/c", "3"));
  std::vector<WatchEvent> events;
  for (int i = 0; i < 25 && (events.empty() || events.back().kv.key != "/f/c"); ++i) {
    auto more = Collect(*watch, 1, std::chrono::milliseconds(200));
    events.insert(events.end(), more.begin(), more.end());
  }
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kv.key, "/f/c");
  ASSERT_LE(events.size(), 2u);
  if (events.size() == 2) {
    EXPECT_EQ(events[0].kv.key, "/f/b");
  }
}

// ---- malformed answers (fake server) ----

Error CallGet(const std::string& endpoint) {
  auto dcs = Client({endpoint}, std::chrono::milliseconds(1000));
  auto got = dcs->Get("/k");
  EXPECT_FALSE(got);
  return got ? Error{ErrorCode::kFailed, "unexpected success"} : got.error();
}

TEST(EtcdDcsMalformedTest, BadAnswersAreCorruptNotCrashes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"garbage JSON", FakeHttpServer::Ok("{not json")},
      {"JSON array", FakeHttpServer::Ok("[1,2]")},
      {"no header", FakeHttpServer::Ok(R"({"kvs":[]})")},
      {"bad base64",
       FakeHttpServer::Ok(
           R"({"header":{"revision":"5"},"kvs":[{"key":"!!!","mod_revision":"5"}]})")},
      {"int64 not a number", FakeHttpServer::Ok(R"({"header":{"revision":"five"},"kvs":[]})")},
      {"kvs not an array", FakeHttpServer::Ok(R"({"header":{"revision":"5"},"kvs":{}})")},
      {"kv not an object", FakeHttpServer::Ok(R"({"header":{"revision":"5"},"kvs":[7]})")},
      {"bad chunk framing", FakeHttpServer::Chunked("zz\r\n{}\r\n0\r\n\r\n")},
      {"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n"},
      {"unexpected 404 text", FakeHttpServer::Ok("Not Found", 404)},
  };
  for (const auto& [name, bytes] : cases) {
    FakeHttpServer server(
        [&](const std::string&, const std::string&) { return FakeAnswer{bytes}; });
    Error e = CallGet(server.endpoint());
    EXPECT_EQ(e.code, ErrorCode::kCorrupt) << name << ": " << e.ToString();
    EXPECT_FALSE(e.message.empty());
  }
}

TEST(EtcdDcsMalformedTest, TruncatedBodyIsALostAnswer) {
  // The connection closes in the middle of a chunk: the answer was lost, like a crash of
  // etcd mid-answer (kUnavailable: retried on another endpoint for reads).
  FakeHttpServer server([](const std::string&, const std::string&) {
    return FakeAnswer{FakeHttpServer::Chunked("40\r\n{\"header\":{\"revision\":\"5\"")};
  });
  Error e = CallGet(server.endpoint());
  EXPECT_EQ(e.code, ErrorCode::kUnavailable) << e.ToString();
}

TEST(EtcdDcsMalformedTest, GatewayErrorsAreMapped) {
  struct Case {
    std::string bytes;
    ErrorCode code;
  };
  const std::vector<Case> cases = {
      {FakeHttpServer::Ok(R"({"error":"etcdserver: requested lease not found",)"
                          R"("message":"etcdserver: requested lease not found","code":5})",
                          404),
       ErrorCode::kNotFound},
      {FakeHttpServer::Ok(R"({"error":"etcdserver: no leader","message":"etcdserver: no leader",)"
                          R"("code":14})",
                          503),
       ErrorCode::kUnavailable},
      {FakeHttpServer::Ok(R"({"message":"etcdserver: too many requests","code":8})", 429),
       ErrorCode::kUnavailable},
      {FakeHttpServer::Ok(R"({"message":"etcdserver: request timed out","code":14})", 503),
       ErrorCode::kTimeout},
      {FakeHttpServer::Ok("Bad Gateway", 502), ErrorCode::kUnavailable},
      {FakeHttpServer::Ok(R"({"message":"etcdserver: duplicate key given in txn request",)"
                          R"("code":3})",
                          400),
       ErrorCode::kInvalidArgument},
  };
  for (const auto& tc : cases) {
    FakeHttpServer server(
        [&](const std::string&, const std::string&) { return FakeAnswer{tc.bytes}; });
    auto dcs = Client({server.endpoint()}, std::chrono::milliseconds(1000));
    auto revoke = dcs->RevokeLease(42);
    ASSERT_FALSE(revoke);
    EXPECT_EQ(revoke.error().code, tc.code) << revoke.error().ToString();
  }
}

TEST(EtcdDcsMalformedTest, KeepAliveWithoutTtlIsNotFound) {
  FakeHttpServer server([](const std::string&, const std::string&) {
    return FakeAnswer{FakeHttpServer::Ok(R"({"result":{"header":{"revision":"3"},"ID":"42"}})")};
  });
  auto dcs = Client({server.endpoint()});
  auto ka = dcs->KeepAlive(42);
  ASSERT_FALSE(ka);
  EXPECT_EQ(ka.error().code, ErrorCode::kNotFound);
}

TEST(EtcdDcsMalformedTest, WatchStreamWithBadMessagesReportsCorrupt) {
  const std::string created = R"({"result":{"header":{"revision":"7"},"created":true}})";
  const std::vector<std::string> bad = {
      "{oops\n",
      R"({"result":{"header":{"revision":"8"},"events":[{"kv":{"key":"%%%","mod_revision":"8"}}]}})"
      "\n",
      R"({"result":{"header":{"revision":"8"},"events":[{"type":"BOGUS","kv":{}}]}})"
      "\n",
  };
  for (const auto& line : bad) {
    std::string body = created + "\n" + line;
    char size[32];
    snprintf(size, sizeof size, "%zx\r\n", body.size());
    FakeHttpServer server([&](const std::string& target, const std::string&) {
      if (target != "/v3/watch") return FakeAnswer{FakeHttpServer::Ok("{}", 404)};
      return FakeAnswer{FakeHttpServer::Chunked(size + body + "\r\n"),
                        std::chrono::milliseconds(1000)};
    });
    auto dcs = Client({server.endpoint()}, std::chrono::milliseconds(1000));
    auto watch = dcs->WatchPrefix("/w/");
    Duration took;
    auto next = Timed([&] { return watch->Next(std::chrono::milliseconds(500)); }, &took);
    ASSERT_FALSE(next) << line;
    EXPECT_EQ(next.error().code, ErrorCode::kCorrupt) << next.error().ToString();
    EXPECT_LT(took, std::chrono::milliseconds(1000));
    watch->Cancel();
  }
}

TEST(EtcdDcsMalformedTest, ServerThatNeverAnswersTimesOut) {
  FakeHttpServer server([](const std::string&, const std::string&) {
    return FakeAnswer{"", std::chrono::milliseconds(3000)};
  });
  auto dcs = Client({server.endpoint()}, std::chrono::milliseconds(400));
  Duration took;
  auto put = Timed([&] { return dcs->Put("/k", "v"); }, &took);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kTimeout) << put.error().ToString();
  EXPECT_LT(took, std::chrono::milliseconds(700));
}

}  // namespace
}  // namespace pgwarden::dcs
