// EtcdProcess: one real etcd member on loopback (a lone member, or one of a cluster), for
// `pgwarden demo` and the integration tests. It owns the child process: the destructor thaws
// it if frozen and kills it (SIGKILL to its process group), so nothing outlives a failure.
//
// Not thread-safe: one thread drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/process.h"
#include "common/result.h"

namespace pgwarden::launch {

struct EtcdSpec {
  std::string name = "etcd1";
  std::string data_dir;
  std::string log_path;  // etcd's stdout and stderr
  uint16_t client_port = 0;
  uint16_t peer_port = 0;
  // "n1=http://127.0.0.1:p1,n2=..."; empty: this member alone.
  std::string initial_cluster;
  std::string cluster_token = "pgwarden";
  // SIGKILL etcd when the starting thread dies (tests). Off for a cluster meant to outlive
  // its starter (`pgwarden demo --keep`).
  bool die_with_parent = false;
};

// "http://127.0.0.1:<port>"
std::string LoopbackUrl(uint16_t port);

class EtcdProcess {
 public:
  explicit EtcdProcess(EtcdSpec spec);
  ~EtcdProcess();
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  // Spawns etcd and, when `wait` > 0, waits up to `wait` until it serves a linearizable read
  // (a lone member of a cluster cannot: start all members, then WaitReady()).
  // kInvalidArgument when it already runs.
  Result<void> Start(std::chrono::milliseconds wait);
  // kFailed when etcd exited meanwhile, kTimeout after `wait`; both with its log's tail.
  Result<void> WaitReady(std::chrono::milliseconds wait);
  void Stop();    // SIGTERM, then SIGKILL after 5 s; data dir kept
  void Kill();    // SIGKILL; data dir kept
  void Freeze();  // SIGSTOP, returns once every thread is stopped
  void Thaw();    // SIGCONT
  bool Running();

  pid_t pid() const { return process_.pid(); }
  std::string endpoint() const;  // "127.0.0.1:<client port>"
  uint16_t client_port() const { return spec_.client_port; }
  const std::string& name() const { return spec_.name; }
  std::string LogTail(std::size_t bytes = 4000) const;

 private:
  EtcdSpec spec_;
  ChildProcess process_;
  bool frozen_ = false;
};

}  // namespace pgwarden::launch
