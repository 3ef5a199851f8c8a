// The dynamic settings: one reader for bootstrap.dcs (YAML) and etcd's `config` key (JSON),
// one validation, and the JSON writer.
#include "config/dynamic_config.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "config/reader.h"
#include "config/units.h"

namespace pgwarden::config {
namespace internal {

namespace {

// Keys of Patroni's dynamic configuration that pgwarden accepts but does not act on yet.
constexpr std::string_view kUnimplementedDynamic[] = {
    "max_timelines_history", "primary_race_backoff", "failsafe_mode", "check_timeline",
    "standby_cluster",       "member_slots_ttl",     "slots",         "ignore_slots",
};

constexpr std::string_view kUnimplementedDynamicPostgresql[] = {
    "recovery_conf",
    "pg_ident",
    "parameters_primary",
    "parameters_replica",
    "parameters_standby_leader",
    "pg_hba_primary",
    "pg_hba_replica",
    "pg_hba_standby_leader",
    "pg_ident_primary",
    "pg_ident_replica",
    "pg_ident_standby_leader",
    "pg_hosts",
    "pg_hosts_primary",
    "pg_hosts_replica",
    "pg_hosts_standby_leader",
};

// Reads `new_key`, or its pre-3.0 Patroni name `old_key`; both at once is an error.
bool DurationWithOldName(MapReader& m, std::string_view new_key, std::string_view old_key,
                         std::chrono::milliseconds* out) {
  if (m.Has(new_key) && m.Has(old_key)) {
    m.Get(old_key);
    m.diag().Error(m.KeyMark(old_key), m.PathOf(old_key),
                   "give only one of `" + std::string(new_key) + "` and its old name `" +
                       std::string(old_key) + "`");
    return m.Duration(new_key, out);
  }
  if (m.Has(old_key)) {
    m.Known(new_key);
    return m.Duration(old_key, out);
  }
  m.Known(old_key);
  return m.Duration(new_key, out);
}

// maximum_lag_on_syncnode: Patroni's -1 (off, the default) or a byte size (0 is off too, as in
// Patroni). Any other negative value is an error.
void SyncNodeLag(MapReader& m, int64_t* out) {
  constexpr std::string_view kKey = "maximum_lag_on_syncnode";
  const Node* n = m.Get(kKey);
  if (n == nullptr) return;
  const std::string what =
      "-1 (off, the default), 0 (off) or a size in bytes such as `1048576` or `16MB`";
  if (n->kind == Node::Kind::kScalar && !n->scalar.empty() && n->scalar.front() == '-') {
    if (n->scalar == "-1") {
      *out = -1;
    } else {
      m.diag().Error(n->mark, m.PathOf(kKey), "expected " + what + ", got `" + n->scalar + "`");
    }
    return;
  }
  uint64_t bytes = 0;
  if (!m.ByteSize(kKey, &bytes)) return;
  if (bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    m.diag().Error(n->mark, m.PathOf(kKey),
                   "expected " + what + ", got `" + n->scalar + "` (too large)");
    return;
  }
  *out = static_cast<int64_t>(bytes);
}

}  // namespace

void ReadDynamicConfig(MapReader& m, DynamicConfig* out) {
  std::chrono::milliseconds ttl{};
  if (m.Duration("ttl", &ttl)) {
    if (ttl.count() % 1000 != 0) {
      m.diag().Error(m.Get("ttl")->mark, m.PathOf("ttl"),
                     "must be a whole number of seconds (etcd leases count whole seconds), got " +
                         FormatDuration(ttl));
    } else {
      out->ttl = std::chrono::duration_cast<std::chrono::seconds>(ttl);
    }
  }
  m.Duration("loop_wait", &out->loop_wait);
  m.Duration("retry_timeout", &out->retry_timeout);
  m.ByteSize("maximum_lag_on_failover", &out->maximum_lag_on_failover);
  SyncNodeLag(m, &out->maximum_lag_on_syncnode);

  // Patroni 4's spelling: `synchronous_mode: quorum` is synchronous mode with quorum commit.
  if (const Node* n = m.Get("synchronous_mode");
      n != nullptr && n->kind == Node::Kind::kScalar && n->scalar == "quorum") {
    out->synchronous_mode = true;
    out->synchronous_quorum = true;
  } else {
    out->synchronous_quorum = false;
    m.Bool("synchronous_mode", &out->synchronous_mode);
  }
  m.Bool("synchronous_mode_strict", &out->synchronous_mode_strict);
  int64_t count = 0;
  if (m.Int("synchronous_node_count", 1, 1000, &count)) {
    out->synchronous_node_count = static_cast<int>(count);
  }
  DurationWithOldName(m, "primary_start_timeout", "master_start_timeout",
                      &out->primary_start_timeout);
  std::chrono::milliseconds stop{};
  if (DurationWithOldName(m, "primary_stop_timeout", "master_stop_timeout", &stop)) {
    out->primary_stop_timeout =
        stop.count() > 0 ? std::optional<std::chrono::milliseconds>(stop) : std::nullopt;
  }
  m.Bool("pause", &out->pause);

  {
    MapReader pg = m.Child("postgresql");
    if (pg.StringMap("parameters", &out->postgresql.parameters)) {
      WarnManagedParameters(pg, "parameters", out->postgresql.parameters);
    }
    pg.Bool("use_pg_rewind", &out->postgresql.use_pg_rewind);
    pg.Bool("use_slots", &out->postgresql.use_slots);
    pg.StringList("pg_hba", &out->postgresql.pg_hba);
    for (std::string_view key : kUnimplementedDynamicPostgresql) pg.Unimplemented(key);
    pg.Finish();
  }
  for (std::string_view key : kUnimplementedDynamic) m.Unimplemented(key);
}

}  // namespace internal

std::vector<ConfigProblem> ValidateDynamicConfig(const DynamicConfig& c) {
  std::vector<ConfigProblem> problems;
  using std::chrono::milliseconds;
  if (c.ttl < HaTiming::kMinTtl || c.ttl > HaTiming::kMaxTtl) {
    problems.push_back({"ttl", "must be between " + FormatDuration(HaTiming::kMinTtl) + " and " +
                                   FormatDuration(HaTiming::kMaxTtl) +
                                   " (etcd grants no lease shorter than " +
                                   FormatDuration(HaTiming::kMinTtl) +
                                   " with its default timing), got " + FormatDuration(c.ttl)});
  }
  bool timing_ok = c.ttl >= HaTiming::kMinTtl && c.ttl <= HaTiming::kMaxTtl;
  if (c.loop_wait < HaTiming::kMinLoopWait) {
    problems.push_back({"loop_wait", "must be at least " + FormatDuration(HaTiming::kMinLoopWait) +
                                         ", got " + FormatDuration(c.loop_wait)});
    timing_ok = false;
  }
  if (c.retry_timeout < HaTiming::kMinRetryTimeout) {
    problems.push_back({"retry_timeout", "must be at least " +
                                             FormatDuration(HaTiming::kMinRetryTimeout) + ", got " +
                                             FormatDuration(c.retry_timeout)});
    timing_ok = false;
  }
  if (timing_ok) {
    HaTiming t = HaTiming::Resolve(c.ttl, c.loop_wait, c.retry_timeout, std::nullopt, std::nullopt);
    if (std::optional<std::string> bad = t.CheckLoopRule()) {
      // Point at a key the user changed: that is where the file (or the etcd value) says it.
      const char* path = c.loop_wait != HaTiming::kDefaultLoopWait           ? "loop_wait"
                         : c.retry_timeout != HaTiming::kDefaultRetryTimeout ? "retry_timeout"
                                                                             : "ttl";
      problems.push_back({path, *bad});
    }
  }
  if (c.synchronous_node_count < 1) {
    problems.push_back({"synchronous_node_count",
                        "must be at least 1, got " + std::to_string(c.synchronous_node_count)});
  }
  if (c.maximum_lag_on_syncnode < -1) {
    problems.push_back(
        {"maximum_lag_on_syncnode", "must be -1 (off), 0 (off) or a size in bytes, got " +
                                        std::to_string(c.maximum_lag_on_syncnode)});
  }
  if (c.primary_stop_timeout && c.primary_stop_timeout->count() < 0) {
    problems.push_back({"primary_stop_timeout", "must not be negative"});
  }
  for (const auto& [name, value] : c.postgresql.parameters) {
    if (name.empty()) problems.push_back({"postgresql.parameters", "empty parameter name"});
  }
  for (size_t i = 0; i < c.postgresql.pg_hba.size(); ++i) {
    if (c.postgresql.pg_hba[i].find('\n') != std::string::npos) {
      problems.push_back({"postgresql.pg_hba[" + std::to_string(i) + "]",
                          "one pg_hba.conf line per list item, without line breaks"});
    }
  }
  return problems;
}

namespace {

nlohmann::json SecondsJson(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return nlohmann::json(d.count() / 1000);
  return nlohmann::json(static_cast<double>(d.count()) / 1000.0);
}

}  // namespace

std::string DynamicConfig::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  j["ttl"] = ttl.count();
  j["loop_wait"] = SecondsJson(loop_wait);
  j["retry_timeout"] = SecondsJson(retry_timeout);
  j["maximum_lag_on_failover"] = maximum_lag_on_failover;
  j["maximum_lag_on_syncnode"] = maximum_lag_on_syncnode;
  if (synchronous_mode && synchronous_quorum) {
    j["synchronous_mode"] = "quorum";
  } else {
    j["synchronous_mode"] = synchronous_mode;
  }
  j["synchronous_mode_strict"] = synchronous_mode_strict;
  j["synchronous_node_count"] = synchronous_node_count;
  j["primary_start_timeout"] = SecondsJson(primary_start_timeout);
  if (primary_stop_timeout) j["primary_stop_timeout"] = SecondsJson(*primary_stop_timeout);
  if (pause) j["pause"] = true;
  nlohmann::json pg = nlohmann::json::object();
  pg["use_pg_rewind"] = postgresql.use_pg_rewind;
  pg["use_slots"] = postgresql.use_slots;
  pg["parameters"] = nlohmann::json::object();
  for (const auto& [name, value] : postgresql.parameters) pg["parameters"][name] = value;
  if (!postgresql.pg_hba.empty()) pg["pg_hba"] = postgresql.pg_hba;
  j["postgresql"] = std::move(pg);
  return j.dump();
}

Result<LoadedDynamicConfig> DynamicConfigFromJson(std::string_view json, std::string_view source) {
  Result<internal::Node> root = internal::ParseJson(json, source);
  if (!root) return Fail(root.error());
  if (root->kind != internal::Node::Kind::kMap) {
    return Fail(ErrorCode::kCorrupt, std::string(source) + ": expected a JSON object, got " +
                                         std::string(internal::KindName(root->kind)));
  }
  internal::Diagnostics diag{std::string(source)};
  LoadedDynamicConfig loaded;
  {
    internal::MapReader m(diag, &*root, "", internal::Mark{}, internal::UnknownKeys::kWarning);
    internal::ReadDynamicConfig(m, &loaded.config);
    m.Finish();
  }
  diag.AddProblems(ValidateDynamicConfig(loaded.config));
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

}  // namespace pgwarden::config
