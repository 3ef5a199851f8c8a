// LocalPostgres, part 2: libpq connections, Status(), slots and SQL.
#include <algorithm>
#include <cmath>

#include "postgres/config_files.h"
#include "postgres/conninfo.h"
#include "postgres/control_data.h"
#include "postgres/local_postgres.h"
#include "postgres/local_postgres_internal.h"

namespace pgwarden::postgres {

using namespace internal;  // NOLINT: this module's own helpers
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

// The value of `column` in row `row`, or nullopt when NULL or absent.
std::optional<std::string> Cell(const SqlResult& r, size_t row, std::string_view column) {
  if (row >= r.rows.size()) return std::nullopt;
  for (size_t c = 0; c < r.columns.size(); ++c) {
    if (r.columns[c] == column) return r.rows[row][c];
  }
  return std::nullopt;
}

std::optional<Lsn> LsnCell(const SqlResult& r, size_t row, std::string_view column) {
  auto v = Cell(r, row, column);
  if (!v) return std::nullopt;
  return Lsn::Parse(*v);
}

bool BoolCell(const SqlResult& r, size_t row, std::string_view column) {
  auto v = Cell(r, row, column);
  return v && *v == "t";
}

// Server messages of a postmaster that is alive but does not take connections yet or any
// more (SQLSTATE 57P03 cannot_connect_now).
bool IsNotAcceptingMessage(std::string_view msg) {
  for (std::string_view needle :
       {"the database system is starting up", "the database system is shutting down",
        "the database system is in recovery mode",
        "the database system is not yet accepting connections",
        "the database system is not accepting connections"}) {
    if (msg.find(needle) != std::string_view::npos) return true;
  }
  return false;
}

// One round trip for the scalar facts. Every function that fails on the wrong side of
// recovery is guarded by CASE (pg_is_in_recovery() is volatile, so CASE does not fold it).
// The primary's timeline comes from the name of the WAL file being written: it changes the
// moment promotion ends, while pg_control_checkpoint() keeps the old timeline until the
// first checkpoint on the new one.
constexpr const char* kStatusSql = R"sql(
SELECT r.in_recovery,
  CASE WHEN r.in_recovery THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
  CASE WHEN r.in_recovery THEN NULL ELSE pg_current_wal_flush_lsn()::text END AS flush_lsn,
  CASE WHEN r.in_recovery THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS walfile,
  pg_last_wal_receive_lsn()::text AS received_lsn,
  pg_last_wal_replay_lsn()::text AS replayed_lsn,
  CASE WHEN r.in_recovery THEN pg_is_wal_replay_paused() ELSE false END AS replay_paused,
  (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
  extract(epoch FROM pg_postmaster_start_time())::float8 AS start_time,
  current_setting('server_version_num') AS version_num,
  current_setting('server_version') AS version,
  ARRAY(SELECT name FROM pg_settings WHERE pending_restart ORDER BY name)::text AS pending
FROM (SELECT pg_is_in_recovery() AS in_recovery) r
)sql";

constexpr const char* kReplicationSql = R"sql(
SELECT application_name, coalesce(client_addr::text, '') AS client_addr, state,
  sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text, sync_state
FROM pg_stat_replication ORDER BY application_name, pid
)sql";

constexpr const char* kWalReceiverSql = R"sql(
SELECT status, received_tli, flushed_lsn::text, coalesce(slot_name, '') AS slot_name,
  coalesce(sender_host, '') AS sender_host, coalesce(sender_port, 0) AS sender_port,
  coalesce(conninfo, '') AS conninfo
FROM pg_stat_wal_receiver
)sql";

// '{a,b,"c d"}' -> {"a", "b", "c d"} for the simple arrays of names we ask for.
std::vector<std::string> ParseTextArray(std::string_view s) {
  std::vector<std::string> out;
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return out;
  s = s.substr(1, s.size() - 2);
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      quoted = !quoted;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
    } else if (c == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty() || !out.empty()) out.push_back(cur);
  return out;
}

}  // namespace

std::string LocalPostgres::LocalConninfo(Duration statement_timeout) const {
  ConninfoParams params = {
      {"host", options_.socket_dir},
      {"port", std::to_string(options_.port)},
      {"user", options_.superuser.username},
      {"dbname", "postgres"},
      {"application_name", "pgwarden"},
      {"connect_timeout", std::to_string(std::max(2, CeilSeconds(options_.connect_timeout)))}};
  if (!options_.superuser.password.empty()) {
    params.emplace_back("password", options_.superuser.password);
  }
  auto ms = duration_cast<milliseconds>(statement_timeout).count();
  if (ms > 0) params.emplace_back("options", "-c statement_timeout=" + std::to_string(ms));
  return BuildConninfo(params);
}

Result<PgConnection> LocalPostgres::Connect(Duration statement_timeout, SteadyTime deadline) {
  auto conn = PgConnection::Connect(LocalConninfo(statement_timeout), deadline);
  if (!conn) {
    return Fail(conn.error().code, "PostgreSQL " + options_.socket_dir + ":" +
                                       std::to_string(options_.port) + " (" + options_.data_dir +
                                       "): " + conn.error().message);
  }
  return conn;
}

Result<PgStatus> LocalPostgres::Status() {
  SteadyTime start = SteadyClock::now();
  SteadyTime deadline = start + options_.status_timeout;
  if (!IsRunning()) {
    return Fail(ErrorCode::kUnavailable,
                "PostgreSQL is not running (no live postmaster for " + options_.data_dir + ")");
  }
  PgStatus st;
  st.running = true;
  st.accepting_connections = true;
  // The connection of the previous call is reused (a new one costs a backend fork and SCRAM
  // authentication); if it broke (the server restarted), connect anew.
  if (status_conn_) {
    PgStatus cached = st;
    auto r = QueryStatus(*status_conn_, deadline, &cached);
    if (r) return cached;
    status_conn_.reset();
    if (r.error().code != ErrorCode::kUnavailable) return Fail(r.error());
  }
  auto conn =
      Connect(options_.status_timeout, std::min(deadline, start + options_.connect_timeout));
  if (!conn) {
    if (conn.error().code == ErrorCode::kUnavailable &&
        IsNotAcceptingMessage(conn.error().message) && IsRunning()) {
      st.accepting_connections = false;
      st.not_accepting_reason = conn.error().message;
      return st;
    }
    return Fail(conn.error());
  }
  if (auto r = QueryStatus(*conn, deadline, &st); !r) return Fail(r.error());
  status_conn_ = std::move(*conn);
  return st;
}

Result<void> LocalPostgres::QueryStatus(PgConnection& conn, SteadyTime deadline, PgStatus* out) {
  PgStatus& st = *out;
  auto facts = conn.Query(kStatusSql, deadline);
  if (!facts) return Fail(facts.error().code, "status query: " + facts.error().message);
  if (facts->rows.size() != 1) return Fail(ErrorCode::kCorrupt, "status query returned no row");
  const SqlResult& f = *facts;
  st.in_recovery = BoolCell(f, 0, "in_recovery");
  st.current_wal_lsn = LsnCell(f, 0, "current_lsn");
  st.flush_wal_lsn = LsnCell(f, 0, "flush_lsn");
  st.received_lsn = LsnCell(f, 0, "received_lsn");
  st.replayed_lsn = LsnCell(f, 0, "replayed_lsn");
  st.replay_paused = BoolCell(f, 0, "replay_paused");
  if (auto v = Cell(f, 0, "start_time")) {
    double secs = std::strtod(v->c_str(), nullptr);
    st.postmaster_start_time =
        SystemTime(duration_cast<SystemTime::duration>(std::chrono::duration<double>(secs)));
  }
  if (auto v = Cell(f, 0, "version_num")) st.server_version_num = std::atoi(v->c_str());
  st.server_version = Cell(f, 0, "version").value_or("");
  st.pending_restart = ParseTextArray(Cell(f, 0, "pending").value_or("{}"));
  if (!st.in_recovery) {
    auto walfile = Cell(f, 0, "walfile");
    auto tli = walfile ? TimelineFromWalFileName(*walfile) : std::nullopt;
    if (!tli) {
      return Fail(ErrorCode::kCorrupt,
                  "status query: unexpected WAL file name \"" + walfile.value_or("NULL") + "\"");
    }
    st.timeline = *tli;
    if (!st.current_wal_lsn) {
      return Fail(ErrorCode::kCorrupt, "status query: primary without pg_current_wal_lsn()");
    }
  }

  auto repl = conn.Query(kReplicationSql, deadline);
  if (!repl) return Fail(repl.error().code, "pg_stat_replication: " + repl.error().message);
  for (size_t i = 0; i < repl->rows.size(); ++i) {
    ReplicationRow row;
    row.application_name = Cell(*repl, i, "application_name").value_or("");
    row.client_addr = Cell(*repl, i, "client_addr").value_or("");
    row.state = Cell(*repl, i, "state").value_or("");
    row.sent_lsn = LsnCell(*repl, i, "sent_lsn");
    row.write_lsn = LsnCell(*repl, i, "write_lsn");
    row.flush_lsn = LsnCell(*repl, i, "flush_lsn");
    row.replay_lsn = LsnCell(*repl, i, "replay_lsn");
    row.sync_state = Cell(*repl, i, "sync_state").value_or("");
    st.replication.push_back(std::move(row));
  }

  if (st.in_recovery) {
    auto recv = conn.Query(kWalReceiverSql, deadline);
    if (!recv) return Fail(recv.error().code, "pg_stat_wal_receiver: " + recv.error().message);
    if (!recv->rows.empty()) {
      WalReceiverInfo w;
      w.status = Cell(*recv, 0, "status").value_or("");
      w.received_tli = Timeline(static_cast<uint32_t>(
          std::strtoul(Cell(*recv, 0, "received_tli").value_or("0").c_str(), nullptr, 10)));
      w.flushed_lsn = LsnCell(*recv, 0, "flushed_lsn");
      w.slot_name = Cell(*recv, 0, "slot_name").value_or("");
      w.sender_host = Cell(*recv, 0, "sender_host").value_or("");
      w.sender_port = std::atoi(Cell(*recv, 0, "sender_port").value_or("0").c_str());
      w.conninfo = Cell(*recv, 0, "conninfo").value_or("");
      st.wal_receiver = std::move(w);
    }
    // A standby's timeline: the one it receives, else its latest restartpoint's.
    if (st.wal_receiver && st.wal_receiver->received_tli.value() != 0) {
      st.timeline = st.wal_receiver->received_tli;
    } else {
      st.timeline = Timeline(static_cast<uint32_t>(
          std::strtoul(Cell(f, 0, "checkpoint_tli").value_or("0").c_str(), nullptr, 10)));
    }
  }
  return Ok();
}

bool LocalPostgres::NeedsRestart(const std::vector<std::string>& names) {
  if (names.empty()) return false;
  std::string array = "{";
  for (const auto& n : names) {
    if (array.size() > 1) array += ',';
    std::string lower = n;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    array += '"' + lower + '"';
  }
  array += '}';
  SteadyTime deadline = SteadyClock::now() + options_.status_timeout;
  auto conn = Connect(options_.status_timeout,
                      std::min(deadline, SteadyClock::now() + options_.connect_timeout));
  // Cannot ask: assume the worst for the parameters we know are postmaster-context... we
  // know none without the server, so say a restart is needed (a restart is always safe).
  if (!conn) return true;
  auto rows = conn->Query(
      "SELECT name FROM pg_settings WHERE context = 'postmaster' AND name = ANY($1::text[])",
      {array}, deadline);
  if (!rows) return true;
  return !rows->rows.empty();
}

// --- Slots ----------------------------------------------------------------------------------

Result<void> LocalPostgres::CreatePhysicalSlot(const std::string& name) {
  if (auto v = ValidateSlotName(name); !v) return Fail(v.error());
  SteadyTime deadline = SteadyClock::now() + options_.sql_timeout;
  auto conn = Connect(options_.sql_timeout,
                      std::min(deadline, SteadyClock::now() + options_.connect_timeout));
  if (!conn) return Fail(conn.error());
  auto existing = conn->Query("SELECT slot_type FROM pg_replication_slots WHERE slot_name = $1",
                              {name}, deadline);
  if (!existing) return Fail(existing.error().code, "list slots: " + existing.error().message);
  if (!existing->rows.empty()) {
    if (existing->rows[0][0].value_or("") != "physical") {
      return Fail(ErrorCode::kFailed, "slot " + name + " exists and is not a physical slot");
    }
    return Ok();
  }
  // immediately_reserve: WAL is kept from now on, so a replica cloned after this call
  // finds everything it needs.
  auto created =
      conn->Query("SELECT pg_create_physical_replication_slot($1, true)", {name}, deadline);
  if (!created && created.error().message.find("42710") == std::string::npos) {
    return Fail(created.error().code,
                "create physical slot " + name + ": " + created.error().message);
  }
  return Ok();  // 42710 duplicate_object: created concurrently, fine
}

Result<void> LocalPostgres::DropSlot(const std::string& name) {
  if (auto v = ValidateSlotName(name); !v) return Fail(v.error());
  SteadyTime deadline = SteadyClock::now() + options_.sql_timeout;
  auto conn = Connect(options_.sql_timeout,
                      std::min(deadline, SteadyClock::now() + options_.connect_timeout));
  if (!conn) return Fail(conn.error());
  auto r = conn->Query(
      "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
      {name}, deadline);
  if (!r) return Fail(r.error().code, "drop slot " + name + ": " + r.error().message);
  return Ok();
}

Result<std::vector<SlotInfo>> LocalPostgres::ListSlots() {
  SteadyTime deadline = SteadyClock::now() + options_.sql_timeout;
  auto conn = Connect(options_.sql_timeout,
                      std::min(deadline, SteadyClock::now() + options_.connect_timeout));
  if (!conn) return Fail(conn.error());
  auto r = conn->Query(
      "SELECT slot_name, slot_type, active, restart_lsn::text AS restart_lsn "
      "FROM pg_replication_slots ORDER BY slot_name",
      deadline);
  if (!r) return Fail(r.error().code, "list slots: " + r.error().message);
  std::vector<SlotInfo> out;
  for (size_t i = 0; i < r->rows.size(); ++i) {
    SlotInfo s;
    s.name = Cell(*r, i, "slot_name").value_or("");
    s.type = Cell(*r, i, "slot_type").value_or("");
    s.active = BoolCell(*r, i, "active");
    s.restart_lsn = LsnCell(*r, i, "restart_lsn");
    out.push_back(std::move(s));
  }
  return out;
}

// --- SQL ------------------------------------------------------------------------------------

Result<SqlResult> LocalPostgres::ExecuteSql(const std::string& sql,
                                            const std::vector<std::optional<std::string>>& params,
                                            Duration timeout) {
  SteadyTime deadline = SteadyClock::now() + timeout;
  auto conn = Connect(timeout, std::min(deadline, SteadyClock::now() + options_.connect_timeout));
  if (!conn) return Fail(conn.error());
  auto r = conn->Query(sql, params, deadline);
  if (!r) return Fail(r.error().code, "SQL failed: " + r.error().message);
  return r;
}

Result<void> LocalPostgres::EnsureRole(const RoleSpec& role, Duration timeout) {
  if (role.name.empty()) return Fail(ErrorCode::kInvalidArgument, "EnsureRole: empty role name");
  SteadyTime deadline = SteadyClock::now() + timeout;
  auto conn = Connect(timeout, std::min(deadline, SteadyClock::now() + options_.connect_timeout));
  if (!conn) return Fail(conn.error());
  auto exists = conn->Query("SELECT 1 FROM pg_roles WHERE rolname = $1", {role.name}, deadline);
  if (!exists) return Fail(exists.error().code, "look up role: " + exists.error().message);
  auto ident = conn->EscapeIdentifier(role.name);
  if (!ident) return Fail(ident.error());
  std::string sql = (exists->rows.empty() ? "CREATE ROLE " : "ALTER ROLE ") + *ident + " WITH";
  sql += role.superuser ? " SUPERUSER" : " NOSUPERUSER";
  sql += role.replication ? " REPLICATION" : " NOREPLICATION";
  sql += role.login ? " LOGIN" : " NOLOGIN";
  if (role.password) {
    auto literal = conn->EscapeLiteral(*role.password);
    if (!literal) return Fail(literal.error());
    sql += " PASSWORD " + *literal;
  }
  auto r = conn->Query(sql, deadline);
  if (!r) {
    return Fail(r.error().code, (exists->rows.empty() ? "create role " : "alter role ") +
                                    role.name + ": " + r.error().message);
  }
  return Ok();
}

}  // namespace pgwarden::postgres
