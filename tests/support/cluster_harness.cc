#include "support/cluster_harness.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "api/http_client.h"
#include "postgres/conninfo.h"
#include "postgres/libpq_connection.h"
#include "support/ports.h"

namespace pgwarden::testing {
namespace {

std::string ReadTail(const std::string& path, size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

// The process group of `pid`, unless it is ours (never signal the test itself).
std::optional<pid_t> ForeignGroup(pid_t pid) {
  pid_t g = ::getpgid(pid);
  if (g <= 1 || g == ::getpgrp()) return std::nullopt;
  return g;
}

}  // namespace

ClusterHarness::ClusterHarness(ClusterOptions options)
    : options_(std::move(options)), dir_("cluster") {
  for (int i = 0; i < options_.members; ++i) {
    auto n = std::make_unique<ClusterNode>();
    n->name = "n" + std::to_string(i + 1);
    n->dir = dir_.Sub(n->name);
    n->data_dir = n->dir + "/data";
    n->config_path = n->dir + "/node.yml";
    n->log_path = n->dir + "/agent.log";
    n->pg_port = FreeLoopbackPort();
    n->api_port = FreeLoopbackPort();
    ::mkdir(n->dir.c_str(), 0755);
    if (RunningAsRoot()) {
      if (auto user = LookupOsUser("postgres")) {
        if (::chown(n->dir.c_str(), user->uid, user->gid) != 0) {
          ADD_FAILURE() << "cannot chown " << n->dir;
        }
      }
    }
    nodes_.push_back(std::move(n));
  }
}

ClusterHarness::~ClusterHarness() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    ClusterNode& n = *nodes_[i];
    if (n.agent.pid() > 0) {
      ::kill(n.agent.pid(), SIGCONT);
      n.agent.Kill();
    }
    if (auto pid = PostmasterPid(i)) {
      if (auto g = ForeignGroup(*pid)) {
        ::kill(-*g, SIGKILL);
        ::kill(-*g, SIGCONT);
      }
      ::kill(*pid, SIGKILL);
    }
  }
  etcd_.Kill();
}

std::string ClusterHarness::NodeConfig(const ClusterNode& n) const {
  std::ostringstream y;
  y << "scope: " << options_.scope << "\n"
    << "namespace: /service\n"
    << "name: " << n.name << "\n"
    << "restapi:\n"
    << "  listen: 127.0.0.1:" << n.api_port << "\n"
    << "  connect_address: 127.0.0.1:" << n.api_port << "\n"
    << "etcd3:\n"
    << "  hosts:\n"
    << "    - " << etcd_.endpoint() << "\n"
    << "bootstrap:\n"
    << "  dcs:\n"
    << "    ttl: " << options_.ttl << "\n"
    << "    loop_wait: " << options_.loop_wait << "\n"
    << "    retry_timeout: " << options_.retry_timeout << "\n"
    << "    maximum_lag_on_failover: 1MB\n"
    << "    postgresql:\n"
    << "      use_pg_rewind: true\n"
    << "      use_slots: true\n"
    << "      parameters:\n"
    << "        wal_level: replica\n"
    << "        hot_standby: \"on\"\n"
    << "        wal_log_hints: \"on\"\n"
    << "        max_wal_senders: 10\n"
    << "        max_replication_slots: 10\n"
    << "        max_connections: 30\n"
    << "        shared_buffers: 16MB\n"
    << "        wal_keep_size: 128MB\n"
    << "        max_wal_size: 256MB\n"
    << "        min_wal_size: 32MB\n"
    << "        autovacuum: \"off\"\n"
    << "        wal_receiver_status_interval: 1s\n"
    << "        wal_retrieve_retry_interval: 200ms\n"
    << "  pg_hba:\n"
    << "    - host replication replicator 127.0.0.1/32 scram-sha-256\n"
    << "    - host all all 127.0.0.1/32 scram-sha-256\n"
    << "postgresql:\n"
    << "  listen: 127.0.0.1:" << n.pg_port << "\n"
    << "  connect_address: 127.0.0.1:" << n.pg_port << "\n"
    << "  data_dir: " << n.data_dir << "\n"
    << "  bin_dir: /usr/lib/postgresql/15/bin\n"
    << "  authentication:\n"
    << "    superuser:\n"
    << "      username: postgres\n"
    << "      password: \"" << kClusterSuperuserPassword << "\"\n"
    << "    replication:\n"
    << "      username: replicator\n"
    << "      password: \"" << kClusterReplicationPassword << "\"\n"
    << "  parameters:\n"
    << "    unix_socket_directories: " << n.dir << "/sock\n"
    << "    fsync: \"off\"\n"
    << "pgwarden:\n"
    << "  os_user: postgres\n";
  return y.str();
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
  {
    std::ofstream out(n.config_path);
    out << NodeConfig(n);
  }
  Command cmd;
  // Append: a restarted agent keeps the earlier log for post-mortems.
  cmd.argv = {"/bin/sh",
              "-c",
              "exec \"$0\" agent -c \"$1\" >>\"$2\" 2>&1",
              options_.pgwarden_binary,
              n.config_path,
              n.log_path};
  auto child = ChildProcess::Spawn(cmd);
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
  std::ifstream in(nodes_.at(i)->data_dir + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 1) return std::nullopt;
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

void ClusterHarness::KillPostgres(size_t i) {
  auto pid = PostmasterPid(i);
  if (!pid) return;
  if (auto g = ForeignGroup(*pid)) ::kill(-*g, SIGKILL);
  ::kill(*pid, SIGKILL);
}

void ClusterHarness::FreezeAgent(size_t i) {
  if (node(i).agent.pid() > 0) ::kill(-node(i).agent.pid(), SIGSTOP);
}
void ClusterHarness::ThawAgent(size_t i) {
  if (node(i).agent.pid() > 0) ::kill(-node(i).agent.pid(), SIGCONT);
}
void ClusterHarness::FreezePostgres(size_t i) {
  if (auto pid = PostmasterPid(i)) {
    if (auto g = ForeignGroup(*pid)) ::kill(-*g, SIGSTOP);
  }
}
void ClusterHarness::ThawPostgres(size_t i) {
  if (auto pid = PostmasterPid(i)) {
    if (auto g = ForeignGroup(*pid)) ::kill(-*g, SIGCONT);
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
  return ReadTail(nodes_.at(i)->log_path, bytes);
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
  p->primary_port = FreeLoopbackPort();
  p->sync_port = FreeLoopbackPort();
  p->async_port = FreeLoopbackPort();
  p->replica_port = FreeLoopbackPort();
  p->status_port = FreeLoopbackPort();
  {
    std::ofstream out(p->config_path);
    out << "scope: " << options_.scope << "\n"
        << "namespace: /service\n"
        << "etcd3:\n"
        << "  hosts:\n"
        << "    - " << etcd_.endpoint() << "\n"
        << "proxy:\n"
        << "  listen: 127.0.0.1\n"
        << "  primary_port: " << p->primary_port << "\n"
        << "  sync_port: " << p->sync_port << "\n"
        << "  async_port: " << p->async_port << "\n"
        << "  replica_port: " << p->replica_port << "\n"
        << "  status_port: " << p->status_port << "\n"
        << extra_proxy_yaml;
  }
  Command cmd;
  cmd.argv = {"/bin/sh",
              "-c",
              "exec \"$0\" proxy -c \"$1\" >>\"$2\" 2>&1",
              options_.pgwarden_binary,
              p->config_path,
              p->log_path};
  cmd.die_with_parent = true;
  auto child = ChildProcess::Spawn(cmd);
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
  return ReadTail(proxies_.at(i)->log_path, bytes);
}

}  // namespace pgwarden::testing
