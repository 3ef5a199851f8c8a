// pgwarden's node configuration: plain structs read from a YAML file whose keys are Patroni's
// wherever they mean the same thing, so an existing patroni.yml works with little or no change.
// docs/configuration.md documents every key, its type and default, and where pgwarden differs.
//
// Loading reports EVERY problem at once, each as "<file>:<line>:<col>: <key.path>: <what>",
// and never throws. Keys that Patroni has but pgwarden does not implement yet are accepted
// with one warning naming them all; a key nobody knows is an error ("did you mean ...?").
//
// Plain data: copyable, no I/O; this header pulls in neither yaml-cpp nor nlohmann-json.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/dynamic_config.h"
#include "config/ha_timing.h"

namespace pgwarden::config {

// "host:port"; IPv6 hosts are written in brackets: "[::1]:5432".
struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// Parses "host:port" / "[v6]:port". nullopt on anything else.
std::optional<HostPort> ParseHostPort(std::string_view text);

// postgresql.listen: one or more comma-separated hosts sharing the port given after the last
// one ("127.0.0.1,10.0.0.5:5432"), as Patroni. The first host is used for local connections.
struct ListenAddress {
  std::vector<std::string> hosts;
  uint16_t port = 0;
  std::string ToString() const;
  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

struct Credentials {
  std::string username;
  std::string password;  // empty: none (trust / peer / .pgpass)
  friend bool operator==(const Credentials&, const Credentials&) = default;
};

struct RestApiConfig {
  HostPort listen;           // required
  HostPort connect_address;  // default: listen (required when listen is a wildcard address)
  std::optional<Credentials> authentication;  // Basic auth for the unsafe endpoints
  std::string certfile;                       // TLS when set
  std::string keyfile;
};

enum class EtcdProtocol { kHttp, kHttps };

struct EtcdConfig {
  std::vector<HostPort> hosts;  // at least one
  EtcdProtocol protocol = EtcdProtocol::kHttp;
  std::string username;
  std::string password;
  std::string cacert;
  std::string cert;
  std::string key;
};

// One initdb option: `- data-checksums` -> {"data-checksums", nullopt} -> "--data-checksums";
// `- encoding: UTF8` -> {"encoding", "UTF8"} -> "--encoding=UTF8".
struct InitdbOption {
  std::string name;
  std::optional<std::string> value;
  std::string ToArgument() const;
  friend bool operator==(const InitdbOption&, const InitdbOption&) = default;
};

// bootstrap.users (deprecated in Patroni; accepted with a warning).
struct BootstrapUser {
  std::string name;
  std::string password;
  std::vector<std::string> options;  // CREATE ROLE options: createdb, createrole, ...
};

struct BootstrapConfig {
  DynamicConfig dcs;  // written to etcd's `config` key by the member that creates the cluster
  std::vector<InitdbOption> initdb;
  std::vector<std::string> pg_hba;  // pg_hba.conf lines for the new cluster
  std::vector<BootstrapUser> users;
  std::string post_bootstrap;  // script run once after initdb (alias: post_init)
};

struct PostgresAuthentication {
  Credentials superuser{"postgres", ""};
  Credentials replication{"replicator", ""};
  std::optional<Credentials> rewind;  // default: pg_rewind connects as the superuser
};

struct PostgresqlConfig {
  ListenAddress listen;      // default: connect_address's host and port
  HostPort connect_address;  // default: listen's first host (required if that is a wildcard)
  std::string data_dir;      // required
  std::string bin_dir;       // empty: look the programs up in PATH
  std::string config_dir;    // default: data_dir
  std::string pgpass;        // default: /tmp/pgpass-<name>
  PostgresAuthentication authentication;
  std::map<std::string, std::string> parameters;  // local GUCs, applied over the dynamic ones
  std::vector<std::string> pg_hba;                // local pg_hba.conf lines
  // Local overrides of bootstrap.dcs.postgresql.use_pg_rewind / use_slots.
  std::optional<bool> use_pg_rewind;
  std::optional<bool> use_slots;
  bool use_unix_socket = false;
  bool remove_data_directory_on_rewind_failure = false;
  bool remove_data_directory_on_diverged_timelines = false;
};

struct Tags {
  bool nofailover = false;
  bool noloadbalance = false;
  bool nosync = false;
  bool clonefrom = false;
  bool nostream = false;
  std::optional<std::string> replicatefrom;  // member to stream from (cascading)
  std::optional<int> failover_priority;      // higher wins ties; 0 is like nofailover
  // Any other tag, its scalar value as text ("true", "1.4", "rack-a").
  std::map<std::string, std::string> user;

  // Patroni's reading: nofailover wins; otherwise failover_priority (default 1) must be > 0.
  bool CanFailover() const { return !nofailover && failover_priority.value_or(1) > 0; }
};

enum class LogLevel { kTrace, kDebug, kInfo, kWarning, kError, kCritical };

struct LogConfig {
  LogLevel level = LogLevel::kInfo;
  std::string dir;  // empty: log to stderr
  int file_num = 4;
  uint64_t file_size = 25'000'000;  // bytes, Patroni's default
};

// Patroni's `watchdog.mode`. pgwarden's watchdog is a separate process, not /dev/watchdog
// (docs/watchdog.md): `off` runs without it; `automatic` (default) runs without it when it cannot
// start; `required` makes the agent refuse to start without it.
enum class WatchdogMode { kOff, kAutomatic, kRequired };

// The `pgwarden:` section: settings with no Patroni counterpart.
struct PgwardenSettings {
  // The OS user PostgreSQL's programs run as when pgwarden itself runs as root.
  std::string os_user = "postgres";
  // Lease keep-alive cadence and per-request deadline; nullopt: derived from ttl (HaTiming).
  std::optional<std::chrono::milliseconds> keepalive_interval;
  std::optional<std::chrono::milliseconds> keepalive_timeout;
};

struct Config {
  std::string scope;                       // cluster name; required
  std::string dcs_namespace = "/service";  // YAML key `namespace`; normalized "/x" (no trailing /)
  std::string name;                        // this member's name; required, unique in the scope
  RestApiConfig restapi;
  EtcdConfig etcd;  // from `etcd3` (or the `etcd` alias)
  BootstrapConfig bootstrap;
  PostgresqlConfig postgresql;
  Tags tags;
  LogConfig log;
  WatchdogMode watchdog = WatchdogMode::kAutomatic;
  PgwardenSettings pgwarden;

  // "/service/demo/": where this cluster's keys live in etcd.
  std::string KeyPrefix() const;
  // HA timing from bootstrap.dcs and the pgwarden section. Once the cluster runs, the agent
  // resolves it again from the etcd `config` key with ResolveHaTiming().
  HaTiming Timing() const;
};

// The effective timing for these dynamic settings and this node's keep-alive settings; error
// (kInvalidArgument) when the keep-alive rule of ha_timing.h does not hold.
Result<HaTiming> ResolveHaTiming(const DynamicConfig& dynamic, const PgwardenSettings& pgwarden);

struct LoadedConfig {
  Config config;
  std::vector<std::string> warnings;  // "<file>:<line>:<col>: <key.path>: ..." one per line
};

// Environment variables by name. Patroni's PATRONI_* variables override the file's values
// (PATRONI_SCOPE, PATRONI_NAME, PATRONI_POSTGRESQL_DATA_DIR, ...; docs/configuration.md).
using Environment = std::map<std::string, std::string>;
// The PATRONI_* variables of this process.
Environment ProcessEnvironment();

// Reads, parses and validates a config file, with this process's PATRONI_* variables applied
// (as Patroni does). Error (kInvalidArgument; kNotFound when the file does not exist) whose
// message lists every problem, one per line, each line
// "<file>:<line>:<col>: <key.path>: <what is wrong>" (a value from the environment:
// "<file>: <key.path> (from $PATRONI_X): <what is wrong>").
Result<LoadedConfig> LoadConfigFile(const std::string& path);
// The same with the given variables instead of the process's.
Result<LoadedConfig> LoadConfigFile(const std::string& path, const Environment& env);
// The same for YAML text; `source_name` stands for the file name in messages. Only the
// variables in `env` apply.
Result<LoadedConfig> LoadConfigString(std::string_view text, std::string_view source_name,
                                      const Environment& env = {});

// Semantic checks of a filled-in Config (required keys, ranges, the timing rule, consistency).
// The loaders run it; paths are the YAML key paths.
std::vector<ConfigProblem> Validate(const Config& config);

// `pgwarden check-config -c FILE`: loads FILE as LoadConfigFile(path) does (PATRONI_* variables
// included), prints the warnings (to `err`) and "<file>: OK ..." (to `out`) and returns 0, or
// prints warnings and errors (to `err`) and returns 2.
int CheckConfigCommand(const std::string& path, std::ostream& out, std::ostream& err);

std::string_view ToString(LogLevel level);

}  // namespace pgwarden::config
