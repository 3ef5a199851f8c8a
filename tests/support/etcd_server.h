// Real etcd servers for integration tests: one member (EtcdServer) or a 3-member cluster
// (EtcdCluster) on free loopback ports, data in a TempDir, every process killed by PID in
// the destructor, even when a test fails half-way. EtcdServer is a thin wrapper over
// launch::EtcdProcess (src/launch), the launcher `pgwarden demo` uses too.
//
// Usage:
//   EtcdServer etcd;
//   ASSERT_TRUE(etcd.Start()) ;           // spawns etcd and waits until it serves reads
//   ... EtcdOptions{{etcd.endpoint()}} ...
//   etcd.Freeze(); etcd.Thaw();           // SIGSTOP / SIGCONT
//   etcd.Stop(); etcd.Start();            // restart on the same data dir and ports
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "launch/etcd_process.h"
#include "support/temp_dir.h"

namespace pgwarden::testing {

class EtcdServer {
 public:
  // A single-member cluster with its own TempDir and ports. Does not start it.
  EtcdServer();
  // A member of a cluster: `initial_cluster` is "n1=http://127.0.0.1:p1,n2=...".
  EtcdServer(std::string name, std::string data_dir, uint16_t client_port, uint16_t peer_port,
             std::string initial_cluster);
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // Spawns etcd and, when `wait` > 0, waits up to `wait` until it serves a linearizable read
  // (a lone member of a cluster cannot: start all members, then WaitReady()).
  Result<void> Start(std::chrono::milliseconds wait = std::chrono::seconds(20));
  Result<void> WaitReady(std::chrono::milliseconds wait);
  void Stop();    // SIGTERM, then SIGKILL after 5 s; data dir kept
  void Kill();    // SIGKILL; data dir kept
  void Freeze();  // SIGSTOP: the ports still accept connections, nothing answers
  void Thaw();    // SIGCONT
  bool Running();

  std::string endpoint() const { return process_->endpoint(); }  // "127.0.0.1:<client port>"
  uint16_t client_port() const { return process_->client_port(); }
  const std::string& name() const { return process_->name(); }
  std::string LogTail(std::size_t bytes = 4000) const { return process_->LogTail(bytes); }

 private:
  std::unique_ptr<TempDir> own_dir_;  // single member only; outlives process_
  std::unique_ptr<launch::EtcdProcess> process_;
};

class EtcdCluster {
 public:
  explicit EtcdCluster(int members = 3);
  // Starts every member, then waits until each serves reads.
  Result<void> Start(std::chrono::milliseconds wait = std::chrono::seconds(30));
  EtcdServer& member(std::size_t i) { return *members_.at(i); }
  std::size_t size() const { return members_.size(); }
  std::vector<std::string> endpoints() const;

 private:
  TempDir dir_;
  std::vector<std::unique_ptr<EtcdServer>> members_;
};

}  // namespace pgwarden::testing
