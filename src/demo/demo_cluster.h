// DemoCluster: a whole pgwarden deployment on loopback for `pgwarden demo`: one etcd, N
// members (each `pgwarden agent -c nodeN.yml`, which runs its own PostgreSQL 15) and, when the
// binary has it, `pgwarden proxy`. Everything lives in one directory on free ports.
//
// Every process it starts is a child of this process, recorded by PID in <dir>/pids, and
// killed by PID in Cleanup() (agents, then each node's postmaster from postmaster.pid, then the
// proxy and etcd). Keep() instead leaves them running (for `--keep`); StopKept(dir) kills a
// kept cluster from its pids file.
//
// Not thread-safe: one thread drives it.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/result.h"
#include "core/model.h"
#include "launch/etcd_process.h"
#include "launch/host.h"
#include "launch/member.h"

namespace pgwarden::demo {

inline constexpr const char* kDemoPassword = "pgwarden-demo";
inline constexpr const char* kDemoScope = "demo";
inline constexpr const char* kDemoDatabase = "demo";
// The leader lease of the demo's cluster (bootstrap.dcs.ttl).
inline constexpr std::chrono::seconds kDemoTtl{3};

// name, dir, data_dir, config_path, log_path, pg_port, api_port: see launch::MemberPaths.
struct DemoNode : launch::MemberPaths {
  std::unique_ptr<ChildProcess> agent;
};

// What the demo waits for: the leader and how many replicas stream from it.
struct Health {
  std::optional<std::string> leader;
  std::vector<std::string> streaming;  // members in the leader's pg_stat_replication, streaming
  std::optional<std::string> sync;     // the synchronous standby, if any
  std::string detail;                  // what is missing, for progress lines
};

class DemoCluster {
 public:
  // `dir` empty: a new /tmp/pgwarden-demo-XXXXXX. `self` is the pgwarden binary.
  DemoCluster(std::string self, int members, std::string dir);
  ~DemoCluster();  // Cleanup() unless Keep() was called
  DemoCluster(const DemoCluster&) = delete;
  DemoCluster& operator=(const DemoCluster&) = delete;

  // Creates the directory (mode 0755; node dirs owned by the `postgres` OS user when root).
  Result<void> Prepare();
  Result<void> StartEtcd(std::chrono::milliseconds wait);
  Result<void> StartAgent(size_t i);
  // True when `pgwarden proxy` exists in this binary.
  bool ProxyAvailable();
  Result<void> StartProxy(std::chrono::milliseconds wait);

  Result<core::ClusterView> ReadView();
  // The leader from etcd and the replicas streaming from it (from its pg_stat_replication).
  Health Check();
  // Kills a member's host processes with SIGKILL: its agent and its postmaster (and children).
  void KillMember(size_t i);
  // SIGSTOP of a member's host processes (launch::FreezeHost: the agent's process tree, the
  // postmaster and its children); ThawMember sends SIGCONT to what was stopped.
  launch::FrozenHost FreezeMember(size_t i);
  void ThawMember(const launch::FrozenHost& host);
  std::optional<pid_t> PostmasterPid(size_t i) const;
  // POST /switchover to the leader's REST API (as `pgwarden switchover --force`).
  Result<std::string> Switchover(const std::string& leader);
  // SQL as the superuser on a member, in `db`, connection and query within `timeout`.
  Result<std::vector<std::vector<std::optional<std::string>>>> Sql(
      size_t i, const std::string& sql, const std::string& db,
      std::chrono::milliseconds timeout = std::chrono::seconds(5));
  std::optional<size_t> IndexOf(const std::string& name) const;

  // `pgwarden list`'s table.
  std::string Table();

  // Conninfo for the demo application: the proxy's primary port, or (without the proxy) every
  // member with target_session_attrs=read-write.
  std::string AppDsn() const;
  std::string MemberDsn(size_t i, const std::string& db) const;

  void Cleanup();
  // Leaves every process running; writes <dir>/pids. The destructor then kills nothing.
  void Keep();
  // Writes <dir>/pids (kind pid per line) with what runs now.
  void WritePids();
  std::vector<pid_t> AllPids() const;

  const std::string& dir() const { return dir_; }
  size_t size() const { return nodes_.size(); }
  DemoNode& node(size_t i) { return *nodes_.at(i); }
  uint16_t etcd_port() const { return etcd_client_port_; }
  bool has_proxy() const { return proxy_ != nullptr; }
  uint16_t proxy_primary_port() const { return proxy_ports_[0]; }
  uint16_t proxy_port(size_t role) const { return proxy_ports_.at(role); }
  uint16_t proxy_status_port() const { return proxy_status_port_; }
  std::string config_path(size_t i) const { return nodes_.at(i)->config_path; }
  std::string agent_log_tail(size_t i, size_t bytes = 3000) const;

  // Kills the processes named in <dir>/pids and each node's postmaster.pid, then removes dir.
  static Result<void> StopKept(const std::string& dir, std::string* report);

 private:
  std::string self_;
  std::string dir_;
  bool own_dir_ = false;
  bool kept_ = false;
  uint16_t etcd_client_port_ = 0;
  uint16_t etcd_peer_port_ = 0;
  std::unique_ptr<launch::EtcdProcess> etcd_;
  std::unique_ptr<ChildProcess> proxy_;
  std::array<uint16_t, 4> proxy_ports_{};  // primary, sync, async, replica
  uint16_t proxy_status_port_ = 0;
  std::vector<std::unique_ptr<DemoNode>> nodes_;
};

// A TCP port on 127.0.0.1 that nothing listens on now (never the same twice per process).
uint16_t FreeLoopbackPort();

}  // namespace pgwarden::demo
