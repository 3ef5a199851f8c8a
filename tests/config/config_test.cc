#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace pgwarden::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kSource = PGWARDEN_SOURCE_DIR;

// A temporary directory removed on destruction. (Not tests/support's TempDir: linking the
// shared test-support library would tie this unit test to the etcd and PostgreSQL adapters.)
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pgwarden-config-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A minimal valid config, 9 lines: tests append lines from line 10 on.
constexpr std::string_view kMinimal =
    "scope: demo\n"                           // 1
    "name: node1\n"                           // 2
    "restapi:\n"                              // 3
    "  listen: 127.0.0.1:8008\n"              // 4
    "etcd3:\n"                                // 5
    "  hosts: 127.0.0.1:2379\n"               // 6
    "postgresql:\n"                           // 7
    "  listen: 127.0.0.1:5432\n"              // 8
    "  data_dir: /var/lib/pgwarden/node1\n";  // 9

LoadedConfig Load(std::string_view yaml) {
  Result<LoadedConfig> r = LoadConfigString(yaml, "node.yml");
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r ? *r : LoadedConfig{};
}

// The error lines of a config that must fail.
std::vector<std::string> Errors(std::string_view yaml) {
  Result<LoadedConfig> r = LoadConfigString(yaml, "node.yml");
  EXPECT_FALSE(r.has_value()) << "loaded, but should not have";
  if (r) return {};
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  std::vector<std::string> lines;
  std::istringstream in(r.error().message);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string With(std::string_view extra) { return std::string(kMinimal) + std::string(extra); }

// ---- Loading what is valid ----------------------------------------------------------------

TEST(LoadConfig, MinimalConfigGetsDefaults) {
  LoadedConfig loaded = Load(kMinimal);
  EXPECT_THAT(loaded.warnings, ::testing::IsEmpty());
  const Config& c = loaded.config;
  EXPECT_EQ(c.scope, "demo");
  EXPECT_EQ(c.name, "node1");
  EXPECT_EQ(c.dcs_namespace, "/service");
  EXPECT_EQ(c.KeyPrefix(), "/service/demo/");
  EXPECT_EQ(c.restapi.listen, (HostPort{"127.0.0.1", 8008}));
  EXPECT_EQ(c.restapi.connect_address, (HostPort{"127.0.0.1", 8008}));
  ASSERT_EQ(c.etcd.hosts.size(), 1u);
  EXPECT_EQ(c.etcd.hosts[0], (HostPort{"127.0.0.1", 2379}));
  EXPECT_EQ(c.etcd.protocol, EtcdProtocol::kHttp);
  EXPECT_EQ(c.postgresql.listen.hosts, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(c.postgresql.listen.port, 5432);
  EXPECT_EQ(c.postgresql.connect_address, (HostPort{"127.0.0.1", 5432}));
  EXPECT_EQ(c.postgresql.config_dir, "/var/lib/pgwarden/node1");
  EXPECT_EQ(c.postgresql.pgpass, "/tmp/pgpass-node1");
  EXPECT_EQ(c.postgresql.authentication.superuser.username, "postgres");
  EXPECT_EQ(c.postgresql.authentication.replication.username, "replicator");
  EXPECT_EQ(c.pgwarden.os_user, "postgres");
  EXPECT_EQ(c.bootstrap.dcs, DynamicConfig{});
  EXPECT_EQ(c.Timing(), HaTiming{});
  EXPECT_EQ(c.log.level, LogLevel::kInfo);
}

TEST(LoadConfig, CompletePatroniYmlLoadsWithOneWarningNamingTheUnimplementedKeys) {
  Result<LoadedConfig> r = LoadConfigFile(kSource + "/tests/config/testdata/patroni.yml");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->warnings.size(), 1u) << ::testing::PrintToString(r->warnings);
  EXPECT_EQ(r->warnings[0],
            kSource +
                "/tests/config/testdata/patroni.yml: accepted but not implemented by pgwarden "
                "yet, so ignored: `restapi.allowlist_include_members` (line 15), `ctl` (line 17), "
                "`bootstrap.dcs.failsafe_mode` (line 43), `bootstrap.dcs.slots` (line 58), "
                "`postgresql.authentication.rewind.sslmode` (line 88), "
                "`postgresql.create_replica_methods` (line 96), `postgresql.pgbackrest` (line "
                "99), `postgresql.basebackup` (line 103), `postgresql.callbacks` (line 106), "
                "`watchdog.device` (line 113), `watchdog.safety_margin` (line 114), `log.format` "
                "(line 129)");

  const Config& c = r->config;
  EXPECT_EQ(c.scope, "orders");
  EXPECT_EQ(c.dcs_namespace, "/db");
  EXPECT_EQ(c.KeyPrefix(), "/db/orders/");
  EXPECT_EQ(c.name, "pg-orders-2");
  EXPECT_EQ(c.restapi.listen, (HostPort{"0.0.0.0", 8008}));
  EXPECT_EQ(c.restapi.connect_address, (HostPort{"10.20.0.12", 8008}));
  ASSERT_TRUE(c.restapi.authentication.has_value());
  EXPECT_EQ(c.restapi.authentication->username, "opsadmin");
  EXPECT_EQ(c.restapi.authentication->password, "not-a-real-secret");
  EXPECT_EQ(c.restapi.certfile, "/etc/patroni/tls/server.crt");
  EXPECT_EQ(c.etcd.hosts.size(), 3u);
  EXPECT_EQ(c.etcd.hosts[2], (HostPort{"10.20.0.7", 2379}));
  EXPECT_EQ(c.etcd.protocol, EtcdProtocol::kHttps);
  EXPECT_EQ(c.etcd.username, "patroni");
  EXPECT_EQ(c.etcd.key, "/etc/patroni/tls/etcd-client.key");

  const DynamicConfig& d = c.bootstrap.dcs;
  EXPECT_EQ(d.ttl, seconds(30));
  EXPECT_EQ(d.loop_wait, seconds(10));
  EXPECT_EQ(d.retry_timeout, seconds(10));
  EXPECT_EQ(d.maximum_lag_on_failover, 1048576u);
  EXPECT_EQ(d.primary_start_timeout, seconds(120));  // from master_start_timeout
  EXPECT_TRUE(d.synchronous_mode);
  EXPECT_FALSE(d.synchronous_mode_strict);
  EXPECT_TRUE(d.postgresql.use_pg_rewind);
  EXPECT_EQ(d.postgresql.parameters.at("max_connections"), "200");
  EXPECT_EQ(d.postgresql.parameters.at("hot_standby"), "on");
  EXPECT_EQ(d.postgresql.parameters.at("wal_keep_size"), "1GB");
  EXPECT_THAT(c.bootstrap.initdb,
              ElementsAre(InitdbOption{"encoding", "UTF8"}, InitdbOption{"locale", "C.UTF-8"},
                          InitdbOption{"data-checksums", std::nullopt}));
  EXPECT_EQ(c.bootstrap.initdb[0].ToArgument(), "--encoding=UTF8");
  EXPECT_EQ(c.bootstrap.initdb[2].ToArgument(), "--data-checksums");
  EXPECT_EQ(c.bootstrap.pg_hba.size(), 2u);
  EXPECT_EQ(c.bootstrap.post_bootstrap, "/usr/local/bin/orders-setup.sh");

  const PostgresqlConfig& pg = c.postgresql;
  EXPECT_EQ(pg.listen.ToString(), "0.0.0.0:5432");
  EXPECT_EQ(pg.connect_address, (HostPort{"10.20.0.12", 5432}));
  EXPECT_EQ(pg.data_dir, "/var/lib/postgresql/15/orders");
  EXPECT_EQ(pg.bin_dir, "/usr/lib/postgresql/15/bin");
  EXPECT_EQ(pg.pgpass, "/var/lib/postgresql/.pgpass_patroni");
  EXPECT_EQ(pg.authentication.superuser, (Credentials{"postgres", "super-pass"}));
  EXPECT_EQ(pg.authentication.replication, (Credentials{"replicator", "repl-pass"}));
  ASSERT_TRUE(pg.authentication.rewind.has_value());
  EXPECT_EQ(pg.authentication.rewind->username, "rewinder");
  EXPECT_EQ(pg.parameters.at("shared_buffers"), "2GB");
  EXPECT_EQ(pg.pg_hba.size(), 3u);
  EXPECT_TRUE(pg.remove_data_directory_on_rewind_failure);
  EXPECT_TRUE(pg.use_unix_socket);

  EXPECT_TRUE(c.tags.clonefrom);
  EXPECT_EQ(c.tags.failover_priority, 2);
  EXPECT_TRUE(c.tags.CanFailover());
  EXPECT_EQ(c.tags.user, (std::map<std::string, std::string>{{"datacenter", "eu-west-1a"}}));
  EXPECT_EQ(c.log.level, LogLevel::kWarning);
  EXPECT_EQ(c.log.file_num, 10);
  EXPECT_EQ(c.log.file_size, 26214400u);
  // Patroni's timing passes pgwarden's rule: keep-alive every ttl/4.
  EXPECT_EQ(c.Timing().keepalive_interval, milliseconds(7500));
}

TEST(LoadConfig, ExampleConfigsInDocsLoadWithoutWarnings) {
  for (const char* node : {"node1", "node2", "node3"}) {
    std::string path = kSource + "/docs/examples/" + node + ".yml";
    Result<LoadedConfig> r = LoadConfigFile(path);
    ASSERT_TRUE(r.has_value()) << path << ": " << r.error().message;
    EXPECT_THAT(r->warnings, ::testing::IsEmpty()) << path;
    EXPECT_EQ(r->config.name, node);
    EXPECT_EQ(r->config.etcd.hosts.size(), 3u);
  }
}

TEST(LoadConfig, DurationsWithUnitsAndPgwardenSection) {
  LoadedConfig loaded =
      Load(With("bootstrap:\n"
                "  dcs:\n"
                "    ttl: 3s\n"
                "    loop_wait: 500ms\n"
                "    retry_timeout: 0.75\n"
                "    primary_start_timeout: 1min\n"
                "    primary_stop_timeout: 0\n"
                "    maximum_lag_on_failover: 16MB\n"
                "pgwarden:\n"
                "  os_user: pgrunner\n"
                "  keepalive_interval: 600ms\n"
                "  keepalive_timeout: 400ms\n"));
  const DynamicConfig& d = loaded.config.bootstrap.dcs;
  EXPECT_EQ(d.ttl, seconds(3));
  EXPECT_EQ(d.loop_wait, milliseconds(500));
  EXPECT_EQ(d.retry_timeout, milliseconds(750));
  EXPECT_EQ(d.primary_start_timeout, seconds(60));
  EXPECT_EQ(d.primary_stop_timeout, std::nullopt);
  EXPECT_EQ(d.maximum_lag_on_failover, 16u << 20);
  EXPECT_EQ(loaded.config.pgwarden.os_user, "pgrunner");
  HaTiming t = loaded.config.Timing();
  EXPECT_EQ(t.keepalive_interval, milliseconds(600));
  EXPECT_EQ(t.keepalive_timeout, milliseconds(400));
  EXPECT_EQ(t.FenceAfter(), milliseconds(2500));
}

TEST(LoadConfig, PatroniSpellingsOfListsAndAddresses) {
  LoadedConfig loaded = Load(
      "scope: demo\n"
      "name: n1\n"
      "restapi: {listen: '[::1]:8008'}\n"
      "etcd3:\n"
      "  host: 127.0.0.1:2379\n"
      "  hosts: 'http://127.0.0.2:2379, 127.0.0.3'\n"
      "postgresql:\n"
      "  listen: 127.0.0.1,127.0.0.2:5433\n"
      "  data_dir: data/n1\n"
      "bootstrap:\n"
      "  initdb: {encoding: UTF8}\n"
      "  post_bootstrap: /bin/true\n");
  const Config& c = loaded.config;
  EXPECT_EQ(c.restapi.listen, (HostPort{"::1", 8008}));
  EXPECT_EQ(c.restapi.listen.ToString(), "[::1]:8008");
  ASSERT_EQ(c.etcd.hosts.size(), 3u);
  EXPECT_EQ(c.etcd.hosts[0], (HostPort{"127.0.0.1", 2379}));
  EXPECT_EQ(c.etcd.hosts[1], (HostPort{"127.0.0.2", 2379}));
  EXPECT_EQ(c.etcd.hosts[2], (HostPort{"127.0.0.3", 2379}));
  EXPECT_EQ(c.postgresql.listen.hosts, (std::vector<std::string>{"127.0.0.1", "127.0.0.2"}));
  EXPECT_EQ(c.postgresql.listen.port, 5433);
  EXPECT_EQ(c.postgresql.connect_address, (HostPort{"127.0.0.1", 5433}));
  EXPECT_THAT(c.bootstrap.initdb, ElementsAre(InitdbOption{"encoding", "UTF8"}));
}

TEST(LoadConfig, WatchdogModeIsPatronis) {
  EXPECT_EQ(Load(kMinimal).config.watchdog, WatchdogMode::kAutomatic);
  EXPECT_EQ(Load(With("watchdog: {mode: off}\n")).config.watchdog, WatchdogMode::kOff);
  EXPECT_EQ(Load(With("watchdog: {mode: Required}\n")).config.watchdog,
            WatchdogMode::kRequired);
}

TEST(ConfigErrors, UnknownWatchdogModeNamesTheChoices) {
  ScratchDir dir;
  std::string path = dir.Sub("node.yml");
  std::ofstream(path) << With("watchdog:\n  mode: sometimes\n");
  Result<LoadedConfig> r = LoadConfigFile(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message,
              ::testing::HasSubstr(path + ":11:9: watchdog.mode: expected one of off, automatic, "
                                          "required, got `sometimes`"));
}

TEST(LoadConfig, ConnectAddressAloneGivesListen) {
  LoadedConfig loaded = Load(
      "scope: demo\nname: n1\nrestapi: {listen: 127.0.0.1:8008}\netcd3: {hosts: [127.0.0.1:2379]}\n"
      "postgresql: {connect_address: 127.0.0.1:5432, data_dir: /d}\n");
  EXPECT_EQ(loaded.config.postgresql.listen.ToString(), "127.0.0.1:5432");
}

TEST(LoadConfig, EtcdSectionIsAnAliasWithAWarning) {
  LoadedConfig loaded = Load(
      "scope: demo\nname: n1\nrestapi: {listen: 127.0.0.1:8008}\n"
      "etcd:\n"  // line 4
      "  hosts: 127.0.0.1:2379\n"
      "postgresql: {listen: 127.0.0.1:5432, data_dir: /d}\n");
  EXPECT_EQ(loaded.config.etcd.hosts.size(), 1u);
  ASSERT_EQ(loaded.warnings.size(), 1u);
  EXPECT_THAT(loaded.warnings[0], HasSubstr("node.yml:4:1: etcd: read as `etcd3`"));
  EXPECT_THAT(loaded.warnings[0], HasSubstr("v3 API only"));
}

TEST(LoadConfig, DeprecatedUsersAndNearMissTagsWarn) {
  LoadedConfig loaded =
      Load(With("bootstrap:\n"              // 10
                "  users:\n"                // 11
                "    admin:\n"              // 12
                "      password: secret\n"  // 13
                "      options: [createrole, createdb]\n"
                "tags:\n"              // 15
                "  nofailove: true\n"  // 16
                "  rack: r7\n"));      // 17
  ASSERT_EQ(loaded.config.bootstrap.users.size(), 1u);
  EXPECT_EQ(loaded.config.bootstrap.users[0].name, "admin");
  EXPECT_EQ(loaded.config.bootstrap.users[0].options,
            (std::vector<std::string>{"createrole", "createdb"}));
  EXPECT_FALSE(loaded.config.tags.nofailover);
  EXPECT_EQ(loaded.config.tags.user.at("nofailove"), "true");
  EXPECT_EQ(loaded.config.tags.user.at("rack"), "r7");
  EXPECT_THAT(loaded.warnings,
              ElementsAre(HasSubstr("node.yml:11:3: bootstrap.users: deprecated"),
                          "node.yml:16:3: tags.nofailove: kept as a user tag; did you mean "
                          "pgwarden's tag `nofailover`?"));
}

TEST(LoadConfig, ParametersPgwardenSetsItselfWarn) {
  LoadedConfig loaded =
      Load(With("  parameters:\n"          // 10
                "    port: 5433\n"         // 11
                "    work_mem: 64MB\n"));  // 12
  EXPECT_THAT(loaded.warnings,
              ElementsAre("node.yml:11:5: postgresql.parameters.port: ignored: pgwarden sets it "
                          "from postgresql.listen"));
  EXPECT_EQ(loaded.config.postgresql.parameters.at("work_mem"), "64MB");
}

TEST(LoadConfig, YamlAnchorsAndMergeKeys) {
  LoadedConfig loaded =
      Load(With("  authentication:\n"
                "    superuser: &su {username: postgres, password: s3cret}\n"
                "    rewind:\n"
                "      <<: *su\n"
                "      username: rewinder\n"));
  ASSERT_TRUE(loaded.config.postgresql.authentication.rewind.has_value());
  EXPECT_EQ(*loaded.config.postgresql.authentication.rewind, (Credentials{"rewinder", "s3cret"}));
  EXPECT_THAT(loaded.warnings, ::testing::IsEmpty());
}

// ---- Every kind of error -------------------------------------------------------------------

TEST(ConfigErrors, UnknownKeyWithSuggestion) {
  EXPECT_THAT(Errors(With("  listne: 127.0.0.1:5432\n")),
              ElementsAre("node.yml:10:3: postgresql.listne: unknown key `postgresql.listne` (did "
                          "you mean `listen`?)"));
  EXPECT_THAT(Errors(With("bootstrap:\n  dcs:\n    loop_wiat: 5\n")),
              ElementsAre("node.yml:12:5: bootstrap.dcs.loop_wiat: unknown key "
                          "`bootstrap.dcs.loop_wiat` (did you mean `loop_wait`?)"));
  EXPECT_THAT(Errors(With("frobnicate: 1\n")),
              ElementsAre("node.yml:10:1: frobnicate: unknown key `frobnicate`"));
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_THAT(Errors(With("bootstrap:\n  dcs:\n    ttl: [5]\n")),
              ElementsAre("node.yml:12:10: bootstrap.dcs.ttl: expected a duration (seconds, or a "
                          "string such as `500ms`), got a list"));
  EXPECT_THAT(Errors(With("tags:\n  nofailover: maybe\n")),
              ElementsAre("node.yml:11:15: tags.nofailover: expected true or false, got `maybe`"));
  EXPECT_THAT(Errors(With("tags:\n  failover_priority: high\n")),
              ElementsAre("node.yml:11:22: tags.failover_priority: expected an integer, got "
                          "`high`"));
  EXPECT_THAT(Errors(With("log: verbose\n")),
              ElementsAre("node.yml:10:6: log: expected a map of settings (`key: value` lines), "
                          "got a single value"));
  EXPECT_THAT(Errors(With("bootstrap:\n  pg_hba: host all all 0.0.0.0/0 md5\n")),
              ElementsAre("node.yml:11:11: bootstrap.pg_hba: expected a list (`- item` lines), "
                          "got a single value"));
  EXPECT_THAT(Errors(With("  data_dir: {path: /x}\n")),
              ElementsAre(HasSubstr("node.yml:10:3: postgresql.data_dir: duplicate key (first "
                                    "given at line 9)")));
}

TEST(ConfigErrors, BadValues) {
  EXPECT_THAT(Errors(With("bootstrap:\n  dcs:\n    loop_wait: soon\n")),
              ElementsAre("node.yml:12:16: bootstrap.dcs.loop_wait: expected a duration: a number "
                          "of seconds or a number with a unit (ms, s, min, h), e.g. `500ms`, "
                          "`5s`, `1min`; got `soon`"));
  EXPECT_THAT(Errors(With("bootstrap:\n  dcs:\n    ttl: 2500ms\n")),
              ElementsAre("node.yml:12:10: bootstrap.dcs.ttl: must be a whole number of seconds "
                          "(etcd leases count whole seconds), got 2500ms"));
  // (`synchronous_mode: quorum` is accepted: dynamic_config_test.cc.)
  EXPECT_THAT(Errors(With("bootstrap:\n  dcs:\n    synchronous_mode: sometimes\n")),
              ElementsAre(HasSubstr("node.yml:12:23: bootstrap.dcs.synchronous_mode:")));
  EXPECT_THAT(Errors(With("etcd3:\n")), ::testing::Contains(HasSubstr("duplicate key")));
  EXPECT_THAT(Errors("scope: demo\nname: n1\nrestapi: {listen: localhost}\n"
                     "etcd3: {hosts: [127.0.0.1:2379]}\npostgresql: {listen: 127.0.0.1:5432, "
                     "data_dir: /d}\n"),
              ElementsAre("node.yml:3:19: restapi.listen: expected host:port (IPv6 in brackets: "
                          "[::1]:5432), got `localhost`"));
  EXPECT_THAT(Errors(With("log:\n  level: chatty\n")),
              ElementsAre("node.yml:11:10: log.level: expected one of DEBUG, INFO, WARNING, "
                          "ERROR, CRITICAL, got `chatty`"));
}

TEST(ConfigErrors, MissingRequiredKeys) {
  // A missing key is reported at its section (or at 1:1 for a top-level one).
  EXPECT_THAT(Errors("restapi:\n  listen: 0.0.0.0:8008\npostgresql:\n  listen: '*:5432'\n"),
              ElementsAre("node.yml:1:1: scope: required key is missing: the cluster's name",
                          "node.yml:1:1: name: required key is missing: this member's name, "
                          "unique in the cluster",
                          "node.yml:1:1: restapi.connect_address: required when restapi.listen is "
                          "a wildcard address (0.0.0.0:8008): the address:port other members "
                          "reach this REST API at",
                          "node.yml:1:1: etcd3.hosts: required key is missing: at least one etcd "
                          "host (etcd3.hosts or etcd3.host)",
                          "node.yml:3:1: postgresql.data_dir: required key is missing: the "
                          "PostgreSQL data directory",
                          "node.yml:3:1: postgresql.connect_address: required when "
                          "postgresql.listen is a wildcard address (*:5432): the address:port "
                          "other members and clients reach this PostgreSQL at"));
  EXPECT_THAT(Errors("scope: demo\nname: n1\netcd3: {host: 127.0.0.1:2379}\npostgresql:\n"
                     "  data_dir: /d\n"),
              ElementsAre("node.yml:1:1: restapi.listen: required key is missing: the "
                          "address:port the REST API listens on",
                          "node.yml:4:1: postgresql.listen: required key is missing: "
                          "postgresql.listen or postgresql.connect_address"));
}

TEST(ConfigErrors, ValuesOutOfRange) {
  EXPECT_THAT(Errors(With("bootstrap:\n  dcs:\n    ttl: 1\n    synchronous_node_count: 0\n")),
              ElementsAre("node.yml:12:5: bootstrap.dcs.ttl: must be between 2s and 1h (etcd "
                          "grants no lease shorter than 2s with its default timing), got 1s",
                          "node.yml:13:29: bootstrap.dcs.synchronous_node_count: must be between "
                          "1 and 1000, got 0"));
  // Patroni's loop_wait/retry_timeout without Patroni's ttl: the loop rule names what fits.
  EXPECT_THAT(Errors(With("bootstrap:\n  dcs:\n    loop_wait: 10\n    retry_timeout: 10\n")),
              ElementsAre("node.yml:12:5: bootstrap.dcs.loop_wait: loop_wait (10s) + "
                          "retry_timeout (10s) + fence margin (500ms) = 20500ms must not exceed "
                          "ttl (2s): a leader must finish one HA loop turn and one etcd request "
                          "before it has to fence itself; lower loop_wait or retry_timeout, or "
                          "raise ttl to at least 21s"));
  EXPECT_THAT(Errors(With("bootstrap:\n  dcs:\n    ttl: 3\n    retry_timeout: 3s\n")),
              ElementsAre(HasSubstr("node.yml:13:5: bootstrap.dcs.retry_timeout: loop_wait "
                                    "(500ms) + retry_timeout (3s)")));
  EXPECT_THAT(Errors(With("log:\n  file_num: 0\n")),
              ElementsAre("node.yml:11:13: log.file_num: must be between 1 and 1000, got 0"));
  EXPECT_THAT(Errors(With("pgwarden:\n  keepalive_interval: 10ms\n")),
              ElementsAre("node.yml:11:3: pgwarden.keepalive_interval: must be at least 100ms, "
                          "got 10ms"));
}

TEST(ConfigErrors, TtlTooShortForTheKeepaliveCadence) {
  EXPECT_THAT(
      Errors(With("bootstrap:\n  dcs:\n    ttl: 2\npgwarden:\n  keepalive_interval: 800ms\n")),
      ElementsAre("node.yml:14:3: pgwarden.keepalive_interval: ttl 2s is too short for the "
                  "keep-alive cadence: 2 x keepalive_interval (800ms) + keepalive_timeout (800ms) "
                  "+ fence margin (500ms) = 2900ms must not exceed ttl, so that one lost "
                  "keep-alive does not demote the primary; raise ttl to at least 3s or lower "
                  "pgwarden.keepalive_interval to at most 350ms"));
  // The same ttl works with a faster cadence.
  Load(With("bootstrap:\n  dcs:\n    ttl: 2\npgwarden:\n  keepalive_interval: 400ms\n"));
}

TEST(ConfigErrors, ConsistencyBetweenKeys) {
  EXPECT_THAT(Errors(With("etcd:\n  hosts: 127.0.0.1:2379\n")),
              ElementsAre(HasSubstr("node.yml:10:1: etcd: both `etcd` and `etcd3` are given")));
  EXPECT_THAT(Errors(With("bootstrap:\n  dcs:\n    primary_start_timeout: 10\n"
                          "    master_start_timeout: 20\n")),
              ElementsAre("node.yml:13:5: bootstrap.dcs.master_start_timeout: give only one of "
                          "`primary_start_timeout` and its old name `master_start_timeout`"));
  EXPECT_THAT(Errors(With("tags:\n  nofailover: true\n  failover_priority: 3\n")),
              ElementsAre(HasSubstr("node.yml:12:3: tags.failover_priority: contradicts "
                                    "`nofailover: true`")));
  EXPECT_THAT(Errors(With("bootstrap:\n  initdb:\n    - pgdata: /x\n    - {a: 1, b: 2}\n")),
              ElementsAre("node.yml:12:7: bootstrap.initdb[0]: pgwarden passes the data directory "
                          "itself (postgresql.data_dir)",
                          "node.yml:13:7: bootstrap.initdb[1]: each initdb option is a name (`- "
                          "data-checksums`) or a single `name: value` pair (`- encoding: UTF8`), "
                          "got a map with several keys"));
  EXPECT_THAT(Errors("scope: a/b\nname: n1\nrestapi: {listen: 127.0.0.1:8008}\n"
                     "etcd3: {hosts: 'https://127.0.0.1:2379', protocol: http}\n"
                     "postgresql: {listen: 127.0.0.1:5432, data_dir: /d}\n"),
              ElementsAre("node.yml:1:1: scope: must not contain `/` or blanks (it is part of "
                          "etcd key names), got `a/b`",
                          "node.yml:4:52: etcd3.protocol: contradicts the scheme written in the "
                          "hosts"));
}

TEST(ConfigErrors, InvalidYamlNamesLineAndColumn) {
  std::vector<std::string> errors = Errors("scope: demo\nname: [n1\nrestapi: x\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::MatchesRegex("node\\.yml:[0-9]+:[0-9]+: invalid YAML: .+"));
  errors = Errors("scope: demo\n  name: n1\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::StartsWith("node.yml:2:"));
  EXPECT_THAT(errors[0], HasSubstr("invalid YAML"));
  EXPECT_THAT(Errors(""), ElementsAre(HasSubstr("node.yml: the file is empty")));
  EXPECT_THAT(Errors("- a\n- b\n"),
              ElementsAre("node.yml:1:1: (top level): expected a map of settings (`key: value` "
                          "lines), got a list"));
}

TEST(ConfigErrors, SeveralErrorsReportedAtOnceInFileOrder) {
  std::vector<std::string> errors = Errors(
      "scope: demo\n"                 // 1
      "name: node1\n"                 // 2
      "restapi:\n"                    // 3
      "  listen: 127.0.0.1:80800\n"   // 4  port out of range
      "etcd3:\n"                      // 5
      "  hosts: []\n"                 // 6  no host
      "postgresql:\n"                 // 7
      "  listne: 127.0.0.1:5432\n"    // 8  typo
      "  data_dir: /d\n"              // 9
      "  use_pg_rewind: sometimes\n"  // 10 bad bool
      "bootstrap:\n"                  // 11
      "  dcs:\n"                      // 12
      "    ttl: 1\n");                // 13 out of range
  EXPECT_THAT(errors,
              ElementsAre(HasSubstr("node.yml:4:11: restapi.listen: expected host:port"),
                          HasSubstr("node.yml:6:3: etcd3.hosts: required key is missing"),
                          HasSubstr("node.yml:7:1: postgresql.listen: required key is missing"),
                          HasSubstr("node.yml:8:3: postgresql.listne: unknown key"),
                          HasSubstr("node.yml:10:18: postgresql.use_pg_rewind: expected true or "
                                    "false, got `sometimes`"),
                          HasSubstr("node.yml:13:5: bootstrap.dcs.ttl: must be between 2s")));
}

// ---- Files and the check-config command ----------------------------------------------------

TEST(LoadConfigFile, UnreadableFiles) {
  Result<LoadedConfig> r = LoadConfigFile("/nonexistent/pgwarden.yml");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message,
            "/nonexistent/pgwarden.yml: cannot read the config file: No such file or directory");
  ScratchDir dir;
  r = LoadConfigFile(dir.path());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, dir.path() + ": cannot read the config file: it is a directory");
}

TEST(LoadConfigFile, ErrorsNameTheFile) {
  ScratchDir dir;
  std::string path = dir.Sub("bad.yml");
  std::ofstream(path) << With("bootstrap:\n  dcs:\n    ttl: 1\n");
  Result<LoadedConfig> r = LoadConfigFile(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message, ::testing::StartsWith(path + ":12:5: bootstrap.dcs.ttl: "));
}

TEST(CheckConfigCommand, GoodFilePrintsWarningsAndReturnsZero) {
  ScratchDir dir;
  std::string path = dir.Sub("node.yml");
  std::ofstream(path) << With("ctl: {insecure: true}\n");
  std::ostringstream out, err;
  EXPECT_EQ(CheckConfigCommand(path, out, err), 0);
  EXPECT_EQ(out.str(), path +
                           ": OK (cluster `demo`, member `node1`, 1 etcd host, ttl 2s, keep-alive "
                           "every 500ms)\n");
  EXPECT_EQ(err.str(), "warning: " + path +
                           ": accepted but not implemented by pgwarden yet, so ignored: "
                           "`ctl` (line 10)\n");
}

TEST(CheckConfigCommand, BadFilePrintsEveryErrorAndReturnsTwo) {
  ScratchDir dir;
  std::string path = dir.Sub("node.yml");
  std::ofstream(path) << With("tags: {nofailover: perhaps}\nlog: {levle: DEBUG}\n");
  std::ostringstream out, err;
  EXPECT_EQ(CheckConfigCommand(path, out, err), 2);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), "error: " + path +
                           ":10:20: tags.nofailover: expected true or false, got `perhaps`\n"
                           "error: " +
                           path +
                           ":11:7: log.levle: unknown key `log.levle` (did you mean `level`?)\n" +
                           path + ": 2 problems found\n");
  std::ostringstream out2, err2;
  EXPECT_EQ(CheckConfigCommand(dir.Sub("missing.yml"), out2, err2), 2);
  EXPECT_THAT(err2.str(), HasSubstr("missing.yml: cannot read the config file"));
}

TEST(HostPort, ParsesAndPrints) {
  EXPECT_EQ(ParseHostPort("db1.example:5432"), (HostPort{"db1.example", 5432}));
  EXPECT_EQ(ParseHostPort("[fe80::1]:8008"), (HostPort{"fe80::1", 8008}));
  EXPECT_EQ(ParseHostPort("fe80::1:8008"), std::nullopt);
  EXPECT_EQ(ParseHostPort("host:0"), std::nullopt);
  EXPECT_EQ(ParseHostPort("host:65536"), std::nullopt);
  EXPECT_EQ(ParseHostPort(":5432"), std::nullopt);
  EXPECT_EQ(ParseHostPort("host"), std::nullopt);
  EXPECT_EQ((HostPort{"fe80::1", 8008}).ToString(), "[fe80::1]:8008");
}

}  // namespace
}  // namespace pgwarden::config

namespace pgwarden::config {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Bad input never crashes or throws: every prefix of a real file, and the file with each byte
// replaced by characters that upset YAML, either loads or yields an error that names the file.
TEST(ConfigRobustness, TruncatedAndMutatedFilesNeverCrash) {
  const std::string text = ReadFile(kSource + "/tests/config/testdata/patroni.yml");
  ASSERT_GT(text.size(), 1000u);
  int loaded = 0;
  int failed = 0;
  auto check = [&](const std::string& yaml) {
    Result<LoadedConfig> r = LoadConfigString(yaml, "m.yml");
    if (r) {
      ++loaded;
    } else {
      ++failed;
      ASSERT_THAT(r.error().message, ::testing::StartsWith("m.yml")) << yaml;
    }
  };
  // Strides keep this fast (also under ASan): yaml-cpp takes ~0.5 ms per load of this file.
  for (size_t n = 0; n <= text.size(); n += 23) check(text.substr(0, n));
  for (size_t i = 0; i < text.size(); i += 17) {
    for (char c : {'{', ':', '\t', '*'}) {
      std::string mutated = text;
      mutated[i] = c;
      check(mutated);
    }
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(failed, 0);
}

TEST(ConfigRobustness, MutatedDynamicJsonNeverCrashes) {
  DynamicConfig c;
  c.postgresql.parameters = {{"max_connections", "100"}};
  c.postgresql.pg_hba = {"local all all trust"};
  const std::string json = c.ToJson();
  for (size_t i = 0; i < json.size(); i += 2) {
    for (char ch : {'{', '"', '1', 'x'}) {
      std::string mutated = json;
      mutated[i] = ch;
      Result<LoadedDynamicConfig> r = DynamicConfigFromJson(mutated, "j");
      if (!r) {
        ASSERT_THAT(r.error().message, ::testing::StartsWith("j")) << mutated;
      }
    }
  }
}

}  // namespace
}  // namespace pgwarden::config

namespace pgwarden::config {
namespace {

// ---- PATRONI_* environment variables -------------------------------------------------------

TEST(ConfigEnvironment, VariablesOverrideTheFile) {
  Environment env = {{"PATRONI_NAME", "node7"},
                     {"PATRONI_POSTGRESQL_DATA_DIR", "/srv/pg/node7"},
                     {"PATRONI_ETCD3_HOSTS", "'10.0.0.1:2379','10.0.0.2:2379'"},
                     {"PATRONI_SUPERUSER_PASSWORD", "from-env"},
                     {"PATRONI_RESTAPI_USERNAME", "admin"},
                     {"PATRONI_RESTAPI_PASSWORD", "pw"},
                     {"PATRONI_SOMETHING_ELSE", "ignored"}};
  Result<LoadedConfig> r = LoadConfigString(kMinimal, "node.yml", env);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_THAT(r->warnings, ::testing::IsEmpty());
  const Config& c = r->config;
  EXPECT_EQ(c.name, "node7");
  EXPECT_EQ(c.postgresql.data_dir, "/srv/pg/node7");
  EXPECT_EQ(c.etcd.hosts, (std::vector<HostPort>{{"10.0.0.1", 2379}, {"10.0.0.2", 2379}}));
  EXPECT_EQ(c.postgresql.authentication.superuser, (Credentials{"postgres", "from-env"}));
  ASSERT_TRUE(c.restapi.authentication.has_value());
  EXPECT_EQ(c.restapi.authentication->username, "admin");
  EXPECT_EQ(c.scope, "demo");  // untouched keys keep the file's values
}

TEST(ConfigEnvironment, EnvironmentAloneIsAConfig) {
  Environment env = {{"PATRONI_SCOPE", "demo"},
                     {"PATRONI_NAME", "n1"},
                     {"PATRONI_RESTAPI_LISTEN", "127.0.0.1:8008"},
                     {"PATRONI_ETCD_HOSTS", "127.0.0.1:2379"},  // v2 spelling, same keys
                     {"PATRONI_POSTGRESQL_LISTEN", "127.0.0.1:5432"},
                     {"PATRONI_POSTGRESQL_DATA_DIR", "/d"}};
  Result<LoadedConfig> r = LoadConfigString("", "node.yml", env);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->config.etcd.hosts.size(), 1u);
  EXPECT_EQ(r->config.postgresql.connect_address, (HostPort{"127.0.0.1", 5432}));
}

TEST(ConfigEnvironment, ErrorsNameTheVariable) {
  Environment env = {{"PATRONI_RESTAPI_LISTEN", "nowhere"}, {"PATRONI_LOG_FILE_NUM", "many"}};
  Result<LoadedConfig> r = LoadConfigString(kMinimal, "node.yml", env);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message,
            "node.yml: restapi.listen (from $PATRONI_RESTAPI_LISTEN): expected host:port (IPv6 in "
            "brackets: [::1]:5432), got `nowhere`\n"
            "node.yml: log.file_num (from $PATRONI_LOG_FILE_NUM): expected an integer, got "
            "`many`");
}

TEST(ConfigEnvironment, ProcessEnvironmentKeepsOnlyPatroniVariables) {
  ::setenv("PATRONI_SCOPE", "from-process", 1);
  Environment env = ProcessEnvironment();
  ::unsetenv("PATRONI_SCOPE");
  EXPECT_EQ(env.at("PATRONI_SCOPE"), "from-process");
  for (const auto& [name, value] : env) EXPECT_EQ(name.rfind("PATRONI_", 0), 0u) << name;
}

}  // namespace
}  // namespace pgwarden::config
