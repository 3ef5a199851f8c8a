#include "support/etcd_server.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "dcs/etcd3/etcd_dcs.h"
#include "support/ports.h"

namespace pgwarden::testing {
namespace {

std::string Url(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

}  // namespace

EtcdServer::EtcdServer() : own_dir_(std::make_unique<TempDir>("etcd")) {
  name_ = "etcd1";
  data_dir_ = own_dir_->Sub("data");
  client_port_ = FreeLoopbackPort();
  peer_port_ = FreeLoopbackPort();
  initial_cluster_ = name_ + "=" + Url(peer_port_);
  log_path_ = own_dir_->Sub("etcd.log");
}

EtcdServer::EtcdServer(std::string name, std::string data_dir, uint16_t client_port,
                       uint16_t peer_port, std::string initial_cluster)
    : name_(std::move(name)),
      data_dir_(std::move(data_dir)),
      log_path_(data_dir_ + ".log"),
      client_port_(client_port),
      peer_port_(peer_port),
      initial_cluster_(std::move(initial_cluster)) {}

EtcdServer::~EtcdServer() {
  if (frozen_) Thaw();
  process_.Kill();  // no-op when not running
}

Result<void> EtcdServer::Start(std::chrono::milliseconds wait) {
  if (process_.pid() > 0 && process_.Running()) {
    return Fail(ErrorCode::kInvalidArgument, "etcd " + name_ + " is already running");
  }
  Command cmd;
  cmd.die_with_parent = true;
  cmd.argv = {"etcd",
              "--name",
              name_,
              "--data-dir",
              data_dir_,
              "--listen-client-urls",
              Url(client_port_),
              "--advertise-client-urls",
              Url(client_port_),
              "--listen-peer-urls",
              Url(peer_port_),
              "--initial-advertise-peer-urls",
              Url(peer_port_),
              "--initial-cluster",
              initial_cluster_,
              "--initial-cluster-state",
              "new",
              "--initial-cluster-token",
              "pgwarden-test",
              "--heartbeat-interval",
              "100",
              "--election-timeout",
              "1000",
              "--logger",
              "zap",
              "--log-level",
              "error"};
  cmd.output_file = log_path_;
  auto child = ChildProcess::Spawn(cmd);
  if (!child) return Fail(child.error());
  process_ = std::move(*child);
  frozen_ = false;
  if (wait.count() > 0) return WaitReady(wait);
  return Ok();
}

Result<void> EtcdServer::WaitReady(std::chrono::milliseconds wait) {
  dcs::EtcdOptions options;
  options.endpoints = {endpoint()};
  options.request_timeout = std::chrono::milliseconds(1000);
  options.connect_timeout = std::chrono::milliseconds(200);
  auto client = dcs::EtcdDcs::Create(options);
  if (!client) return Fail(client.error());
  const auto deadline = SteadyClock::now() + wait;
  Error last{ErrorCode::kTimeout, "not tried"};
  while (SteadyClock::now() < deadline) {
    if (!process_.Running()) {
      return Fail(ErrorCode::kFailed, "etcd " + name_ + " exited: " + LogTail());
    }
    auto got = (*client)->Get("/health-probe");
    if (got) return Ok();
    last = got.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Fail(ErrorCode::kTimeout, "etcd " + name_ + " did not serve reads within " +
                                       std::to_string(wait.count()) + " ms (" + last.ToString() +
                                       "): " + LogTail());
}

void EtcdServer::Stop() {
  if (frozen_) Thaw();
  if (process_.pid() > 0) process_.Stop(std::chrono::milliseconds(5000));
}

void EtcdServer::Kill() {
  if (frozen_) Thaw();
  process_.Kill();
}

namespace {

// SIGSTOP takes effect asynchronously, thread by thread: wait until /proc shows every thread
// of the process stopped, so that a request sent right after Freeze() cannot be served.
bool AllThreadsStopped(pid_t pid) {
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
    const char state = stat[paren + 2];
    if (state != 'T' && state != 't') return false;
    ++seen;
  }
  return !ec && seen > 0;
}

}  // namespace

void EtcdServer::Freeze() {
  if (process_.pid() > 0 && !frozen_) {
    process_.Signal(SIGSTOP);
    frozen_ = true;
    for (int i = 0; i < 200 && !AllThreadsStopped(process_.pid()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

void EtcdServer::Thaw() {
  if (process_.pid() > 0 && frozen_) {
    process_.Signal(SIGCONT);
    frozen_ = false;
  }
}

bool EtcdServer::Running() { return process_.pid() > 0 && process_.Running(); }

std::string EtcdServer::endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }

std::string EtcdServer::LogTail(std::size_t bytes) const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

EtcdCluster::EtcdCluster(int members) : dir_("etcd-cluster") {
  std::vector<uint16_t> client_ports, peer_ports;
  std::string initial;
  for (int i = 0; i < members; ++i) {
    client_ports.push_back(FreeLoopbackPort());
    peer_ports.push_back(FreeLoopbackPort());
    if (!initial.empty()) initial += ",";
    initial += "m" + std::to_string(i + 1) + "=" + Url(peer_ports.back());
  }
  for (int i = 0; i < members; ++i) {
    const std::string name = "m" + std::to_string(i + 1);
    members_.push_back(std::make_unique<EtcdServer>(name, dir_.Sub(name), client_ports[i],
                                                    peer_ports[i], initial));
  }
}

Result<void> EtcdCluster::Start(std::chrono::milliseconds wait) {
  for (auto& m : members_) {
    auto started = m->Start(std::chrono::milliseconds(0));
    if (!started) return started;
  }
  const auto deadline = SteadyClock::now() + wait;
  for (auto& m : members_) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    auto ready = m->WaitReady(std::max(left, std::chrono::milliseconds(1)));
    if (!ready) return ready;
  }
  return Ok();
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(m->endpoint());
  return out;
}

}  // namespace pgwarden::testing
