// ClusterHarness: a real pgwarden cluster for integration tests. One etcd (EtcdServer) and N
// agents, each a `pgwarden agent -c <generated node.yml>` process with its own PostgreSQL 15,
// REST API and data directory, all on free loopback ports inside one TempDir. The node.yml,
// the agent and proxy processes and the signals come from src/launch (shared with
// `pgwarden demo`); this class adds the test conveniences (HTTP, SQL, waits, logs).
//
// Cleanup is by PID and happens in the destructor even when a test fails half-way: every agent
// process (SIGKILL to its process group), every postmaster named by a node's postmaster.pid
// (SIGKILL to its process group: the postmaster and its children), then etcd.
//
// Not thread-safe: one test thread drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/result.h"
#include "launch/member.h"
#include "postgres/postgres.h"
#include "support/etcd_server.h"
#include "support/temp_dir.h"

namespace pgwarden::testing {

inline constexpr const char* kClusterSuperuserPassword = "su pw'1";
inline constexpr const char* kClusterReplicationPassword = "repl pw";

// name (n1, n2, ...), dir (root/<name>), data_dir, config_path, log_path (the agent's
// output), pg_port, api_port: see launch::MemberPaths.
struct ClusterNode : launch::MemberPaths {
  ChildProcess agent;
  bool frozen = false;
};

// A `pgwarden proxy -c <generated proxy.yml>` process for the cluster (StartProxy): every
// client port and the status port on free loopback ports.
struct ClusterProxy {
  std::string name;  // p1, p2, ...
  std::string config_path;
  std::string log_path;  // the proxy's stderr
  uint16_t primary_port = 0;
  uint16_t sync_port = 0;
  uint16_t async_port = 0;
  uint16_t replica_port = 0;
  uint16_t status_port = 0;
  ChildProcess process;
};

struct ClusterOptions {
  int members = 3;
  std::string pgwarden_binary;  // path of the pgwarden executable
  std::string ttl = "2s";
  std::string loop_wait = "500ms";
  std::string retry_timeout = "1s";
  std::string scope = "itest";
};

class ClusterHarness {
 public:
  explicit ClusterHarness(ClusterOptions options);
  ~ClusterHarness();
  ClusterHarness(const ClusterHarness&) = delete;
  ClusterHarness& operator=(const ClusterHarness&) = delete;

  // Starts etcd, then every agent.
  Result<void> Start();
  EtcdServer& etcd() { return etcd_; }
  size_t size() const { return nodes_.size(); }
  ClusterNode& node(size_t i) { return *nodes_.at(i); }

  Result<void> StartAgent(size_t i);
  // SIGTERM and wait (graceful shutdown); the exit status.
  int StopAgent(size_t i, std::chrono::milliseconds grace = std::chrono::seconds(30));
  // SIGKILL of the agent only.
  void KillAgent(size_t i);
  // SIGKILL of the node's postmaster and its children (its process group).
  void KillPostgres(size_t i);
  // SIGSTOP / SIGCONT of the agent (its process group) and of PostgreSQL (its process group).
  void FreezeAgent(size_t i);
  void ThawAgent(size_t i);
  void FreezePostgres(size_t i);
  void ThawPostgres(size_t i);
  std::optional<pid_t> PostmasterPid(size_t i) const;

  // GET http://127.0.0.1:<api>/<path>: the status code (0 when no answer) and body.
  std::pair<int, std::string> Get(size_t i, const std::string& path,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(2));
  std::pair<int, std::string> Post(size_t i, const std::string& path, const std::string& body,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // SQL over TCP as the superuser (libpq), the rows of the last statement.
  Result<postgres::SqlResult> Sql(size_t i, const std::string& sql,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Result<std::string> SqlValue(size_t i, const std::string& sql);

  // Proxies (added for tests/proxy): StartProxy writes proxy.yml with `extra_proxy_yaml`
  // appended under `proxy:` (indented lines, e.g. "  hold_timeout: 15s\n") and spawns
  // `pgwarden proxy`; the returned index names it. Proxies are killed on destruction.
  Result<size_t> StartProxy(const std::string& extra_proxy_yaml = "");
  ClusterProxy& proxy(size_t i) { return *proxies_.at(i); }
  // GET http://127.0.0.1:<status port>/<path> of a proxy: the status code (0: no answer), body.
  std::pair<int, std::string> ProxyGet(size_t i, const std::string& path,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(2));
  std::string ProxyLog(size_t i, size_t bytes = 6000) const;

  // The node whose GET /primary answers 200, if exactly one does.
  std::optional<size_t> Primary();
  // Waits until `pred` holds, checking every 100 ms; false at the timeout.
  static bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout);
  // The tail of a node's agent log, for failure messages.
  std::string AgentLog(size_t i, size_t bytes = 6000) const;
  std::string AllLogs(size_t bytes = 3000) const;

 private:
  launch::MemberConfig MemberConfig() const;

  ClusterOptions options_;
  TempDir dir_;
  EtcdServer etcd_;
  std::vector<std::unique_ptr<ClusterNode>> nodes_;
  std::vector<std::unique_ptr<ClusterProxy>> proxies_;  // ChildProcess kills on destruction
};

}  // namespace pgwarden::testing
