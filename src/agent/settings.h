// AgentSettings: what the agent derives from its node configuration file (config::Config) and
// from the cluster's dynamic configuration (etcd `config` key): the decision core's HaConfig,
// the LocalPostgres options, the etcd client options and the PostgreSQL parameters to manage.
//
// Pure functions over plain structs: no I/O, so they are unit-tested directly.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/ha_config.h"
#include "dcs/etcd3/etcd_dcs.h"
#include "postgres/local_postgres.h"

namespace pgwarden::agent {

// The decision core's settings for this node under `dynamic`. When the dynamic timing breaks the
// core's rule (loop_wait + retry_timeout + fence_margin <= ttl), loop_wait and retry_timeout are
// lowered to fit and `*adjusted` says how (empty when nothing changed).
core::HaConfig MakeHaConfig(const config::Config& node, const config::DynamicConfig& dynamic,
                            std::string* adjusted = nullptr);

// LocalPostgres options for this node. The socket directory is the first entry of
// postgresql.parameters.unix_socket_directories (default /var/run/postgresql); a node whose
// parameters say `fsync: off` also skips fsync in initdb / pg_basebackup / pg_rewind.
postgres::LocalPostgresOptions MakePostgresOptions(const config::Config& node);

// etcd client options with the given per-request deadline.
dcs::EtcdOptions MakeEtcdOptions(const config::Config& node, Duration request_timeout);

// The PostgreSQL parameters pgwarden manages: the dynamic ones overlaid with the node's own;
// listen_addresses, port and unix_socket_directories are left out (LocalPostgres writes them
// from its options).
std::map<std::string, std::string> ManagedParameters(const config::Config& node,
                                                     const config::DynamicConfig& dynamic);

// pg_hba.conf lines (dynamic, else the node's postgresql.pg_hba, else bootstrap.pg_hba) parsed
// into entries. A line that cannot be parsed is reported in `*problems` and left out.
std::vector<postgres::HbaEntry> HbaEntries(const config::Config& node,
                                           const config::DynamicConfig& dynamic,
                                           std::vector<std::string>* problems);

// "postgres://127.0.0.1:5432/postgres" -> {"127.0.0.1", 5432}; nullopt when malformed.
std::optional<std::pair<std::string, int>> HostPortOfConnUrl(const std::string& conn_url);

// The slot a member streams through: lower-case alphanumerics, anything else '_' (the same
// rule as the core's SyncSlots names).
std::string SlotNameFor(const MemberName& member);

}  // namespace pgwarden::agent
