// The proxy in front of real PostgreSQL 15 servers, driven by libpq: the protocol passes
// through untouched, roles route to the right server, and a planned switchover looks to a
// connection-per-query client like a pause, not an error.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proxy/proxy_server.h"
#include "support/pg_test_node.h"
#include "support/temp_dir.h"

namespace pgwarden::proxy {
namespace {

using namespace std::chrono_literals;
using pgwarden::testing::PgTestNode;
using pgwarden::testing::TempDir;
using TestClock = std::chrono::steady_clock;

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

PgConn ConnectTo(uint16_t port) {
  const std::string port_text = std::to_string(port);
  const char* keys[] = {"host",    "port", "user", "password", "dbname", "connect_timeout",
                        "sslmode", nullptr};
  const char* values[] = {"127.0.0.1",
                          port_text.c_str(),
                          pgwarden::testing::kPgTestSuperuser,
                          pgwarden::testing::kPgTestSuperuserPassword,
                          "postgres",
                          "15",
                          "disable",
                          nullptr};
  return PgConn(PQconnectdbParams(keys, values, 0));
}

// The single value of a query, or "" with `error` set.
std::string Value(PGconn* c, const std::string& sql, std::string* error = nullptr) {
  PGresult* r = PQexec(c, sql.c_str());
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
    out.assign(PQgetvalue(r, 0, 0), static_cast<size_t>(PQgetlength(r, 0, 0)));
  } else if (error != nullptr) {
    *error = PQerrorMessage(c);
  }
  PQclear(r);
  return out;
}

Backend BackendOf(PgTestNode& node) {
  return Backend{MemberName(node.name()), Endpoint{"127.0.0.1", static_cast<uint16_t>(node.port())},
                 0, false};
}

TEST(ProxyPgIntegration, LibpqThroughTheProxyRoutesByRoleAndSwitchoverIsAPause) {
  TempDir dir("proxy-pg");
  PgTestNode n1(dir.path(), "n1");
  PgTestNode n2(dir.path(), "n2");
  ASSERT_TRUE(n1.InitAndStart()) << "n1";
  ASSERT_TRUE(n2.InitAndStart()) << "n2";

  ProxyOptions o;
  o.listen_address = "127.0.0.1";
  o.primary_port = 0;
  o.replica_port = 0;
  o.dcs_ttl = 0ms;
  o.hold_timeout = 10s;
  ProxyServer proxy(o);
  ASSERT_TRUE(proxy.Start());
  const uint16_t primary_port = *proxy.BoundPort(Role::kPrimary);
  const uint16_t replica_port = *proxy.BoundPort(Role::kAnyReplica);
  auto publish = [&](std::optional<Backend> primary, std::vector<Backend> replicas) {
    auto t = std::make_shared<Topology>();
    static uint64_t generation = 0;
    t->generation = ++generation;
    t->primary = std::move(primary);
    t->async_replicas = std::move(replicas);
    proxy.SetTopology(t);
  };
  publish(BackendOf(n1), {BackendOf(n2)});

  // Roles route to the right server (password authentication passes through too).
  PgConn on_primary = ConnectTo(primary_port);
  ASSERT_EQ(PQstatus(on_primary.get()), CONNECTION_OK) << PQerrorMessage(on_primary.get());
  EXPECT_EQ(Value(on_primary.get(), "SELECT inet_server_port()"), std::to_string(n1.port()));
  PgConn on_replica = ConnectTo(replica_port);
  ASSERT_EQ(PQstatus(on_replica.get()), CONNECTION_OK) << PQerrorMessage(on_replica.get());
  EXPECT_EQ(Value(on_replica.get(), "SELECT inet_server_port()"), std::to_string(n2.port()));

  // A multi-megabyte result arrives byte-identical to a direct query's.
  const std::string big_sql =
      "SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200000) i";
  PgConn direct = ConnectTo(static_cast<uint16_t>(n1.port()));
  const std::string expected = Value(direct.get(), big_sql);
  ASSERT_EQ(expected.size(), 200000u * 32);
  EXPECT_TRUE(Value(on_primary.get(), big_sql) == expected);

  // Connection-per-query client during a planned switchover n1 -> (none) -> n2.
  std::atomic<int> done{0};
  std::atomic<int> errors{0};
  std::vector<std::string> ports;
  std::chrono::milliseconds longest{0};
  std::string first_error;
  struct Attempt {
    TestClock::time_point start;
    bool ok;
  };
  std::vector<Attempt> attempts;
  std::thread client([&] {
    for (int i = 0; i < 120; ++i) {
      const auto t0 = TestClock::now();
      PgConn c = ConnectTo(primary_port);
      std::string error;
      std::string port;
      if (PQstatus(c.get()) == CONNECTION_OK) {
        port = Value(c.get(), "SELECT inet_server_port()", &error);
      } else {
        error = PQerrorMessage(c.get());
      }
      const auto took =
          std::chrono::duration_cast<std::chrono::milliseconds>(TestClock::now() - t0);
      longest = std::max(longest, took);
      attempts.push_back(Attempt{t0, !port.empty()});
      if (port.empty()) {
        if (errors++ == 0) first_error = error;
      } else {
        ports.push_back(port);
      }
      ++done;
      std::this_thread::sleep_for(2ms);
    }
  });
  const auto wait_done = [&](int n) {
    for (int i = 0; i < 3000 && done < n; ++i) std::this_thread::sleep_for(5ms);
  };
  wait_done(30);
  publish(std::nullopt, {BackendOf(n2)});  // the old primary steps down: no primary
  const auto switch_started = TestClock::now();
  std::this_thread::sleep_for(700ms);  // demotion + promotion take a while
  publish(BackendOf(n2), {BackendOf(n1)});
  client.join();

  // A request in flight at the instant of the switch may fail: its session to the old primary
  // is closed at once (a demoting PostgreSQL would end it anyway). Every connection opened
  // after that instant waits instead and succeeds.
  EXPECT_LE(errors, 1) << first_error;
  for (const Attempt& a : attempts) {
    if (a.start > switch_started + 50ms) {
      EXPECT_TRUE(a.ok) << "a connection opened after the switch failed";
    }
  }
  ASSERT_FALSE(ports.empty());
  EXPECT_EQ(ports.front(), std::to_string(n1.port()));
  EXPECT_EQ(ports.back(), std::to_string(n2.port()));
  EXPECT_GE(longest, 500ms) << "the switchover should have been a pause";
  EXPECT_LT(longest, 5000ms);

  // The session to the old primary was closed by the switch; the replica session was not.
  std::string error;
  EXPECT_EQ(Value(on_primary.get(), "SELECT 1", &error), "");
  EXPECT_FALSE(error.empty());
  // n2 was promoted: the any-replica port no longer includes it, so that session was closed;
  // a new replica connection goes to n1 (the old primary, now listed as a replica).
  PgConn replica_again = ConnectTo(replica_port);
  ASSERT_EQ(PQstatus(replica_again.get()), CONNECTION_OK);
  EXPECT_EQ(Value(replica_again.get(), "SELECT inet_server_port()"), std::to_string(n1.port()));

  ProxyStatus s = proxy.GetStatus();
  EXPECT_GE(s.counters.held, 1u);
  EXPECT_EQ(s.counters.hold_timeouts, 0u);
  EXPECT_GE(s.counters.closed_by_topology, 2u);
  proxy.Stop();
}

}  // namespace
}  // namespace pgwarden::proxy
