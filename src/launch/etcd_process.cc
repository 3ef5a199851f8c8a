#include "launch/etcd_process.h"

#include <signal.h>

#include <thread>

#include "dcs/etcd3/etcd_dcs.h"
#include "launch/host.h"

namespace pgwarden::launch {

std::string LoopbackUrl(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

EtcdProcess::EtcdProcess(EtcdSpec spec) : spec_(std::move(spec)) {
  if (spec_.initial_cluster.empty()) {
    spec_.initial_cluster = spec_.name + "=" + LoopbackUrl(spec_.peer_port);
  }
  if (spec_.log_path.empty()) spec_.log_path = spec_.data_dir + ".log";
}

EtcdProcess::~EtcdProcess() {
  if (frozen_) Thaw();
  process_.Kill();  // no-op when not running
}

Result<void> EtcdProcess::Start(std::chrono::milliseconds wait) {
  if (process_.pid() > 0 && process_.Running()) {
    return Fail(ErrorCode::kInvalidArgument, "etcd " + spec_.name + " is already running");
  }
  Command cmd;
  cmd.die_with_parent = spec_.die_with_parent;
  cmd.argv = {"etcd", "--name", spec_.name, "--data-dir", spec_.data_dir, "--listen-client-urls",
              LoopbackUrl(spec_.client_port), "--advertise-client-urls",
              LoopbackUrl(spec_.client_port), "--listen-peer-urls", LoopbackUrl(spec_.peer_port),
              "--initial-advertise-peer-urls", LoopbackUrl(spec_.peer_port), "--initial-cluster",
              spec_.initial_cluster, "--initial-cluster-state", "new", "--initial-cluster-token",
              spec_.cluster_token,
              // Loopback: fast elections, so that tests and the demo never wait for etcd.
              "--heartbeat-interval", "100", "--election-timeout", "1000", "--logger", "zap",
              "--log-level", "error"};
  cmd.output_file = spec_.log_path;
  auto child = ChildProcess::Spawn(cmd);
  if (!child) return Fail(child.error());
  process_ = std::move(*child);
  frozen_ = false;
  if (wait.count() > 0) return WaitReady(wait);
  return Ok();
}

Result<void> EtcdProcess::WaitReady(std::chrono::milliseconds wait) {
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
      return Fail(ErrorCode::kFailed, "etcd " + spec_.name + " exited: " + LogTail());
    }
    auto got = (*client)->Get("/health-probe");
    if (got) return Ok();
    last = got.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Fail(ErrorCode::kTimeout, "etcd " + spec_.name + " did not serve reads within " +
                                       std::to_string(wait.count()) + " ms (" + last.ToString() +
                                       "): " + LogTail());
}

void EtcdProcess::Stop() {
  if (frozen_) Thaw();
  if (process_.pid() > 0) process_.Stop(std::chrono::milliseconds(5000));
}

void EtcdProcess::Kill() {
  if (frozen_) Thaw();
  process_.Kill();
}

void EtcdProcess::Freeze() {
  if (process_.pid() > 0 && !frozen_) {
    process_.Signal(SIGSTOP);
    frozen_ = true;
    // SIGSTOP lands thread by thread: a request sent right after Freeze() must not be served.
    WaitStopped({process_.pid()}, std::chrono::seconds(1));
  }
}

void EtcdProcess::Thaw() {
  if (process_.pid() > 0 && frozen_) {
    process_.Signal(SIGCONT);
    frozen_ = false;
  }
}

bool EtcdProcess::Running() { return process_.pid() > 0 && process_.Running(); }

std::string EtcdProcess::endpoint() const {
  return "127.0.0.1:" + std::to_string(spec_.client_port);
}

std::string EtcdProcess::LogTail(std::size_t bytes) const {
  return ReadTail(spec_.log_path, bytes);
}

}  // namespace pgwarden::launch
