// The members of a local pgwarden cluster, as `pgwarden demo` and the integration tests'
// ClusterHarness start them: each member lives in <root>/<name> (node.yml, agent.log, data/),
// is a `pgwarden agent -c node.yml` child process that runs its own PostgreSQL 15, and listens
// on loopback ports chosen by the caller. The proxy is `pgwarden proxy -c proxy.yml`.
//
// Thread-safety: free functions, callable from any thread; each returned ChildProcess is
// owned by the caller (its destructor kills it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/process.h"
#include "common/result.h"

namespace pgwarden::launch {

// Where a member lives and listens.
struct MemberPaths {
  std::string name;  // n1, n2, ...
  std::string dir;   // <root>/<name>
  std::string data_dir;
  std::string config_path;
  std::string log_path;  // the agent's stdout and stderr (appended across restarts)
  uint16_t pg_port = 0;
  uint16_t api_port = 0;
};
MemberPaths MemberLayout(const std::string& root, const std::string& name, uint16_t pg_port,
                         uint16_t api_port);

// Creates the member's directory (mode 0755) and, when running as root, gives it to the OS
// user `postgres` (PostgreSQL refuses to run as root; the agent switches to that user).
Result<void> PrepareMemberDir(const MemberPaths& member);

// What differs between the members' node.yml of the demo and of the tests.
struct MemberConfig {
  std::string scope;
  std::string etcd_endpoint;  // "127.0.0.1:<port>"
  std::string ttl = "3s";
  std::string loop_wait = "500ms";
  std::string retry_timeout = "1s";
  bool synchronous_mode = false;
  std::string superuser_password;
  std::string replication_password;
  int max_connections = 30;
  // More `bootstrap.dcs.postgresql.parameters` (name, YAML value), e.g. {"autovacuum", "\"off\""}.
  std::vector<std::pair<std::string, std::string>> extra_parameters;
  // unix_socket_directories relative to the member's dir ("": the dir itself).
  std::string socket_subdir;
};

// The member's node.yml (Patroni format): fast timings, pg_rewind and slots on, fsync off
// (local clusters: durability against OS crashes is not what they show), scram on loopback.
std::string AgentYaml(const MemberConfig& config, const MemberPaths& member);
// Writes AgentYaml to member.config_path.
Result<void> WriteAgentConfig(const MemberConfig& config, const MemberPaths& member);

// Spawns `<binary> agent -c <config_path>`, its output appended to log_path, in its own
// process group. `die_with_parent`: see Command.
Result<ChildProcess> SpawnAgent(const std::string& binary, const MemberPaths& member,
                                bool die_with_parent = false);

// A proxy's ports (all on 127.0.0.1) and files.
struct ProxySpec {
  std::string scope;
  std::string etcd_endpoint;
  std::string config_path;
  std::string log_path;
  uint16_t primary_port = 0;
  uint16_t sync_port = 0;
  uint16_t async_port = 0;
  uint16_t replica_port = 0;
  uint16_t status_port = 0;
  // Appended under `proxy:` (indented lines, e.g. "  hold_timeout: 15s\n").
  std::string extra_proxy_yaml;
};
std::string ProxyYaml(const ProxySpec& spec);
// Writes ProxyYaml to config_path, spawns `<binary> proxy -c <config_path>` (output appended
// to log_path).
Result<ChildProcess> SpawnProxy(const std::string& binary, const ProxySpec& spec,
                                bool die_with_parent = false);

}  // namespace pgwarden::launch
