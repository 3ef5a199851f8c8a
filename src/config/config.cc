// Config's small value helpers and the semantic validation (Validate).
#include "config/config.h"

#include <charconv>

#include "config/sections.h"
#include "config/units.h"

namespace pgwarden::config {
namespace {

std::optional<uint16_t> ParsePort(std::string_view text) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

bool HasSpace(std::string_view s) { return s.find_first_of(" \t\r\n") != std::string_view::npos; }

}  // namespace

namespace internal {

void ValidateScopeAndNamespace(const std::string& scope, const std::string& dcs_namespace,
                               std::vector<ConfigProblem>* problems) {
  if (scope.empty()) {
    problems->push_back({"scope", "required key is missing: the cluster's name"});
  } else if (scope.find('/') != std::string::npos || HasSpace(scope)) {
    problems->push_back(
        {"scope",
         "must not contain `/` or blanks (it is part of etcd key names), got `" + scope + "`"});
  }
  if (dcs_namespace.empty() || dcs_namespace == "/" || HasSpace(dcs_namespace)) {
    problems->push_back(
        {"namespace", "must be a path such as `/service`, got `" + dcs_namespace + "`"});
  }
}

void ValidateEtcd(const EtcdConfig& etcd, std::vector<ConfigProblem>* problems) {
  if (etcd.hosts.empty()) {
    problems->push_back({"etcd3.hosts",
                         "required key is missing: at least one etcd host (etcd3.hosts or "
                         "etcd3.host)"});
  }
  if (!etcd.username.empty() && etcd.password.empty()) {
    problems->push_back({"etcd3.password", "required when etcd3.username is given"});
  }
  if (etcd.cert.empty() && !etcd.key.empty()) {
    problems->push_back({"etcd3.cert", "required when etcd3.key is given"});
  }
}

void ValidateLog(const LogConfig& log, std::vector<ConfigProblem>* problems) {
  if (log.file_num < 1) problems->push_back({"log.file_num", "must be at least 1"});
  if (log.file_size < 4096) {
    problems->push_back({"log.file_size", "must be at least 4096 bytes"});
  }
}

}  // namespace internal

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> ParseHostPort(std::string_view text) {
  HostPort hp;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    hp.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return std::nullopt;  // bare IPv6: use [..]
    port = text.substr(colon + 1);
  }
  if (hp.host.empty() || HasSpace(hp.host) || hp.host.find(',') != std::string::npos) {
    return std::nullopt;
  }
  std::optional<uint16_t> p = ParsePort(port);
  if (!p) return std::nullopt;
  hp.port = *p;
  return hp;
}

std::string ListenAddress::ToString() const {
  std::string out;
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (i > 0) out += ",";
    out += hosts[i].find(':') != std::string::npos ? "[" + hosts[i] + "]" : hosts[i];
  }
  return out + ":" + std::to_string(port);
}

std::string InitdbOption::ToArgument() const {
  if (value) return "--" + name + "=" + *value;
  return "--" + name;
}

std::string Config::KeyPrefix() const { return dcs_namespace + "/" + scope + "/"; }

HaTiming Config::Timing() const {
  const DynamicConfig& d = bootstrap.dcs;
  return HaTiming::Resolve(d.ttl, d.loop_wait, d.retry_timeout, pgwarden.keepalive_interval,
                           pgwarden.keepalive_timeout);
}

Result<HaTiming> ResolveHaTiming(const DynamicConfig& d, const PgwardenSettings& p) {
  HaTiming t = HaTiming::Resolve(d.ttl, d.loop_wait, d.retry_timeout, p.keepalive_interval,
                                 p.keepalive_timeout);
  if (std::optional<std::string> bad = t.CheckKeepaliveRule()) {
    return Fail(ErrorCode::kInvalidArgument, *bad);
  }
  return t;
}

std::string_view ToString(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "TRACE";
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kCritical:
      return "CRITICAL";
  }
  return "?";
}

std::vector<ConfigProblem> Validate(const Config& c) {
  std::vector<ConfigProblem> problems;
  auto add = [&problems](std::string path, std::string message) {
    problems.push_back({std::move(path), std::move(message)});
  };

  // Identity: these name etcd keys, so no '/' (it would nest keys) and no blanks.
  auto check_name = [&](const std::string& path, const std::string& value, const char* what) {
    if (value.empty()) {
      add(path, std::string("required key is missing: ") + what);
    } else if (value.find('/') != std::string::npos || HasSpace(value)) {
      add(path,
          "must not contain `/` or blanks (it is part of etcd key names), got `" + value + "`");
    }
  };
  internal::ValidateScopeAndNamespace(c.scope, c.dcs_namespace, &problems);
  check_name("name", c.name, "this member's name, unique in the cluster");

  // REST API.
  if (c.restapi.listen.port == 0) {
    add("restapi.listen", "required key is missing: the address:port the REST API listens on");
  } else if (c.restapi.connect_address.port == 0) {
    add("restapi.connect_address", "required when restapi.listen is a wildcard address (" +
                                       c.restapi.listen.ToString() +
                                       "): the address:port other members reach this REST API at");
  }
  if (c.restapi.authentication && c.restapi.authentication->username.empty()) {
    add("restapi.authentication.username", "required when restapi.authentication is given");
  }
  if (c.restapi.certfile.empty() != c.restapi.keyfile.empty()) {
    add(c.restapi.certfile.empty() ? "restapi.certfile" : "restapi.keyfile",
        "restapi.certfile and restapi.keyfile go together");
  }

  // etcd.
  internal::ValidateEtcd(c.etcd, &problems);

  // PostgreSQL.
  const PostgresqlConfig& pg = c.postgresql;
  if (pg.data_dir.empty()) {
    add("postgresql.data_dir", "required key is missing: the PostgreSQL data directory");
  }
  if (pg.listen.port == 0 && pg.connect_address.port == 0) {
    add("postgresql.listen",
        "required key is missing: postgresql.listen or postgresql.connect_address");
  } else if (pg.connect_address.port == 0) {
    add("postgresql.connect_address",
        "required when postgresql.listen is a wildcard address (" + pg.listen.ToString() +
            "): the address:port other members and clients reach this PostgreSQL at");
  }
  if (pg.authentication.superuser.username.empty()) {
    add("postgresql.authentication.superuser.username", "must not be empty");
  }
  if (pg.authentication.replication.username.empty()) {
    add("postgresql.authentication.replication.username", "must not be empty");
  }
  if (pg.authentication.rewind && pg.authentication.rewind->username.empty()) {
    add("postgresql.authentication.rewind.username",
        "required when postgresql.authentication.rewind is given");
  }
  for (const auto& [name, value] : pg.parameters) {
    if (name.empty()) add("postgresql.parameters", "empty parameter name");
  }

  // Bootstrap.
  for (const ConfigProblem& p : ValidateDynamicConfig(c.bootstrap.dcs)) {
    add("bootstrap.dcs." + p.path, p.message);
  }
  for (size_t i = 0; i < c.bootstrap.initdb.size(); ++i) {
    const std::string& opt = c.bootstrap.initdb[i].name;
    std::string path = "bootstrap.initdb[" + std::to_string(i) + "]";
    if (opt.empty() || opt.front() == '-' || HasSpace(opt)) {
      add(path,
          "an initdb option name without dashes or blanks (`data-checksums`), got `" + opt + "`");
    } else if (opt == "pgdata" || opt == "D") {
      add(path, "pgwarden passes the data directory itself (postgresql.data_dir)");
    }
  }

  // Tags.
  if (c.tags.failover_priority && *c.tags.failover_priority < 0) {
    add("tags.failover_priority", "must not be negative");
  }
  if (c.tags.nofailover && c.tags.failover_priority.value_or(0) > 0) {
    add("tags.failover_priority",
        "contradicts `nofailover: true`; give only one of nofailover and failover_priority");
  }
  if (c.tags.replicatefrom && *c.tags.replicatefrom == c.name && !c.name.empty()) {
    add("tags.replicatefrom", "a member cannot replicate from itself");
  }

  // Log.
  internal::ValidateLog(c.log, &problems);

  // pgwarden and the timing rule.
  if (c.pgwarden.os_user.empty()) add("pgwarden.os_user", "must not be empty");
  bool keepalive_ok = true;
  if (c.pgwarden.keepalive_interval &&
      *c.pgwarden.keepalive_interval < HaTiming::kMinKeepaliveInterval) {
    add("pgwarden.keepalive_interval",
        "must be at least " + FormatDuration(HaTiming::kMinKeepaliveInterval) + ", got " +
            FormatDuration(*c.pgwarden.keepalive_interval));
    keepalive_ok = false;
  }
  if (c.pgwarden.keepalive_timeout &&
      *c.pgwarden.keepalive_timeout < HaTiming::kMinKeepaliveTimeout) {
    add("pgwarden.keepalive_timeout", "must be at least " +
                                          FormatDuration(HaTiming::kMinKeepaliveTimeout) +
                                          ", got " + FormatDuration(*c.pgwarden.keepalive_timeout));
    keepalive_ok = false;
  }
  const DynamicConfig& d = c.bootstrap.dcs;
  if (keepalive_ok && d.ttl >= HaTiming::kMinTtl && d.ttl <= HaTiming::kMaxTtl) {
    if (std::optional<std::string> bad = c.Timing().CheckKeepaliveRule()) {
      // Point at the key the user set: that is the one to change.
      std::string path = c.pgwarden.keepalive_interval  ? "pgwarden.keepalive_interval"
                         : c.pgwarden.keepalive_timeout ? "pgwarden.keepalive_timeout"
                                                        : "bootstrap.dcs.ttl";
      add(path, *bad);
    }
  }
  return problems;
}

}  // namespace pgwarden::config
