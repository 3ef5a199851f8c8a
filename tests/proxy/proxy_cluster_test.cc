// `pgwarden proxy` end to end: three real agents with PostgreSQL 15 over one real etcd
// (tests/support/cluster_harness.h) and two real `pgwarden proxy` processes fed from that etcd.
// The cases share the cluster and run in order: roles through every port, switchover (with a
// connection held across it), primary crash, libpq multi-host over both proxies with one
// killed, and finally a proxy cut off from etcd.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "common/process.h"
#include "support/cluster_harness.h"
#include "support/temp_dir.h"

namespace pgwarden::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

// libpq to 127.0.0.1:<port> (or a multi-host `hosts`/`ports` list) as the superuser.
PgConn Connect(const std::string& hosts, const std::string& ports, int connect_timeout_s,
               const char* target_session_attrs = "any") {
  const std::string timeout = std::to_string(connect_timeout_s);
  const char* keys[] = {"host",
                        "port",
                        "user",
                        "password",
                        "dbname",
                        "connect_timeout",
                        "target_session_attrs",
                        "application_name",
                        nullptr};
  const char* values[] = {
      hosts.c_str(), ports.c_str(),   "postgres",           kClusterSuperuserPassword,
      "postgres",    timeout.c_str(), target_session_attrs, "proxytest",
      nullptr};
  return PgConn(PQconnectdbParams(keys, values, 0));
}
PgConn Connect(uint16_t port, int connect_timeout_s = 5) {
  return Connect("127.0.0.1", std::to_string(port), connect_timeout_s);
}

// "f 5433": pg_is_in_recovery() and inet_server_port(), or "" on any error.
std::string WhereAmI(PGconn* c) {
  if (c == nullptr || PQstatus(c) != CONNECTION_OK) return "";
  PGresult* r = PQexec(
      c, "SELECT CASE WHEN pg_is_in_recovery() THEN 't' ELSE 'f' END || ' ' || inet_server_port()");
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) out = PQgetvalue(r, 0, 0);
  PQclear(r);
  return out;
}
std::string Role(uint16_t pg_port, bool primary) {
  return std::string(primary ? "f " : "t ") + std::to_string(pg_port);
}

class ProxyCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.pgwarden_binary = PGWARDEN_BINARY;
    o.scope = "proxytest";
    cluster_ = new ClusterHarness(o);
    auto r = cluster_->Start();
    ASSERT_TRUE(r) << r.error().ToString();
    for (int i = 0; i < 2; ++i) {
      auto p = cluster_->StartProxy("  hold_timeout: 20s\n  connect_timeout: 1s\n");
      ASSERT_TRUE(p) << p.error().ToString();
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure() && cluster_) {
      std::cerr << cluster_->AllLogs() << "\n";
      for (size_t i = 0; i < 2; ++i) {
        std::cerr << "==== proxy p" << i + 1 << "\n" << cluster_->ProxyLog(i, 4000) << "\n";
      }
    }
  }
  ClusterHarness& c() { return *cluster_; }

  // One primary (by its REST API, and its SQL) and every other live node a streaming replica.
  bool Healthy(size_t expected_replicas, size_t* primary_out) {
    auto p = c().Primary();
    if (!p) return false;
    auto rec = c().SqlValue(*p, "SELECT pg_is_in_recovery()");
    if (!rec || *rec != "f") return false;
    auto streaming =
        c().SqlValue(*p, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'");
    if (!streaming || *streaming != std::to_string(expected_replicas)) return false;
    *primary_out = *p;
    return true;
  }
  // The proxy's /status JSON (null when it does not answer).
  nlohmann::json Status(size_t proxy) {
    auto [code, body] = c().ProxyGet(proxy, "/status");
    if (code != 200) return nullptr;
    return nlohmann::json::parse(body, nullptr, false);
  }
  // Waits until `proxy` routes its primary port to `node` (and it answers as the primary).
  bool PrimaryPortReaches(size_t proxy, size_t node, milliseconds timeout) {
    return ClusterHarness::WaitFor(
        [&] {
          auto conn = Connect(c().proxy(proxy).primary_port, 3);
          return WhereAmI(conn.get()) == Role(c().node(node).pg_port, true);
        },
        timeout);
  }

  static ClusterHarness* cluster_;
  static size_t primary_;
  static std::set<size_t> dead_;  // nodes crashed by a case
};
ClusterHarness* ProxyCluster::cluster_ = nullptr;
size_t ProxyCluster::primary_ = 0;
std::set<size_t> ProxyCluster::dead_;

TEST_F(ProxyCluster, EveryPortLandsOnAMemberOfItsRole) {
  ASSERT_TRUE(ClusterHarness::WaitFor([&] { return Healthy(2, &primary_); }, seconds(60)))
      << "no healthy cluster";
  // Asynchronous replication (the harness's default): both replicas are async, the sync port
  // has no member and refuses its clients at once.
  std::vector<size_t> replicas;
  for (size_t i = 0; i < c().size(); ++i) {
    if (i != primary_) replicas.push_back(i);
  }
  const std::set<std::string> replica_roles = {Role(c().node(replicas[0]).pg_port, false),
                                               Role(c().node(replicas[1]).pg_port, false)};
  for (size_t p = 0; p < 2; ++p) {
    SCOPED_TRACE("proxy p" + std::to_string(p + 1));
    ASSERT_TRUE(PrimaryPortReaches(p, primary_, seconds(10))) << Status(p).dump();
    ASSERT_TRUE(ClusterHarness::WaitFor(
        [&] {
          auto st = Status(p);
          return st.is_object() && st["routes"]["async"]["candidates"].size() == 2;
        },
        seconds(10)))
        << Status(p).dump();
    // Least connections: two open sessions on a replica port land on different replicas.
    for (uint16_t port : {c().proxy(p).async_port, c().proxy(p).replica_port}) {
      auto r1 = Connect(port);
      auto r2 = Connect(port);
      std::set<std::string> seen = {WhereAmI(r1.get()), WhereAmI(r2.get())};
      EXPECT_EQ(seen, replica_roles) << "port " << port;
    }
    auto sync = Connect(c().proxy(p).sync_port, 3);
    EXPECT_NE(PQstatus(sync.get()), CONNECTION_OK) << "no synchronous replica: refused";
  }
  // psql through the primary port too.
  Command psql;
  psql.argv = {"/usr/lib/postgresql/15/bin/psql",
               "-XAtq",
               "-h",
               "127.0.0.1",
               "-p",
               std::to_string(c().proxy(1).primary_port),
               "-U",
               "postgres",
               "-d",
               "postgres",
               "-c",
               "SELECT pg_is_in_recovery(), inet_server_port()"};
  psql.env["PGPASSWORD"] = kClusterSuperuserPassword;
  psql.env["PGCONNECT_TIMEOUT"] = "5";
  auto out = pgwarden::Run(psql, seconds(10));
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->output, "f|" + std::to_string(c().node(primary_).pg_port) + "\n");
}

TEST_F(ProxyCluster, SwitchoverMovesThePrimaryPortAndHoldsNewConnections) {
  auto old_session = Connect(c().proxy(0).primary_port);
  ASSERT_EQ(WhereAmI(old_session.get()), Role(c().node(primary_).pg_port, true));
  const int held_before = Status(0)["counters"]["hold_released"].get<int>();

  // A connection-per-request client through p1 during the switchover: every connection that
  // succeeds is on a primary; none fails after the first one that reached the new primary.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, on_replica{0};
  std::atomic<long> longest_ms{0};
  std::mutex mu;
  std::vector<std::string> outcomes;  // in order: "f <port>", "t <port>" or "error: ..."
  std::vector<Clock::time_point> failure_times;
  std::thread client([&] {
    while (!stop) {
      auto t0 = Clock::now();
      auto conn = Connect(c().proxy(0).primary_port, 25);
      std::string where = WhereAmI(conn.get());
      long ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
      {
        std::lock_guard lock(mu);
        outcomes.push_back(where.empty() ? "error: " + std::string(PQerrorMessage(conn.get()))
                                         : where);
        if (where.empty()) failure_times.push_back(Clock::now());
      }
      if (where.empty()) {
        ++failed;
      } else if (where[0] == 't') {
        ++on_replica;
      } else {
        ++ok;
        if (ms > longest_ms) longest_ms = ms;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  struct Joiner {  // an ASSERT below must not leave the thread joinable
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, client};
  std::this_thread::sleep_for(milliseconds(300));
  const std::string body = R"({"leader": ")" + c().node(primary_).name + R"("})";
  auto [code, answer] = c().Post(primary_, "/switchover", body);
  ASSERT_EQ(code, 200) << answer;
  size_t np = primary_;
  EXPECT_TRUE(
      ClusterHarness::WaitFor([&] { return Healthy(2, &np) && np != primary_; }, seconds(40)));
  ASSERT_NE(np, primary_);
  std::this_thread::sleep_for(milliseconds(500));
  stop = true;
  client.join();

  for (size_t p = 0; p < 2; ++p) {
    EXPECT_TRUE(PrimaryPortReaches(p, np, seconds(5))) << "p" << p + 1 << Status(p).dump();
  }
  EXPECT_EQ(WhereAmI(old_session.get()), "") << "the session to the old primary stayed open";
  EXPECT_EQ(on_replica.load(), 0);
  // The feed hides the primary as soon as the switchover request is in etcd, so new clients
  // are held rather than sent to a server that is shutting down: only a request in flight when
  // the old primary's sessions are closed may fail. From the first connection on the new
  // primary on, every connection succeeds there.
  std::string all;
  bool on_new = false;
  int failed_after = 0;
  for (const std::string& o : outcomes) {
    all += o + "\n";
    if (o == Role(c().node(np).pg_port, true)) on_new = true;
    if (on_new && o != Role(c().node(np).pg_port, true)) ++failed_after;
  }
  EXPECT_TRUE(on_new) << all;
  EXPECT_EQ(failed_after, 0) << all;
  EXPECT_LE(failed.load(), 2) << all;
  if (!failure_times.empty()) {
    EXPECT_LE(std::chrono::duration_cast<milliseconds>(failure_times.back() - failure_times.front())
                  .count(),
              1000)
        << "failures spread over more than the demotion window:\n"
        << all;
  }
  EXPECT_GT(ok.load(), 2);
  // At least one connection was held while there was no primary, then released to the new one.
  EXPECT_GT(Status(0)["counters"]["hold_released"].get<int>(), held_before);
  std::cerr << "switchover: " << ok << " connections ok, " << failed << " failed, longest "
            << longest_ms << " ms\n";
  primary_ = np;
}

// One request of a connection-per-request writer: connect through `port`, insert a row, return
// the server port that took it ("" and `error` set on any failure).
std::string WriteOnce(uint16_t port, std::string* error) {
  auto conn = Connect(port, 25);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    *error = PQerrorMessage(conn.get());
    return "";
  }
  PGresult* r =
      PQexec(conn.get(), "INSERT INTO proxy_crash_writes VALUES (1) RETURNING inet_server_port()");
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
    out = PQgetvalue(r, 0, 0);
  } else {
    *error = PQerrorMessage(conn.get());
  }
  PQclear(r);
  return out;
}

// Whether something accepts TCP connections on 127.0.0.1:<port> now.
bool TcpAccepts(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

TEST_F(ProxyCluster, PrimaryCrashMovesThePrimaryPort) {
  auto old_session = Connect(c().proxy(1).primary_port);
  ASSERT_EQ(WhereAmI(old_session.get()), Role(c().node(primary_).pg_port, true));
  ASSERT_TRUE(c().Sql(primary_, "CREATE TABLE IF NOT EXISTS proxy_crash_writes (i int)"));

  // A connection-per-request writer through p2, one request every 100 ms, over the crash.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> outcomes;
  std::vector<std::pair<Clock::time_point, bool>> done;  // completion time, success
  std::thread writer([&] {
    while (!stop) {
      std::string error;
      std::string port = WriteOnce(c().proxy(1).primary_port, &error);
      std::lock_guard lock(mu);
      outcomes.push_back(port.empty() ? "error: " + error : port);
      done.emplace_back(Clock::now(), !port.empty());
      if (done.size() > 2000) break;  // bound: 2,000 requests is far past any failover
      std::this_thread::sleep_for(milliseconds(100));
    }
  });
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, writer};
  // Crash only once the writer is running on the old primary (a loaded box is slow to start).
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return std::count_if(done.begin(), done.end(), [](const auto& d) { return d.second; }) >= 2;
      },
      seconds(10)));

  const size_t crashed = primary_;
  auto t0 = Clock::now();
  c().KillAgent(crashed);
  c().KillPostgres(crashed);
  dead_.insert(crashed);
  // SIGKILL is not instant: until the kernel has torn the postmaster down, its listening
  // socket still completes TCP handshakes (then resets them), which a real host crash does
  // not do. Wait for the port to refuse, as a dead host's would (a few ms).
  bool refused = false;
  for (int i = 0; i < 2500 && !refused; ++i) {  // bounded: 5 s
    refused = !TcpAccepts(c().node(crashed).pg_port);
    if (!refused) std::this_thread::sleep_for(milliseconds(2));
  }
  EXPECT_TRUE(refused) << "the crashed postmaster still accepts connections";
  // A client that connects right after the crash (the leader key still names the dead member
  // for up to ttl) is held by the proxy and gets through to the new primary, without an error.
  std::string right_after_error;
  const std::string right_after = WriteOnce(c().proxy(0).primary_port, &right_after_error);
  const long right_after_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  EXPECT_NE(right_after, "") << right_after_error;
  EXPECT_NE(right_after, std::to_string(c().node(crashed).pg_port));

  size_t np = crashed;
  ASSERT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto conn = Connect(c().proxy(1).primary_port, 15);
        std::string w = WhereAmI(conn.get());
        for (size_t i = 0; i < c().size(); ++i) {
          if (i != crashed && w == Role(c().node(i).pg_port, true)) np = i;
        }
        return np != crashed;
      },
      seconds(30)));
  const long moved_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  std::this_thread::sleep_for(milliseconds(500));
  stop = true;
  writer.join();

  // Outage: from the writer's last success before the kill to its first success after it;
  // failed: requests that ended in an error (refused, closed, timed out).
  int failed = 0, ok = 0;
  long outage_ms = -1;
  Clock::time_point last_ok_before = t0;
  std::string all;
  {
    std::lock_guard lock(mu);
    for (size_t i = 0; i < done.size(); ++i) {
      all += outcomes[i] + "\n";
      if (!done[i].second) {
        ++failed;
        continue;
      }
      ++ok;
      if (done[i].first <= t0) {
        last_ok_before = done[i].first;
      } else if (outage_ms < 0) {
        outage_ms =
            std::chrono::duration_cast<milliseconds>(done[i].first - last_ok_before).count();
      }
    }
  }
  std::cerr << "crash: primary port reaches " << c().node(np).name << " after " << moved_ms
            << " ms; client connected right after the kill done after " << right_after_ms
            << " ms; writer (connect per 100 ms): " << ok << " ok, " << failed << " failed, outage "
            << outage_ms << " ms\n";
  for (const std::string& o : outcomes) {  // the writer has stopped: no lock needed
    if (o.rfind("error: ", 0) == 0) std::cerr << "crash: writer " << o;
  }
  // Held, not refused: no request of the writer fails over the crash (the one in flight at the
  // kill may: its session to the dead primary is cut).
  EXPECT_LE(failed, 1) << all;
  EXPECT_GE(ok, 2) << all;
  {
    std::lock_guard lock(mu);
    ASSERT_FALSE(outcomes.empty());
    EXPECT_EQ(outcomes.back(), std::to_string(c().node(np).pg_port)) << all;
  }
  EXPECT_TRUE(PrimaryPortReaches(0, np, seconds(5))) << Status(0).dump();
  EXPECT_EQ(WhereAmI(old_session.get()), "");
  primary_ = np;
}

TEST_F(ProxyCluster, MultiHostConnectionStringSurvivesAProxyKill) {
  const std::string ports =
      std::to_string(c().proxy(0).primary_port) + "," + std::to_string(c().proxy(1).primary_port);
  auto before = Connect("127.0.0.1,127.0.0.1", ports, 5, "read-write");
  ASSERT_EQ(WhereAmI(before.get()), Role(c().node(primary_).pg_port, true))
      << PQerrorMessage(before.get());
  c().proxy(0).process.Kill();
  for (int i = 0; i < 3; ++i) {
    auto after = Connect("127.0.0.1,127.0.0.1", ports, 5, "read-write");
    EXPECT_EQ(WhereAmI(after.get()), Role(c().node(primary_).pg_port, true))
        << PQerrorMessage(after.get());
  }
}

TEST_F(ProxyCluster, ProxyCutOffFromEtcdStopsRoutingToThePrimaryWithinTtl) {
  auto session = Connect(c().proxy(1).primary_port);
  ASSERT_EQ(WhereAmI(session.get()), Role(c().node(primary_).pg_port, true));
  auto t0 = Clock::now();
  c().etcd().Freeze();
  bool stopped = ClusterHarness::WaitFor(
      [&] {
        auto st = Status(1);
        return st.is_object() && st["primary_usable"] == false;
      },
      seconds(5));
  const long ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  // The proxy's session to the primary was closed too.
  std::string where = WhereAmI(session.get());
  // A new primary-port client is held, not routed: it does not get through while etcd is away.
  auto held = Connect(c().proxy(1).primary_port, 2);
  std::string held_where = WhereAmI(held.get());
  c().etcd().Thaw();
  ASSERT_TRUE(stopped) << Status(1).dump();
  std::cerr << "etcd frozen: primary unusable after " << ms << " ms\n";
  EXPECT_LE(ms, 2000 + 600) << "ttl is 2 s";
  EXPECT_EQ(where, "");
  EXPECT_EQ(held_where, "");
  // etcd back: the proxy routes to a primary again.
  EXPECT_TRUE(ClusterHarness::WaitFor(
      [&] {
        auto conn = Connect(c().proxy(1).primary_port, 5);
        std::string w = WhereAmI(conn.get());
        return !w.empty() && w[0] == 'f';
      },
      seconds(30)));
}

TEST(ProxyCommand, BadConfigExitsTwo) {
  TempDir dir("proxycmd");
  const std::string path = dir.Sub("proxy.yml");
  {
    std::ofstream out(path);
    out << "scope: x\netcd3:\n  hosts: [127.0.0.1:1]\nproxy:\n  primary_port: 70000\n";
  }
  Command cmd;
  cmd.argv = {PGWARDEN_BINARY, "proxy", "-c", path};
  auto r = pgwarden::Run(cmd, seconds(20));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 2) << r->output;
  EXPECT_NE(r->output.find("proxy.primary_port"), std::string::npos) << r->output;
}

}  // namespace
}  // namespace pgwarden::testing
