#include "launch/member.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pgwarden::launch {
namespace {

Result<void> WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Fail(ErrorCode::kFailed, "cannot write " + path);
  return Ok();
}

// `exec <binary> <command> -c <config> >> <log> 2>&1` through /bin/sh: appending keeps the
// log of an earlier run of the same member for post-mortems.
Result<ChildProcess> SpawnAppending(const std::string& binary, const std::string& command,
                                    const std::string& config, const std::string& log,
                                    bool die_with_parent) {
  Command cmd;
  cmd.argv = {"/bin/sh", "-c",   "exec \"$0\" " + command + " -c \"$1\" >>\"$2\" 2>&1",
              binary,    config, log};
  cmd.die_with_parent = die_with_parent;
  return ChildProcess::Spawn(cmd);
}

}  // namespace

MemberPaths MemberLayout(const std::string& root, const std::string& name, uint16_t pg_port,
                         uint16_t api_port) {
  MemberPaths m;
  m.name = name;
  m.dir = root + "/" + name;
  m.data_dir = m.dir + "/data";
  m.config_path = m.dir + "/node.yml";
  m.log_path = m.dir + "/agent.log";
  m.pg_port = pg_port;
  m.api_port = api_port;
  return m;
}

Result<void> PrepareMemberDir(const MemberPaths& member) {
  if (::mkdir(member.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Fail(ErrorCode::kFailed, "cannot create " + member.dir + ": " + std::strerror(errno));
  }
  if (!RunningAsRoot()) return Ok();
  auto user = LookupOsUser("postgres");
  if (!user) {
    return Fail(ErrorCode::kFailed,
                "running as root, PostgreSQL must run as the OS user `postgres`, which does not "
                "exist: " +
                    user.error().message);
  }
  if (::chown(member.dir.c_str(), user->uid, user->gid) != 0) {
    return Fail(ErrorCode::kFailed,
                "cannot give " + member.dir + " to the postgres OS user: " + std::strerror(errno));
  }
  return Ok();
}

std::string AgentYaml(const MemberConfig& c, const MemberPaths& n) {
  std::ostringstream y;
  y << "scope: " << c.scope << "\n"
    << "namespace: /service\n"
    << "name: " << n.name << "\n"
    << "restapi:\n"
    << "  listen: 127.0.0.1:" << n.api_port << "\n"
    << "  connect_address: 127.0.0.1:" << n.api_port << "\n"
    << "etcd3:\n"
    << "  hosts:\n"
    << "    - " << c.etcd_endpoint << "\n"
    << "bootstrap:\n"
    << "  dcs:\n"
    << "    ttl: " << c.ttl << "\n"
    << "    loop_wait: " << c.loop_wait << "\n"
    << "    retry_timeout: " << c.retry_timeout << "\n"
    << "    maximum_lag_on_failover: 1MB\n";
  if (c.synchronous_mode) y << "    synchronous_mode: true\n";
  y << "    postgresql:\n"
    << "      use_pg_rewind: true\n"
    << "      use_slots: true\n"
    << "      parameters:\n"
    << "        wal_level: replica\n"
    << "        hot_standby: \"on\"\n"
    << "        wal_log_hints: \"on\"\n"
    << "        max_wal_senders: 10\n"
    << "        max_replication_slots: 10\n"
    << "        max_connections: " << c.max_connections << "\n"
    << "        shared_buffers: 16MB\n"
    << "        wal_keep_size: 128MB\n"
    << "        max_wal_size: 256MB\n"
    << "        min_wal_size: 32MB\n";
  for (const auto& [name, value] : c.extra_parameters)
    y << "        " << name << ": " << value << "\n";
  y << "        wal_receiver_status_interval: 1s\n"
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
    << "      password: \"" << c.superuser_password << "\"\n"
    << "    replication:\n"
    << "      username: replicator\n"
    << "      password: \"" << c.replication_password << "\"\n"
    << "  parameters:\n"
    << "    unix_socket_directories: " << n.dir
    << (c.socket_subdir.empty() ? "" : "/" + c.socket_subdir) << "\n"
    << "    fsync: \"off\"\n"
    << "pgwarden:\n"
    << "  os_user: postgres\n";
  return y.str();
}

Result<void> WriteAgentConfig(const MemberConfig& config, const MemberPaths& member) {
  return WriteFile(member.config_path, AgentYaml(config, member));
}

Result<ChildProcess> SpawnAgent(const std::string& binary, const MemberPaths& member,
                                bool die_with_parent) {
  return SpawnAppending(binary, "agent", member.config_path, member.log_path, die_with_parent);
}

std::string ProxyYaml(const ProxySpec& s) {
  std::ostringstream y;
  y << "scope: " << s.scope << "\n"
    << "namespace: /service\n"
    << "etcd3:\n"
    << "  hosts:\n"
    << "    - " << s.etcd_endpoint << "\n"
    << "proxy:\n"
    << "  listen: 127.0.0.1\n"
    << "  primary_port: " << s.primary_port << "\n"
    << "  sync_port: " << s.sync_port << "\n"
    << "  async_port: " << s.async_port << "\n"
    << "  replica_port: " << s.replica_port << "\n"
    << "  status_port: " << s.status_port << "\n"
    << s.extra_proxy_yaml;
  return y.str();
}

Result<ChildProcess> SpawnProxy(const std::string& binary, const ProxySpec& spec,
                                bool die_with_parent) {
  if (auto w = WriteFile(spec.config_path, ProxyYaml(spec)); !w) return Fail(w.error());
  return SpawnAppending(binary, "proxy", spec.config_path, spec.log_path, die_with_parent);
}

}  // namespace pgwarden::launch
