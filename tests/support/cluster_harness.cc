#include "support/cluster_harness.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "api/http_client.h"
#include "launch/host.h"
#include "postgres/conninfo.h"
#include "postgres/libpq_connection.h"
#include "support/ports.h"

namespace pgwarden::testing {

ClusterHarness::ClusterHarness(ClusterOptions options)
    : options_(std::move(options)), dir_("cluster") {
  for (int i = 0; i < options_.members; ++i) {
    auto n = std::make_unique<ClusterNode>();
    static_cast<launch::MemberPaths&>(*n) = launch::MemberLayout(
        dir_.path(), "n" + std::to_string(i + 1), FreeLoopbackPort(), FreeLoopbackPort());
    if (auto r = launch::PrepareMemberDir(*n); !r) ADD_FAILURE() << r.error().message;
    nodes_.push_back(std::move(n));
  }
}

ClusterHarness::~ClusterHarness() {
  for (auto& n : nodes_) {
    launch::KillAgent(n->agent);
    launch::KillPostmaster(n->data_dir);
  }
  etcd_.Kill();
}

launch::MemberConfig ClusterHarness::MemberConfig() const {
  launch::MemberConfig c;
  c.scope = options_.scope;
  c.etcd_endpoint = etcd_.endpoint();
  c.ttl = options_.ttl;
  c.loop_wait = options_.loop_wait;
  c.retry_timeout = options_.retry_timeout;
  c.superuser_password = kClusterSuperuserPassword;
  c.replication_password = kClusterReplicationPassword;
  c.max_connections = 30;
  c.extra_parameters = {{"autovacuum", "\"off\""}};
  c.socket_subdir = "sock";
  return c;
}

Result<void> ClusterHarness::Start() {
  if (auto r = etcd_.Start(); !r) return r;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (auto r = StartAgent(i); !r) return r;
  }
  return Ok();
}

Result<void> ClusterHarness::StartAgent(size_t i) {
  ClusterNode& n = node(i);
  if (auto w = launch::WriteAgentConfig(MemberConfig(), n); !w) return w;
  auto child = launch::SpawnAgent(options_.pgwarden_binary, n);
  if (!child) return Fail(child.error());
  n.agent = std::move(*child);
  return Ok();
}

int ClusterHarness::StopAgent(size_t i, std::chrono::milliseconds grace) {
  ClusterNode& n = node(i);
  if (n.agent.pid() <= 0) return -1;
  return n.agent.Stop(grace);
}

void ClusterHarness::KillAgent(size_t i) {
  ClusterNode& n = node(i);
  if (n.agent.pid() > 0) n.agent.Kill();
}

std::optional<pid_t> ClusterHarness::PostmasterPid(size_t i) const {
  return launch::ReadPostmasterPid(nodes_.at(i)->data_dir);
}

void ClusterHarness::KillPostgres(size_t i) { launch::KillPostmaster(nodes_.at(i)->data_dir); }

void ClusterHarness::FreezeAgent(size_t i) {
  if (node(i).agent.pid() > 0) ::kill(-node(i).agent.pid(), SIGSTOP);
}
void ClusterHarness::ThawAgent(size_t i) {
  if (node(i).agent.pid() > 0) ::kill(-node(i).agent.pid(), SIGCONT);
}
void ClusterHarness::FreezePostgres(size_t i) {
  if (auto pid = PostmasterPid(i)) {
    if (auto g = launch::ForeignGroup(*pid)) ::kill(-*g, SIGSTOP);
  }
}
void ClusterHarness::ThawPostgres(size_t i) {
  if (auto pid = PostmasterPid(i)) {
    if (auto g = launch::ForeignGroup(*pid)) ::kill(-*g, SIGCONT);
  }
}

std::pair<int, std::string> ClusterHarness::Get(size_t i, const std::string& path,
                                                std::chrono::milliseconds timeout) {
  auto r = api::HttpGet("http://127.0.0.1:" + std::to_string(node(i).api_port) + path, timeout);
  if (!r) return {0, r.error().ToString()};
  return {r->status, r->body};
}

std::pair<int, std::string> ClusterHarness::Post(size_t i, const std::string& path,
                                                 const std::string& body,
                                                 std::chrono::milliseconds timeout) {
  auto r =
      api::HttpPost("http://127.0.0.1:" + std::to_string(node(i).api_port) + path, body, timeout);
  if (!r) return {0, r.error().ToString()};
  return {r->status, r->body};
}

Result<postgres::SqlResult> ClusterHarness::Sql(size_t i, const std::string& sql,
                                                std::chrono::milliseconds timeout) {
  const std::string conninfo =
      postgres::BuildSourceConninfo({"127.0.0.1", node(i).pg_port, "postgres",
                                     kClusterSuperuserPassword, "harness", "postgres", 2});
  const SteadyTime deadline = SteadyClock::now() + timeout;
  auto conn = postgres::PgConnection::Connect(conninfo, deadline);
  if (!conn) return Fail(conn.error());
  return conn->Query(sql, deadline);
}

Result<std::string> ClusterHarness::SqlValue(size_t i, const std::string& sql) {
  auto r = Sql(i, sql);
  if (!r) return Fail(r.error());
  if (r->rows.size() != 1 || r->rows[0].size() != 1) {
    return Fail(ErrorCode::kCorrupt, "expected one value from: " + sql);
  }
  return r->rows[0][0].value_or("");
}

std::optional<size_t> ClusterHarness::Primary() {
  std::optional<size_t> found;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (node(i).frozen) continue;
    if (Get(i, "/primary", std::chrono::milliseconds(500)).first == 200) {
      if (found) return std::nullopt;
      found = i;
    }
  }
  return found;
}

bool ClusterHarness::WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const SteadyTime deadline = SteadyClock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string ClusterHarness::AgentLog(size_t i, size_t bytes) const {
  return launch::ReadTail(nodes_.at(i)->log_path, bytes);
}

std::string ClusterHarness::AllLogs(size_t bytes) const {
  std::string out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    out += "\n===== " + nodes_[i]->name + " agent log (tail) =====\n" + AgentLog(i, bytes);
  }
  return out;
}

}  // namespace pgwarden::testing

namespace pgwarden::testing {

Result<size_t> ClusterHarness::StartProxy(const std::string& extra_proxy_yaml) {
  auto p = std::make_unique<ClusterProxy>();
  p->name = "p" + std::to_string(proxies_.size() + 1);
  const std::string dir = dir_.Sub(p->name);
  ::mkdir(dir.c_str(), 0755);
  p->config_path = dir + "/proxy.yml";
  p->log_path = dir + "/proxy.log";
  launch::ProxySpec spec;
  spec.scope = options_.scope;
  spec.etcd_endpoint = etcd_.endpoint();
  spec.config_path = p->config_path;
  spec.log_path = p->log_path;
  spec.primary_port = p->primary_port = FreeLoopbackPort();
  spec.sync_port = p->sync_port = FreeLoopbackPort();
  spec.async_port = p->async_port = FreeLoopbackPort();
  spec.replica_port = p->replica_port = FreeLoopbackPort();
  spec.status_port = p->status_port = FreeLoopbackPort();
  spec.extra_proxy_yaml = extra_proxy_yaml;
  auto child = launch::SpawnProxy(options_.pgwarden_binary, spec, /*die_with_parent=*/true);
  if (!child) return Fail(child.error());
  p->process = std::move(*child);
  proxies_.push_back(std::move(p));
  return proxies_.size() - 1;
}

std::pair<int, std::string> ClusterHarness::ProxyGet(size_t i, const std::string& path,
                                                     std::chrono::milliseconds timeout) {
  auto r = api::HttpGet("http://127.0.0.1:" + std::to_string(proxy(i).status_port) + path, timeout);
  if (!r) return {0, r.error().ToString()};
  return {r->status, r->body};
}

std::string ClusterHarness::ProxyLog(size_t i, size_t bytes) const {
  return launch::ReadTail(proxies_.at(i)->log_path, bytes);
}

}  // namespace pgwarden::testing
