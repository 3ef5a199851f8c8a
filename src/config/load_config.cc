// The YAML file -> Config: section readers, derived defaults, the file loader and
// `pgwarden check-config`.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ostream>

#include "config/config.h"
#include "config/environment.h"
#include "config/reader.h"
#include "config/sections.h"
#include "config/units.h"

namespace pgwarden::config {
namespace internal {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;

// Top-level sections of Patroni's file that pgwarden does not implement (other DCSs included).
constexpr std::string_view kUnimplementedTop[] = {
    "ctl", "consul", "zookeeper", "exhibitor", "kubernetes", "raft", "citus",
};
constexpr std::string_view kUnimplementedRestapi[] = {
    "keyfile_password",
    "cafile",
    "ciphers",
    "verify_client",
    "allowlist",
    "allowlist_include_members",
    "http_extra_headers",
    "https_extra_headers",
    "request_queue_size",
    "server_tokens",
};
constexpr std::string_view kUnimplementedEtcd[] = {"url", "proxy", "srv", "srv_suffix",
                                                   "use_proxies"};
constexpr std::string_view kUnimplementedPostgresql[] = {
    "callbacks",
    "create_replica_methods",
    "basebackup",
    "bin_name",
    "custom_conf",
    "pg_ident",
    "pg_ctl_timeout",
    "proxy_address",
    "recovery_conf",
    "replica_method",
    "pre_promote",
    "before_stop",
    "use_unix_socket_repl",
    "parameters_primary",
    "parameters_replica",
    "parameters_standby_leader",
    "pg_hba_primary",
    "pg_hba_replica",
    "pg_hba_standby_leader",
    // Well-known replica creation methods' own sections.
    "pgbackrest",
    "wal_e",
    "wal_g",
    "barman",
    "barman_recover",
};
constexpr std::string_view kUnimplementedAuth[] = {
    "sslmode", "sslkey",    "sslpassword", "sslcert",         "sslrootcert",
    "sslcrl",  "sslcrldir", "gssencmode",  "channel_binding",
};
constexpr std::string_view kUnimplementedLog[] = {
    "traceback_level", "format",  "dateformat",
    "max_queue_size",  "loggers", "type",
    "static_fields",   "mode",    "deduplicate_heartbeat_logs",
};
constexpr std::string_view kKnownTags[] = {"nofailover", "noloadbalance", "nosync",
                                           "clonefrom",  "replicatefrom", "failover_priority",
                                           "nostream"};

void ReadCredentials(MapReader& m, Credentials* out) {
  m.String("username", &out->username);
  m.String("password", &out->password);
}

void ReadHostPort(MapReader& m, std::string_view key, HostPort* out) {
  const Node* n = m.Get(key);
  if (n == nullptr) return;
  std::optional<std::string> text = MapReader::AsString(m.diag(), *n, m.PathOf(key));
  if (!text) return;
  std::optional<HostPort> hp = ParseHostPort(*text);
  if (!hp) {
    m.diag().Error(n->mark, m.PathOf(key),
                   "expected host:port (IPv6 in brackets: [::1]:5432), got `" + *text + "`");
    return;
  }
  *out = *hp;
}

// "127.0.0.1,10.0.0.5:5432": hosts, then the port after the last one.
void ReadListen(MapReader& m, ListenAddress* out) {
  const Node* n = m.Get("listen");
  if (n == nullptr) return;
  std::optional<std::string> text = MapReader::AsString(m.diag(), *n, m.PathOf("listen"));
  if (!text) return;
  std::string_view t = *text;
  size_t last_comma = t.rfind(',');
  std::string_view last = last_comma == std::string_view::npos ? t : t.substr(last_comma + 1);
  std::string_view firsts =
      last_comma == std::string_view::npos ? std::string_view() : t.substr(0, last_comma);
  while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
  // Wildcards: "*:5432" and "0.0.0.0:5432" parse as hosts like any other.
  std::optional<HostPort> hp = ParseHostPort(last);
  if (!hp) {
    m.diag().Error(n->mark, m.PathOf("listen"),
                   "expected host[,host...]:port (e.g. `127.0.0.1:5432` or "
                   "`127.0.0.1,10.0.0.5:5432`), got `" +
                       *text + "`");
    return;
  }
  ListenAddress la;
  size_t pos = 0;
  while (pos < firsts.size()) {
    size_t comma = firsts.find(',', pos);
    std::string_view h =
        firsts.substr(pos, comma == std::string_view::npos ? firsts.npos : comma - pos);
    while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
    while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    if (h.empty()) {
      m.diag().Error(n->mark, m.PathOf("listen"), "empty host in `" + *text + "`");
      return;
    }
    la.hosts.emplace_back(h);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  la.hosts.push_back(hp->host);
  la.port = hp->port;
  *out = std::move(la);
}

void ReadRestapi(MapReader& root, Config* c) {
  MapReader m = root.Child("restapi");
  ReadHostPort(m, "listen", &c->restapi.listen);
  ReadHostPort(m, "connect_address", &c->restapi.connect_address);
  {
    MapReader auth = m.Child("authentication");
    if (auth.present()) {
      Credentials cred;
      ReadCredentials(auth, &cred);
      c->restapi.authentication = cred;
    }
    auth.Finish();
  }
  m.String("certfile", &c->restapi.certfile);
  m.String("keyfile", &c->restapi.keyfile);
  for (std::string_view key : kUnimplementedRestapi) m.Unimplemented(key);
  m.Finish();
}

void ReadEtcdHosts(MapReader& m, EtcdConfig* etcd, std::optional<EtcdProtocol>* scheme_seen) {
  struct Item {
    std::string text;
    Mark mark;
    std::string path;
  };
  std::vector<Item> items;
  if (const Node* n = m.Get("host")) {
    if (std::optional<std::string> t = MapReader::AsString(m.diag(), *n, m.PathOf("host"))) {
      items.push_back({*t, n->mark, m.PathOf("host")});
    }
  }
  if (const Node* n = m.Get("hosts")) {
    if (n->kind == Node::Kind::kSequence) {
      for (size_t i = 0; i < n->items.size(); ++i) {
        std::string path = m.PathOf("hosts") + "[" + std::to_string(i) + "]";
        if (std::optional<std::string> t = MapReader::AsString(m.diag(), n->items[i], path)) {
          items.push_back({*t, n->items[i].mark, path});
        }
      }
    } else if (std::optional<std::string> t =
                   MapReader::AsString(m.diag(), *n, m.PathOf("hosts"))) {
      // Patroni also takes "host1:2379,host2:2379".
      size_t pos = 0;
      while (pos <= t->size()) {
        size_t comma = t->find(',', pos);
        std::string part =
            t->substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        while (!part.empty() && part.front() == ' ') part.erase(part.begin());
        while (!part.empty() && part.back() == ' ') part.pop_back();
        if (!part.empty()) items.push_back({part, n->mark, m.PathOf("hosts")});
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    }
  }
  for (Item& item : items) {
    std::string_view text = item.text;
    std::optional<EtcdProtocol> scheme;
    if (text.rfind("http://", 0) == 0) {
      scheme = EtcdProtocol::kHttp;
      text.remove_prefix(7);
    } else if (text.rfind("https://", 0) == 0) {
      scheme = EtcdProtocol::kHttps;
      text.remove_prefix(8);
    }
    if (!text.empty() && text.back() == '/') text.remove_suffix(1);
    std::optional<HostPort> hp = ParseHostPort(text);
    if (!hp && text.find(':') == std::string_view::npos && !text.empty()) {
      hp = ParseHostPort(std::string(text) + ":2379");  // etcd's client port by default
    }
    if (!hp) {
      m.diag().Error(item.mark, item.path,
                     "expected host:port of an etcd member, got `" + item.text + "`");
      continue;
    }
    if (scheme) {
      if (*scheme_seen && **scheme_seen != *scheme) {
        m.diag().Error(item.mark, item.path, "mixes http:// and https:// etcd hosts");
      }
      *scheme_seen = scheme;
    }
    etcd->hosts.push_back(*hp);
  }
}

}  // namespace

void ReadEtcdSection(MapReader& root, EtcdConfig* etcd) {
  const bool has_v3 = root.Has("etcd3");
  const bool has_v2 = root.Has("etcd");
  root.Known("etcd");
  root.Known("etcd3");
  if (has_v3 && has_v2) {
    root.Get("etcd");
    root.diag().Error(root.KeyMark("etcd"), "etcd",
                      "both `etcd` and `etcd3` are given; pgwarden talks to etcd through its v3 "
                      "API only and reads `etcd3`: remove the `etcd` section");
  }
  const char* key = has_v3 || !has_v2 ? "etcd3" : "etcd";
  MapReader m = root.Child(key);
  if (!has_v3 && has_v2) {
    root.diag().Warning(root.KeyMark("etcd"), "etcd",
                        "read as `etcd3`: pgwarden talks to etcd through its v3 API only (keys "
                        "written through the v2 API are invisible to it); rename the section "
                        "to `etcd3`");
  }
  std::optional<EtcdProtocol> scheme_seen;
  ReadEtcdHosts(m, etcd, &scheme_seen);
  if (const Node* n = m.Get("protocol")) {
    if (std::optional<std::string> t = MapReader::AsString(m.diag(), *n, m.PathOf("protocol"))) {
      if (*t == "http") {
        etcd->protocol = EtcdProtocol::kHttp;
      } else if (*t == "https") {
        etcd->protocol = EtcdProtocol::kHttps;
      } else {
        m.diag().Error(n->mark, m.PathOf("protocol"),
                       "expected `http` or `https`, got `" + *t + "`");
      }
      if (scheme_seen && *scheme_seen != etcd->protocol) {
        m.diag().Error(n->mark, m.PathOf("protocol"),
                       "contradicts the scheme written in the hosts");
      }
    }
  } else if (scheme_seen) {
    etcd->protocol = *scheme_seen;
  }
  m.String("username", &etcd->username);
  m.String("password", &etcd->password);
  m.String("cacert", &etcd->cacert);
  m.String("cert", &etcd->cert);
  m.String("key", &etcd->key);
  for (std::string_view k : kUnimplementedEtcd) m.Unimplemented(k);
  m.Finish();
}

namespace {

void ReadInitdb(MapReader& m, std::vector<InitdbOption>* out) {
  const Node* n = m.Get("initdb");
  if (n == nullptr) return;
  Diagnostics& diag = m.diag();
  const std::string base = m.PathOf("initdb");
  auto read_pair = [&](const MapEntry& e, const std::string& path) {
    InitdbOption opt{e.key, std::nullopt};
    if (e.value->kind != Node::Kind::kNull) {
      std::optional<std::string> v = MapReader::AsString(diag, *e.value, path);
      if (!v) return;
      opt.value = *v;
    }
    out->push_back(std::move(opt));
  };
  if (n->kind == Node::Kind::kMap) {  // Patroni also takes {encoding: UTF8, ...}
    for (const MapEntry& e : n->entries) read_pair(e, base + "." + e.key);
    return;
  }
  if (n->kind != Node::Kind::kSequence) {
    diag.Error(n->mark, base,
               "expected a list of initdb options (`- data-checksums`, `- encoding: UTF8`), got " +
                   std::string(KindName(n->kind)));
    return;
  }
  for (size_t i = 0; i < n->items.size(); ++i) {
    const Node& item = n->items[i];
    std::string path = base + "[" + std::to_string(i) + "]";
    diag.RecordMark(path, item.mark);
    if (item.kind == Node::Kind::kScalar) {
      out->push_back(InitdbOption{item.scalar, std::nullopt});
    } else if (item.kind == Node::Kind::kMap && item.entries.size() == 1) {
      read_pair(item.entries.front(), path);
    } else {
      diag.Error(item.mark, path,
                 "each initdb option is a name (`- data-checksums`) or a single `name: value` "
                 "pair (`- encoding: UTF8`), got " +
                     std::string(item.kind == Node::Kind::kMap ? "a map with several keys"
                                                               : KindName(item.kind)));
    }
  }
}

void ReadBootstrap(MapReader& root, Config* c) {
  MapReader m = root.Child("bootstrap");
  {
    MapReader dcs = m.Child("dcs");
    ReadDynamicConfig(dcs, &c->bootstrap.dcs);
    dcs.Finish();
  }
  ReadInitdb(m, &c->bootstrap.initdb);
  m.StringList("pg_hba", &c->bootstrap.pg_hba);
  if (m.Has("post_bootstrap") && m.Has("post_init")) {
    m.Get("post_init");
    m.diag().Error(m.KeyMark("post_init"), m.PathOf("post_init"),
                   "give only one of `post_bootstrap` and `post_init` (they are the same)");
  }
  if (!m.String("post_bootstrap", &c->bootstrap.post_bootstrap)) {
    m.String("post_init", &c->bootstrap.post_bootstrap);
  }

  if (const Node* users = m.Get("users")) {
    m.diag().Warning(m.KeyMark("users"), m.PathOf("users"),
                     "deprecated (Patroni removed it): create roles in a post_bootstrap script; "
                     "pgwarden still creates these after initdb");
    MapReader u(m.diag(), users, m.PathOf("users"), m.KeyMark("users"));
    if (u.present()) {
      for (const MapEntry& e : users->entries) {
        BootstrapUser user;
        user.name = e.key;
        MapReader one = u.Child(e.key);
        one.String("password", &user.password);
        one.StringList("options", &user.options);
        one.Finish();
        c->bootstrap.users.push_back(std::move(user));
      }
    }
  }
  // Custom bootstrap methods (`method: foo` plus a `foo:` section) are not implemented.
  m.Unimplemented("method");
  if (const Node* method = m.Get("method")) {
    if (method->kind == Node::Kind::kScalar && method->scalar != "initdb") {
      m.Unimplemented(method->scalar);
    }
  }
  m.Finish();
}

void ReadPostgresql(MapReader& root, Config* c) {
  MapReader m = root.Child("postgresql");
  PostgresqlConfig& pg = c->postgresql;
  ReadListen(m, &pg.listen);
  ReadHostPort(m, "connect_address", &pg.connect_address);
  m.String("data_dir", &pg.data_dir);
  m.String("bin_dir", &pg.bin_dir);
  m.String("config_dir", &pg.config_dir);
  m.String("pgpass", &pg.pgpass);
  {
    MapReader auth = m.Child("authentication");
    auto read_role = [&auth](std::string_view role, Credentials* out) {
      MapReader r = auth.Child(role);
      ReadCredentials(r, out);
      for (std::string_view k : kUnimplementedAuth) r.Unimplemented(k);
      r.Finish();
      return r.present();
    };
    read_role("superuser", &pg.authentication.superuser);
    read_role("replication", &pg.authentication.replication);
    Credentials rewind;
    if (read_role("rewind", &rewind)) pg.authentication.rewind = rewind;
    auth.Finish();
  }
  if (m.StringMap("parameters", &pg.parameters))
    WarnManagedParameters(m, "parameters", pg.parameters);
  m.StringList("pg_hba", &pg.pg_hba);
  m.Bool("use_pg_rewind", &pg.use_pg_rewind);
  m.Bool("use_slots", &pg.use_slots);
  m.Bool("use_unix_socket", &pg.use_unix_socket);
  m.Bool("remove_data_directory_on_rewind_failure", &pg.remove_data_directory_on_rewind_failure);
  m.Bool("remove_data_directory_on_diverged_timelines",
         &pg.remove_data_directory_on_diverged_timelines);
  for (std::string_view k : kUnimplementedPostgresql) m.Unimplemented(k);
  // Each custom replica creation method has a section of its own name.
  if (const Node* methods = m.Get("create_replica_methods")) {
    if (methods->kind == Node::Kind::kSequence) {
      for (const Node& item : methods->items) {
        if (item.kind == Node::Kind::kScalar && item.scalar != "basebackup") {
          m.Unimplemented(item.scalar);
        }
      }
    }
  }
  m.Finish();
}

void ReadTags(MapReader& root, Config* c) {
  MapReader m = root.Child("tags");
  Tags& t = c->tags;
  m.Bool("nofailover", &t.nofailover);
  m.Bool("noloadbalance", &t.noloadbalance);
  m.Bool("nosync", &t.nosync);
  m.Bool("clonefrom", &t.clonefrom);
  m.Bool("nostream", &t.nostream);
  m.String("replicatefrom", &t.replicatefrom);
  int64_t priority = 0;
  if (m.Int("failover_priority", 0, 1'000'000, &priority)) {
    t.failover_priority = static_cast<int>(priority);
  }
  const Node* node = root.Get("tags");
  if (node == nullptr || node->kind != Node::Kind::kMap) return;
  std::set<std::string> known(std::begin(kKnownTags), std::end(kKnownTags));
  for (const MapEntry& e : node->entries) {
    if (known.count(e.key) != 0) continue;
    std::string path = m.PathOf(e.key);
    m.Known(e.key);
    root.diag().RecordMark(path, e.key_mark);
    if (e.value->kind == Node::Kind::kNull) {
      t.user[e.key] = "";
    } else if (std::optional<std::string> v = MapReader::AsString(root.diag(), *e.value, path)) {
      t.user[e.key] = *v;
    }
    std::string near = SuggestKey(e.key, known);
    if (!near.empty()) {
      root.diag().Warning(e.key_mark, path,
                          "kept as a user tag; did you mean pgwarden's tag `" + near + "`?");
    }
  }
  m.Finish();
}

}  // namespace

void ReadLogSection(MapReader& root, LogConfig* log) {
  MapReader m = root.Child("log");
  if (const Node* n = m.Get("level")) {
    if (std::optional<std::string> t = MapReader::AsString(m.diag(), *n, m.PathOf("level"))) {
      std::string v;
      for (char ch : *t) v += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (v == "TRACE") {
        log->level = LogLevel::kTrace;
      } else if (v == "DEBUG") {
        log->level = LogLevel::kDebug;
      } else if (v == "INFO") {
        log->level = LogLevel::kInfo;
      } else if (v == "WARNING" || v == "WARN") {
        log->level = LogLevel::kWarning;
      } else if (v == "ERROR") {
        log->level = LogLevel::kError;
      } else if (v == "CRITICAL" || v == "FATAL") {
        log->level = LogLevel::kCritical;
      } else {
        m.diag().Error(n->mark, m.PathOf("level"),
                       "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got `" + *t + "`");
      }
    }
  }
  m.String("dir", &log->dir);
  int64_t file_num = 0;
  if (m.Int("file_num", 1, 1000, &file_num)) log->file_num = static_cast<int>(file_num);
  m.ByteSize("file_size", &log->file_size);
  for (std::string_view k : kUnimplementedLog) m.Unimplemented(k);
  m.Finish();
}

namespace {

void ReadPgwarden(MapReader& root, Config* c) {
  MapReader m = root.Child("pgwarden");
  m.String("os_user", &c->pgwarden.os_user);
  m.Duration("keepalive_interval", &c->pgwarden.keepalive_interval);
  m.Duration("keepalive_timeout", &c->pgwarden.keepalive_timeout);
  m.Finish();
}

void ReadWatchdog(MapReader& root, Config* c) {
  MapReader m = root.Child("watchdog");
  if (const Node* n = m.Get("mode")) {
    if (std::optional<std::string> t = MapReader::AsString(m.diag(), *n, m.PathOf("mode"))) {
      std::string v;
      for (char ch : *t) v += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (v == "off" || v == "false" || v == "no") {  // YAML 1.1 reads `off` as false
        c->watchdog = WatchdogMode::kOff;
      } else if (v == "automatic") {
        c->watchdog = WatchdogMode::kAutomatic;
      } else if (v == "required") {
        c->watchdog = WatchdogMode::kRequired;
      } else {
        m.diag().Error(n->mark, m.PathOf("mode"),
                       "expected one of off, automatic, required, got `" + *t + "`");
      }
    }
  }
  // /dev/watchdog settings: pgwarden's watchdog is a process (docs/watchdog.md).
  m.Unimplemented({"device", "driver", "safety_margin"});
  m.Finish();
}

void ReadConfig(MapReader& root, Config* c) {
  root.String("scope", &c->scope);
  ReadNamespace(root, &c->dcs_namespace);
  root.String("name", &c->name);
  ReadRestapi(root, c);
  ReadEtcdSection(root, &c->etcd);
  ReadBootstrap(root, c);
  ReadPostgresql(root, c);
  ReadTags(root, c);
  ReadLogSection(root, &c->log);
  ReadWatchdog(root, c);
  ReadPgwarden(root, c);
  for (std::string_view k : kUnimplementedTop) root.Unimplemented(k);
  root.Finish();
}

bool IsWildcard(const std::string& host) {
  return host.empty() || host == "*" || host == "0.0.0.0" || host == "::";
}

// Defaults that depend on other keys.
void ApplyDerivedDefaults(Config* c) {
  RestApiConfig& api = c->restapi;
  if (api.connect_address.port == 0 && api.listen.port != 0 && !IsWildcard(api.listen.host)) {
    api.connect_address = api.listen;
  }
  PostgresqlConfig& pg = c->postgresql;
  if (pg.listen.port == 0 && pg.connect_address.port != 0) {
    pg.listen = ListenAddress{{pg.connect_address.host}, pg.connect_address.port};
  }
  if (pg.connect_address.port == 0 && pg.listen.port != 0 && !IsWildcard(pg.listen.hosts.front())) {
    pg.connect_address = HostPort{pg.listen.hosts.front(), pg.listen.port};
  }
  if (pg.config_dir.empty()) pg.config_dir = pg.data_dir;
  if (pg.pgpass.empty() && !c->name.empty()) pg.pgpass = "/tmp/pgpass-" + c->name;
}

struct Outcome {
  std::optional<Config> config;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

Outcome LoadText(std::string_view text, std::string_view source, const Environment& env) {
  Outcome out;
  Result<Node> root = ParseYaml(text, source);
  if (!root) {
    out.errors.push_back(root.error().message);
    return out;
  }
  Diagnostics diag(std::string(source), Mark{1, 1});
  if (!env.empty()) ApplyEnvironment(env, &*root, &diag);
  if (root->kind == Node::Kind::kNull) {
    out.errors.push_back(std::string(source) +
                         ": the file is empty; expected a map of settings (scope, name, "
                         "restapi, etcd3, postgresql, ...)");
    return out;
  }
  Config config;
  {
    MapReader m(diag, &*root, "", Mark{1, 1});
    if (m.present()) ReadConfig(m, &config);
  }
  if (root->kind == Node::Kind::kMap) {
    ApplyDerivedDefaults(&config);
    diag.AddProblems(Validate(config));
  }
  out.warnings = diag.FormattedWarnings();
  if (diag.has_errors()) {
    out.errors = diag.FormattedErrors();
  } else {
    out.config = std::move(config);
  }
  return out;
}

Outcome LoadFile(const std::string& path, const Environment& env, ErrorCode* code) {
  Outcome out;
  std::string text;
  std::string error;
  if (!ReadConfigFileText(path, &text, &error, code)) {
    out.errors.push_back(error);
    return out;
  }
  return LoadText(text, path, env);
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) {
    if (!out.empty()) out += "\n";
    out += line;
  }
  return out;
}

Result<LoadedConfig> ToResult(Outcome out, ErrorCode code) {
  if (!out.config) return Fail(code, Join(out.errors));
  return LoadedConfig{std::move(*out.config), std::move(out.warnings)};
}

}  // namespace

void ReadNamespace(MapReader& root, std::string* ns) {
  if (root.String("namespace", ns)) {
    if (!ns->empty() && ns->front() != '/') ns->insert(ns->begin(), '/');
    while (ns->size() > 1 && ns->back() == '/') ns->pop_back();
  }
}

bool ReadConfigFileText(const std::string& path, std::string* text, std::string* error,
                        ErrorCode* code) {
  *code = ErrorCode::kInvalidArgument;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) *code = ErrorCode::kNotFound;
    *error = path + ": cannot read the config file: " + std::strerror(err);
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    *error = path + ": cannot read the config file: it is a directory";
    return false;
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    *error = path + ": cannot read the config file: " + std::strerror(errno);
    return false;
  }
  text->clear();
  char buf[8192];
  size_t n = 0;
  bool too_big = false;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text->append(buf, n);
    if (text->size() > kMaxConfigBytes) {
      too_big = true;
      break;
    }
  }
  bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) {
    *error = path + ": cannot read the config file: read error";
    return false;
  }
  if (too_big) {
    *error = path + ": the config file is larger than 1 MiB; is it the right file?";
    return false;
  }
  return true;
}

}  // namespace internal

Result<LoadedConfig> LoadConfigString(std::string_view text, std::string_view source_name,
                                      const Environment& env) {
  return internal::ToResult(internal::LoadText(text, source_name, env),
                            ErrorCode::kInvalidArgument);
}

Result<LoadedConfig> LoadConfigFile(const std::string& path, const Environment& env) {
  ErrorCode code = ErrorCode::kInvalidArgument;
  internal::Outcome out = internal::LoadFile(path, env, &code);
  return internal::ToResult(std::move(out), code);
}

Result<LoadedConfig> LoadConfigFile(const std::string& path) {
  return LoadConfigFile(path, ProcessEnvironment());
}

int CheckConfigCommand(const std::string& path, std::ostream& out, std::ostream& err) {
  ErrorCode code = ErrorCode::kInvalidArgument;
  internal::Outcome outcome = internal::LoadFile(path, ProcessEnvironment(), &code);
  for (const std::string& w : outcome.warnings) err << "warning: " << w << "\n";
  if (!outcome.config) {
    for (const std::string& e : outcome.errors) err << "error: " << e << "\n";
    err << path << ": " << outcome.errors.size()
        << (outcome.errors.size() == 1 ? " problem" : " problems") << " found\n";
    return 2;
  }
  const Config& c = *outcome.config;
  const HaTiming t = c.Timing();
  out << path << ": OK (cluster `" << c.scope << "`, member `" << c.name << "`, "
      << c.etcd.hosts.size() << " etcd host" << (c.etcd.hosts.size() == 1 ? "" : "s") << ", ttl "
      << FormatDuration(t.ttl) << ", keep-alive every " << FormatDuration(t.keepalive_interval)
      << ")\n";
  return 0;
}

}  // namespace pgwarden::config
