#include "agent/settings.h"

#include <cctype>
#include <sstream>

#include "cluster/conn_url.h"

namespace pgwarden::agent {
namespace {

bool IsLocalOnly(const std::string& key) {
  return key == "listen_addresses" || key == "port" || key == "unix_socket_directories";
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// The position synchronous_commit makes commits wait for, as Patroni picks the column of
// pg_stat_replication for maximum_lag_on_syncnode: remote_write -> write, remote_apply ->
// replay, anything else (on, local, off, unset) -> flush.
core::SyncLagPosition SyncLagPositionFor(const std::map<std::string, std::string>& parameters) {
  auto it = parameters.find("synchronous_commit");
  if (it == parameters.end()) return core::SyncLagPosition::kFlush;
  std::string v = Trim(it->second);
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
  for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (v == "remote_write") return core::SyncLagPosition::kWrite;
  if (v == "remote_apply") return core::SyncLagPosition::kReplay;
  return core::SyncLagPosition::kFlush;
}

}  // namespace

core::HaConfig MakeHaConfig(const config::Config& node, const config::DynamicConfig& dynamic,
                            std::string* adjusted) {
  core::HaConfig c;
  c.name = MemberName(node.name);
  c.api_url = "http://" + node.restapi.connect_address.ToString() + "/patroni";
  c.conn_url = "postgres://" + node.postgresql.connect_address.ToString() + "/postgres";
  c.tags.nofailover = node.tags.nofailover;
  c.tags.nosync = node.tags.nosync;
  c.tags.noloadbalance = node.tags.noloadbalance;
  c.tags.failover_priority = node.tags.failover_priority.value_or(1);
  c.ttl = dynamic.ttl;
  c.loop_wait = dynamic.loop_wait;
  c.retry_timeout = dynamic.retry_timeout;
  c.fence_margin = config::HaTiming::kFenceMargin;
  c.maximum_lag_on_failover = dynamic.maximum_lag_on_failover;
  c.primary_start_timeout = dynamic.primary_start_timeout;
  c.use_pg_rewind = node.postgresql.use_pg_rewind.value_or(dynamic.postgresql.use_pg_rewind);
  c.remove_data_directory_on_rewind_failure =
      node.postgresql.remove_data_directory_on_rewind_failure;
  c.synchronous_mode = dynamic.synchronous_mode;
  c.synchronous_mode_strict = dynamic.synchronous_mode_strict;
  c.synchronous_quorum = dynamic.synchronous_quorum;
  c.synchronous_node_count = dynamic.synchronous_node_count;
  c.maximum_lag_on_syncnode = dynamic.maximum_lag_on_syncnode;
  c.sync_lag_position = SyncLagPositionFor(ManagedParameters(node, dynamic));
  c.pause = dynamic.pause;
  if (!c.Check().empty()) {
    // The config module's timing rule is the keep-alive rule; the core also wants a decision
    // turn plus one etcd request to fit before the fence. Shrink the loop, keep ttl.
    const Duration budget = c.ttl - c.fence_margin;
    const Duration old_loop = c.loop_wait, old_retry = c.retry_timeout;
    c.loop_wait = std::min(c.loop_wait, budget / 2);
    c.retry_timeout = std::min(c.retry_timeout, budget - c.loop_wait);
    if (adjusted) {
      std::ostringstream out;
      out << "loop_wait " << std::chrono::duration_cast<milliseconds>(old_loop).count() << "ms -> "
          << std::chrono::duration_cast<milliseconds>(c.loop_wait).count() << "ms, retry_timeout "
          << std::chrono::duration_cast<milliseconds>(old_retry).count() << "ms -> "
          << std::chrono::duration_cast<milliseconds>(c.retry_timeout).count()
          << "ms (loop_wait + retry_timeout + " << 500 << "ms must fit in ttl)";
      *adjusted = out.str();
    }
  } else if (adjusted) {
    adjusted->clear();
  }
  return c;
}

postgres::LocalPostgresOptions MakePostgresOptions(const config::Config& node) {
  const config::PostgresqlConfig& pg = node.postgresql;
  postgres::LocalPostgresOptions o;
  o.data_dir = pg.data_dir;
  if (!pg.bin_dir.empty()) o.bin_dir = pg.bin_dir;
  std::string hosts;
  for (const std::string& h : pg.listen.hosts) hosts += (hosts.empty() ? "" : ",") + h;
  if (!hosts.empty()) o.listen_addresses = hosts;
  if (pg.listen.port != 0) o.port = pg.listen.port;
  if (auto it = pg.parameters.find("unix_socket_directories"); it != pg.parameters.end()) {
    std::string first = it->second.substr(0, it->second.find(','));
    first = Trim(first);
    if (first.size() >= 2 && first.front() == '\'' && first.back() == '\'') {
      first = first.substr(1, first.size() - 2);
    }
    if (!first.empty()) o.socket_dir = first;
  }
  o.os_user = node.pgwarden.os_user;
  o.log_file = pg.data_dir + ".log";  // beside the data directory: a clone does not copy it
  o.superuser = {pg.authentication.superuser.username, pg.authentication.superuser.password};
  o.replication = {pg.authentication.replication.username, pg.authentication.replication.password};
  o.local_auth_method = o.superuser.password.empty() ? "trust" : "scram-sha-256";
  auto fsync = pg.parameters.find("fsync");
  auto dyn_fsync = node.bootstrap.dcs.postgresql.parameters.find("fsync");
  if ((fsync != pg.parameters.end() && fsync->second == "off") ||
      (dyn_fsync != node.bootstrap.dcs.postgresql.parameters.end() && dyn_fsync->second == "off")) {
    o.sync_to_disk = false;
  }
  return o;
}

dcs::EtcdOptions MakeEtcdOptions(const config::Config& node, Duration request_timeout) {
  dcs::EtcdOptions o;
  for (const config::HostPort& h : node.etcd.hosts) o.endpoints.push_back(h.ToString());
  o.request_timeout = request_timeout;
  o.connect_timeout = std::min<Duration>(milliseconds(500), request_timeout);
  return o;
}

std::map<std::string, std::string> ManagedParameters(const config::Config& node,
                                                     const config::DynamicConfig& dynamic) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : dynamic.postgresql.parameters) {
    if (!IsLocalOnly(k)) out[k] = v;
  }
  for (const auto& [k, v] : node.postgresql.parameters) {
    if (!IsLocalOnly(k)) out[k] = v;
  }
  return out;
}

std::vector<postgres::HbaEntry> HbaEntries(const config::Config& node,
                                           const config::DynamicConfig& dynamic,
                                           std::vector<std::string>* problems) {
  const std::vector<std::string>* lines = &dynamic.postgresql.pg_hba;
  if (lines->empty()) lines = &node.postgresql.pg_hba;
  if (lines->empty()) lines = &node.bootstrap.pg_hba;
  std::vector<postgres::HbaEntry> out;
  for (const std::string& line : *lines) {
    std::istringstream in(line);
    std::vector<std::string> t;
    for (std::string w; in >> w;) t.push_back(w);
    postgres::HbaEntry e;
    size_t rest = 0;
    if (t.size() >= 4 && t[0] == "local") {
      e = {t[0], t[1], t[2], "", t[3], ""};
      rest = 4;
    } else if (t.size() >= 5 && t[0] != "local") {
      e = {t[0], t[1], t[2], t[3], t[4], ""};
      rest = 5;
    } else {
      if (problems) problems->push_back("pg_hba line \"" + line + "\": expected 4 or 5 fields");
      continue;
    }
    for (size_t i = rest; i < t.size(); ++i) e.options += (e.options.empty() ? "" : " ") + t[i];
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<std::pair<std::string, int>> HostPortOfConnUrl(const std::string& conn_url) {
  auto address = cluster::ParseConnUrl(conn_url);
  if (!address) return std::nullopt;
  return std::make_pair(address->host, static_cast<int>(address->port.value_or(5432)));
}

std::string SlotNameFor(const MemberName& member) {
  std::string out;
  for (char c : member.str()) {
    out += std::isalnum(static_cast<unsigned char>(c))
               ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
               : '_';
  }
  return out;
}

}  // namespace pgwarden::agent
