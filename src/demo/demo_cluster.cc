#include "demo/demo_cluster.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "api/http_client.h"
#include "cli/cluster_table.h"
#include "cluster/cluster_store.h"
#include "dcs/etcd3/etcd_dcs.h"
#include "postgres/libpq_connection.h"

namespace pgwarden::demo {
namespace {

using launch::ReadPostmasterPid;
using launch::ReadTail;

// "http://127.0.0.1:8008/patroni" -> "http://127.0.0.1:8008"
std::string ApiBase(const std::string& api_url) {
  auto scheme = api_url.find("://");
  auto path = api_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return path == std::string::npos ? api_url : api_url.substr(0, path);
}

std::string Url(uint16_t port) { return launch::LoopbackUrl(port); }

}  // namespace

uint16_t FreeLoopbackPort() {
  static std::mutex mu;
  static std::set<uint16_t> given;
  std::lock_guard lock(mu);
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) continue;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    if (port != 0 && given.insert(port).second) return port;
  }
  return 0;
}

DemoCluster::DemoCluster(std::string self, int members, std::string dir)
    : self_(std::move(self)), dir_(std::move(dir)) {
  for (int i = 0; i < members; ++i) {
    auto n = std::make_unique<DemoNode>();
    n->name = "n" + std::to_string(i + 1);
    nodes_.push_back(std::move(n));
  }
}

DemoCluster::~DemoCluster() {
  if (!kept_) {
    Cleanup();
    return;
  }
  // Leak the handles on purpose: their destructors would kill the kept processes.
  for (auto& n : nodes_) (void)n->agent.release();
  (void)proxy_.release();
  (void)etcd_.release();
}

Result<void> DemoCluster::Prepare() {
  if (dir_.empty()) {
    char tmpl[] = "/tmp/pgwarden-demo-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      return Fail(ErrorCode::kFailed,
                  std::string("cannot create a directory in /tmp: ") + std::strerror(errno));
    }
    dir_ = tmpl;
  } else {
    std::error_code ec;
    if (std::filesystem::exists(dir_, ec) && !std::filesystem::is_empty(dir_, ec)) {
      return Fail(ErrorCode::kInvalidArgument,
                  "--dir " + dir_ +
                      " is not empty (a kept demo? stop it with `pgwarden demo "
                      "--stop --dir " +
                      dir_ + "`)");
    }
    std::filesystem::create_directories(dir_, ec);
    if (ec) return Fail(ErrorCode::kFailed, "cannot create " + dir_ + ": " + ec.message());
    dir_ = std::filesystem::absolute(dir_).string();
  }
  own_dir_ = true;
  ::chmod(dir_.c_str(), 0755);             // the postgres OS user must reach its node directory
  etcd_client_port_ = FreeLoopbackPort();  // before the node configs, which name it
  etcd_peer_port_ = FreeLoopbackPort();
  for (auto& p : proxy_ports_) p = FreeLoopbackPort();
  proxy_status_port_ = FreeLoopbackPort();
  launch::MemberConfig config;
  config.scope = kDemoScope;
  config.etcd_endpoint = "127.0.0.1:" + std::to_string(etcd_client_port_);
  config.ttl = std::to_string(kDemoTtl.count()) + "s";
  config.loop_wait = "500ms";
  config.retry_timeout = "1s";
  config.synchronous_mode = true;
  config.superuser_password = kDemoPassword;
  config.replication_password = kDemoPassword;
  config.max_connections = 40;
  for (auto& n : nodes_) {
    static_cast<launch::MemberPaths&>(*n) =
        launch::MemberLayout(dir_, n->name, FreeLoopbackPort(), FreeLoopbackPort());
    if (auto r = launch::PrepareMemberDir(*n); !r) return r;
    if (auto r = launch::WriteAgentConfig(config, *n); !r) return r;
  }
  return Ok();
}

Result<void> DemoCluster::StartEtcd(std::chrono::milliseconds wait) {
  launch::EtcdSpec spec;
  spec.data_dir = dir_ + "/etcd";
  spec.log_path = dir_ + "/etcd.log";
  spec.client_port = etcd_client_port_;
  spec.peer_port = etcd_peer_port_;
  spec.cluster_token = "pgwarden-demo";
  etcd_ = std::make_unique<launch::EtcdProcess>(std::move(spec));
  auto started = etcd_->Start(std::chrono::milliseconds(0));
  WritePids();
  if (!started) return started;
  return etcd_->WaitReady(wait);
}

Result<void> DemoCluster::StartAgent(size_t i) {
  DemoNode& n = node(i);
  if (n.agent) n.agent->Kill();  // reaps a killed one
  auto child = launch::SpawnAgent(self_, n);
  if (!child) return Fail(child.error());
  n.agent = std::make_unique<ChildProcess>(std::move(*child));
  WritePids();
  return Ok();
}

bool DemoCluster::ProxyAvailable() {
  Command cmd;
  cmd.argv = {self_, "proxy", "--help"};
  auto r = Run(cmd, std::chrono::seconds(10));
  return r && r->exit_code == 0;
}

Result<void> DemoCluster::StartProxy(std::chrono::milliseconds wait) {
  launch::ProxySpec spec;
  spec.scope = kDemoScope;
  spec.etcd_endpoint = "127.0.0.1:" + std::to_string(etcd_client_port_);
  spec.config_path = dir_ + "/proxy.yml";
  spec.log_path = dir_ + "/proxy.log";
  spec.primary_port = proxy_ports_[0];
  spec.sync_port = proxy_ports_[1];
  spec.async_port = proxy_ports_[2];
  spec.replica_port = proxy_ports_[3];
  spec.status_port = proxy_status_port_;
  spec.extra_proxy_yaml = "  hold_timeout: 10s\n";
  auto child = launch::SpawnProxy(self_, spec);
  if (!child) return Fail(child.error());
  proxy_ = std::make_unique<ChildProcess>(std::move(*child));
  WritePids();
  const auto deadline = SteadyClock::now() + wait;
  while (SteadyClock::now() < deadline) {
    if (!proxy_->Running()) {
      proxy_.reset();
      return Fail(ErrorCode::kFailed, "the proxy exited: " + ReadTail(dir_ + "/proxy.log", 2000));
    }
    auto r = api::HttpGet(Url(proxy_status_port_) + "/status", std::chrono::milliseconds(500));
    if (r && r->status == 200) return Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  proxy_->Kill();
  proxy_.reset();
  return Fail(ErrorCode::kTimeout, "the proxy did not answer GET /status in time: " +
                                       ReadTail(dir_ + "/proxy.log", 2000));
}

Result<core::ClusterView> DemoCluster::ReadView() {
  dcs::EtcdOptions options;
  options.endpoints = {"127.0.0.1:" + std::to_string(etcd_client_port_)};
  options.request_timeout = std::chrono::milliseconds(1000);
  options.connect_timeout = std::chrono::milliseconds(300);
  auto etcd = dcs::EtcdDcs::Create(options);
  if (!etcd) return Fail(etcd.error());
  cluster::ClusterStore store(**etcd, cluster::Keys("/service", kDemoScope));
  auto read = store.Read();
  if (!read) return Fail(read.error());
  return std::move(read->view);
}

std::optional<size_t> DemoCluster::IndexOf(const std::string& name) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->name == name) return i;
  }
  return std::nullopt;
}

std::string DemoCluster::MemberDsn(size_t i, const std::string& db) const {
  return "host=127.0.0.1 port=" + std::to_string(nodes_.at(i)->pg_port) +
         " user=postgres password=" + kDemoPassword + " dbname=" + db +
         " connect_timeout=2 application_name=pgwarden-demo";
}

std::string DemoCluster::AppDsn() const {
  if (proxy_) {
    return "host=127.0.0.1 port=" + std::to_string(proxy_ports_[0]) +
           " user=postgres password=" + kDemoPassword + " dbname=" + kDemoDatabase;
  }
  std::string hosts, ports;
  for (const auto& n : nodes_) {
    hosts += (hosts.empty() ? "" : ",") + std::string("127.0.0.1");
    ports += (ports.empty() ? "" : ",") + std::to_string(n->pg_port);
  }
  return "host=" + hosts + " port=" + ports + " user=postgres password=" + kDemoPassword +
         " dbname=" + kDemoDatabase + " target_session_attrs=read-write";
}

Result<std::vector<std::vector<std::optional<std::string>>>> DemoCluster::Sql(
    size_t i, const std::string& sql, const std::string& db, std::chrono::milliseconds timeout) {
  const SteadyTime deadline = SteadyClock::now() + timeout;
  auto conn = postgres::PgConnection::Connect(MemberDsn(i, db), deadline);
  if (!conn) return Fail(conn.error());
  auto r = conn->Query(sql, deadline);
  if (!r) return Fail(r.error());
  return std::move(r->rows);
}

Health DemoCluster::Check() {
  Health h;
  auto view = ReadView();
  if (!view) {
    h.detail = "etcd: " + view.error().message;
    return h;
  }
  if (!view->leader) {
    h.detail = view->initialize ? "no leader yet" : "bootstrapping (no cluster in etcd yet)";
    return h;
  }
  const std::string leader = view->leader->holder.str();
  const core::Member* m = view->FindMember(view->leader->holder);
  if (!m || m->role != core::MemberRole::kPrimary || m->state != core::PgState::kRunning) {
    h.detail = "leader " + leader + " is not a running primary yet";
    return h;
  }
  auto idx = IndexOf(leader);
  if (!idx) {
    h.detail = "unknown leader " + leader;
    return h;
  }
  h.leader = leader;
  auto rows = Sql(*idx,
                  "SELECT application_name, state, sync_state FROM pg_stat_replication "
                  "ORDER BY application_name",
                  // Short: a frozen leader must not hide the failover for long.
                  "postgres", std::chrono::milliseconds(1500));
  if (!rows) {
    h.detail = "leader " + leader + " does not answer SQL: " + rows.error().message;
    return h;
  }
  std::vector<std::string> unpublished;
  for (const auto& row : *rows) {
    if (row.size() < 3 || !row[0] || !row[1]) continue;
    if (*row[1] != "streaming") continue;
    // Streaming, and published in etcd as a running replica (what `pgwarden list` shows).
    const core::Member* r = view->FindMember(MemberName(*row[0]));
    if (r && r->role == core::MemberRole::kReplica && r->state == core::PgState::kRunning) {
      h.streaming.push_back(*row[0]);
    } else {
      unpublished.push_back(*row[0]);
    }
    if (row[2] && *row[2] == "sync") h.sync = *row[0];
  }
  h.detail = "leader " + leader + ", " + std::to_string(h.streaming.size()) + "/" +
             std::to_string(nodes_.size() - 1) + " replicas streaming";
  if (h.sync) h.detail += " (sync: " + *h.sync + ")";
  for (const auto& u : unpublished) h.detail += ", " + u + " streams but etcd does not show it yet";
  return h;
}

std::optional<pid_t> DemoCluster::PostmasterPid(size_t i) const {
  return ReadPostmasterPid(nodes_.at(i)->data_dir);
}

void DemoCluster::KillMember(size_t i) {
  DemoNode& n = node(i);
  const auto postmaster = PostmasterPid(i);
  if (n.agent && n.agent->Running()) ::kill(-n.agent->pid(), SIGKILL);
  if (postmaster) launch::KillPostmaster(n.data_dir);
  if (n.agent) n.agent->Kill();  // reap
}

launch::FrozenHost DemoCluster::FreezeMember(size_t i) {
  DemoNode& n = node(i);
  const pid_t agent = n.agent && n.agent->Running() ? n.agent->pid() : -1;
  return launch::FreezeHost(agent, n.data_dir);
}

void DemoCluster::ThawMember(const launch::FrozenHost& host) { launch::ThawHost(host); }

Result<std::string> DemoCluster::Switchover(const std::string& leader) {
  auto view = ReadView();
  if (!view) return Fail(view.error());
  const core::Member* m = view->FindMember(MemberName(leader));
  if (!m) return Fail(ErrorCode::kNotFound, "the leader " + leader + " has no member key");
  nlohmann::json body = {{"leader", leader}};
  auto r =
      api::HttpPost(ApiBase(m->api_url) + "/switchover", body.dump(), std::chrono::seconds(60));
  if (!r) return Fail(r.error());
  if (r->status != 200 && r->status != 202) {
    return Fail(ErrorCode::kFailed,
                "switchover refused (" + std::to_string(r->status) + "): " + r->body);
  }
  return r->body;
}

std::string DemoCluster::Table() {
  auto view = ReadView();
  if (!view) return "(cannot read the cluster from etcd: " + view.error().message + ")\n";
  return cli::RenderTable(cli::BuildClusterTable(kDemoScope, *view));
}

std::vector<pid_t> DemoCluster::AllPids() const {
  std::vector<pid_t> out;
  if (etcd_ && etcd_->pid() > 0) out.push_back(etcd_->pid());
  if (proxy_ && proxy_->pid() > 0) out.push_back(proxy_->pid());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->agent && nodes_[i]->agent->pid() > 0) out.push_back(nodes_[i]->agent->pid());
    if (auto pm = PostmasterPid(i)) out.push_back(*pm);
  }
  return out;
}

void DemoCluster::WritePids() {
  if (dir_.empty()) return;
  std::ofstream out(dir_ + "/pids", std::ios::trunc);
  if (etcd_ && etcd_->pid() > 0) out << "etcd " << etcd_->pid() << "\n";
  if (proxy_ && proxy_->pid() > 0) out << "proxy " << proxy_->pid() << "\n";
  for (const auto& n : nodes_) {
    if (n->agent && n->agent->pid() > 0) out << "agent " << n->agent->pid() << "\n";
  }
  for (const auto& n : nodes_) out << "datadir " << n->data_dir << "\n";
}

void DemoCluster::Cleanup() {
  // Agents first (so that none restarts its PostgreSQL), then the postmasters, then the rest.
  for (auto& n : nodes_) {
    if (n->agent) {
      launch::KillAgent(*n->agent);
      n->agent.reset();
    }
  }
  for (auto& n : nodes_) {
    if (!n->data_dir.empty()) launch::KillPostmaster(n->data_dir);
  }
  if (proxy_) {
    proxy_->Kill();
    proxy_.reset();
  }
  if (etcd_) {
    etcd_->Kill();
    etcd_.reset();
  }
  if (own_dir_ && !dir_.empty()) {
    // Postmasters killed by SIGKILL leave children for a moment; wait until none holds a file.
    for (int i = 0; i < 50; ++i) {
      bool any = false;
      for (auto& n : nodes_) any = any || ReadPostmasterPid(n->data_dir).has_value();
      if (!any) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    own_dir_ = false;
  }
}

void DemoCluster::Keep() {
  WritePids();
  kept_ = true;
}

std::string DemoCluster::agent_log_tail(size_t i, size_t bytes) const {
  return ReadTail(nodes_.at(i)->log_path, bytes);
}

Result<void> DemoCluster::StopKept(const std::string& dir, std::string* report) {
  std::ifstream in(dir + "/pids");
  if (!in) {
    return Fail(ErrorCode::kNotFound, dir +
                                          "/pids not found: not a directory of `pgwarden demo "
                                          "--keep`");
  }
  std::string kind, value;
  std::vector<std::pair<std::string, pid_t>> procs;
  std::vector<std::string> data_dirs;
  while (in >> kind >> value) {
    if (kind == "datadir") {
      data_dirs.push_back(value);
    } else {
      try {
        procs.emplace_back(kind, static_cast<pid_t>(std::stol(value)));
      } catch (const std::exception&) {
        return Fail(ErrorCode::kCorrupt, dir + "/pids: bad pid '" + value + "'");
      }
    }
  }
  // Only a process whose command line names this directory is ours (a PID may be reused).
  auto ours = [&](pid_t pid) {
    return launch::ReadWholeFile("/proc/" + std::to_string(pid) + "/cmdline").find(dir) !=
           std::string::npos;
  };
  for (const auto& [k, pid] : procs) {
    if (k == "agent" && pid > 1 && ours(pid)) {
      ::kill(pid, SIGKILL);
      *report += "killed agent " + std::to_string(pid) + "\n";
    }
  }
  for (const auto& d : data_dirs) {
    if (auto pm = ReadPostmasterPid(d); pm && ours(*pm)) {
      launch::KillPostmaster(d);
      *report += "killed postmaster " + std::to_string(*pm) + " (" + d + ")\n";
    }
  }
  for (const auto& [k, pid] : procs) {
    if (k != "agent" && pid > 1 && ours(pid)) {
      ::kill(pid, SIGKILL);
      *report += "killed " + k + " " + std::to_string(pid) + "\n";
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return Fail(ErrorCode::kFailed, "cannot remove " + dir + ": " + ec.message());
  *report += "removed " + dir + "\n";
  return Ok();
}

}  // namespace pgwarden::demo
