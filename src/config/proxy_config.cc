#include "config/proxy_config.h"

#include <arpa/inet.h>

#include <map>

#include "config/reader.h"
#include "config/sections.h"
#include "config/units.h"

namespace pgwarden::config {
namespace internal {
namespace {

void ReadPort(MapReader& m, std::string_view key, std::optional<uint16_t>* out) {
  int64_t port = 0;
  if (m.Int(key, 1, 65535, &port)) *out = static_cast<uint16_t>(port);
}

void ReadRoute(MapReader& m, std::string_view key, ProxyRoutePolicy* out) {
  MapReader r = m.Child(key);
  uint64_t lag = 0;
  if (r.ByteSize("max_lag", &lag)) out->max_lag = lag;
  r.Bool("fallback_to_primary", &out->fallback_to_primary);
  r.Finish();
}

void ReadProxy(MapReader& root, ProxyConfig* c) {
  root.String("scope", &c->scope);
  ReadNamespace(root, &c->dcs_namespace);
  ReadEtcdSection(root, &c->etcd);
  ReadLogSection(root, &c->log);
  {
    MapReader m = root.Child("proxy");
    m.String("listen", &c->listen);
    ReadPort(m, "primary_port", &c->primary_port);
    ReadPort(m, "replica_port", &c->replica_port);
    ReadPort(m, "sync_port", &c->sync_port);
    ReadPort(m, "async_port", &c->async_port);
    ReadPort(m, "status_port", &c->status_port);
    ReadRoute(m, "replica", &c->replica);
    ReadRoute(m, "sync", &c->sync);
    ReadRoute(m, "async", &c->async);
    m.Duration("hold_timeout", &c->hold_timeout);
    m.Duration("connect_timeout", &c->connect_timeout);
    m.Duration("unreachable_for", &c->unreachable_for);
    m.Duration("half_close_timeout", &c->half_close_timeout);
    m.Duration("idle_timeout", &c->idle_timeout);
    m.Duration("stall_timeout", &c->stall_timeout);
    m.Duration("keepalive_idle", &c->keepalive_idle);
    uint64_t size = 0;
    if (m.ByteSize("buffer_size", &size)) c->buffer_size = size;
    int64_t backlog = 0;
    if (m.Int("listen_backlog", 1, 65535, &backlog)) c->listen_backlog = static_cast<int>(backlog);
    m.Duration("retry_backoff_min", &c->retry_backoff_min);
    m.Duration("retry_backoff_max", &c->retry_backoff_max);
    int64_t attempts = 0;
    if (m.Int("max_connect_attempts", 1, 1'000'000, &attempts)) {
      c->max_connect_attempts = static_cast<int>(attempts);
    }
    int64_t held = 0;
    if (m.Int("max_held", 1, 10'000'000, &held)) c->max_held = held;
    int64_t threads = 0;
    if (m.Int("threads", 1, 64, &threads)) c->threads = static_cast<int>(threads);
    m.Finish();
  }
  // A node's file may be handed to the proxy too: its node-only sections are not errors.
  for (std::string_view key :
       {"name", "restapi", "bootstrap", "postgresql", "tags", "pgwarden", "ctl", "watchdog"}) {
    root.Known(key);
  }
  root.Finish();
}

}  // namespace
}  // namespace internal

std::vector<ConfigProblem> ValidateProxyConfig(const ProxyConfig& c) {
  std::vector<ConfigProblem> problems;
  internal::ValidateScopeAndNamespace(c.scope, c.dcs_namespace, &problems);
  internal::ValidateEtcd(c.etcd, &problems);
  internal::ValidateLog(c.log, &problems);
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, c.listen.c_str(), &v4) != 1 &&
      inet_pton(AF_INET6, c.listen.c_str(), &v6) != 1) {
    problems.push_back({"proxy.listen",
                        "expected an IP address (`0.0.0.0`, `127.0.0.1`, `::`), "
                        "got `" +
                            c.listen + "`"});
  }
  if (!c.primary_port && !c.replica_port && !c.sync_port && !c.async_port) {
    problems.push_back({"proxy.primary_port",
                        "required key is missing: at least one client port (proxy.primary_port, "
                        "replica_port, sync_port or async_port)"});
  }
  std::map<uint16_t, std::string> seen;
  for (const auto& [port, key] : std::vector<std::pair<std::optional<uint16_t>, std::string>>{
           {c.primary_port, "primary_port"},
           {c.replica_port, "replica_port"},
           {c.sync_port, "sync_port"},
           {c.async_port, "async_port"},
           {c.status_port, "status_port"}}) {
    if (!port) continue;
    auto [it, inserted] = seen.emplace(*port, key);
    if (!inserted) {
      problems.push_back(
          {"proxy." + key, "port " + std::to_string(*port) + " is already proxy." + it->second});
    }
  }
  auto positive = [&problems](const std::optional<std::chrono::milliseconds>& d, const char* key) {
    if (d && d->count() == 0) {
      problems.push_back({std::string("proxy.") + key, "must be greater than 0"});
    }
  };
  positive(c.connect_timeout, "connect_timeout");
  positive(c.half_close_timeout, "half_close_timeout");
  positive(c.retry_backoff_min, "retry_backoff_min");
  positive(c.retry_backoff_max, "retry_backoff_max");
  if (c.retry_backoff_min && c.retry_backoff_max && c.retry_backoff_max->count() > 0 &&
      *c.retry_backoff_max < *c.retry_backoff_min) {
    problems.push_back({"proxy.retry_backoff_max", "must be at least proxy.retry_backoff_min (" +
                                                       FormatDuration(*c.retry_backoff_min) +
                                                       "), got " +
                                                       FormatDuration(*c.retry_backoff_max)});
  }
  if (c.buffer_size && (*c.buffer_size < 1024 || *c.buffer_size > 16 * 1024 * 1024)) {
    problems.push_back({"proxy.buffer_size", "must be between 1kB and 16MB, got " +
                                                 std::to_string(*c.buffer_size) + " bytes"});
  }
  return problems;
}

Result<LoadedProxyConfig> LoadProxyConfigString(std::string_view text,
                                                std::string_view source_name) {
  Result<internal::Node> root = internal::ParseYaml(text, source_name);
  if (!root) return Fail(root.error());
  if (root->kind == internal::Node::Kind::kNull) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string(source_name) +
                    ": the file is empty; expected a map of settings (scope, etcd3, proxy, ...)");
  }
  internal::Diagnostics diag(std::string(source_name), internal::Mark{1, 1});
  LoadedProxyConfig loaded;
  {
    internal::MapReader m(diag, &*root, "", internal::Mark{1, 1});
    if (m.present()) internal::ReadProxy(m, &loaded.config);
  }
  if (root->kind == internal::Node::Kind::kMap) {
    diag.AddProblems(ValidateProxyConfig(loaded.config));
  }
  if (diag.has_errors()) {
    std::string message;
    for (const std::string& line : diag.FormattedErrors()) {
      if (!message.empty()) message += "\n";
      message += line;
    }
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  loaded.warnings = diag.FormattedWarnings();
  return loaded;
}

Result<LoadedProxyConfig> LoadProxyConfigFile(const std::string& path) {
  std::string text;
  std::string error;
  ErrorCode code = ErrorCode::kInvalidArgument;
  if (!internal::ReadConfigFileText(path, &text, &error, &code)) return Fail(code, error);
  return LoadProxyConfigString(text, path);
}

}  // namespace pgwarden::config
