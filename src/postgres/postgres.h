// The Postgres interface: everything the HA agent does to its local PostgreSQL 15 server.
//
// One implementation drives a real server (LocalPostgres: pg_ctl, initdb, pg_basebackup,
// pg_rewind, pg_controldata and libpq over the unix socket); the HA agent's tests use a fake.
//
// Thread-safety: an implementation is NOT thread-safe. It is owned by one worker thread of the
// agent (the blocking-work pool), which calls it sequentially; results are posted back to the
// control thread. Every operation is bounded: long ones take an explicit timeout, status
// queries use short fixed timeouts (a few seconds) from the implementation's options.
//
// Errors (Result): kUnavailable = PostgreSQL is not running or refuses connections (or a
// source server could not be reached); kTimeout = the deadline passed, the outcome is unknown;
// kFailed = a program or statement ran and failed (the message names the command, its exit
// status and the tail of its output, or the SQL error); kCorrupt = output we could not parse;
// kInvalidArgument = the caller's input is unusable (bad slot name, missing option).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/types.h"

namespace pgwarden::postgres {

enum class StopMode { kSmart, kFast, kImmediate };
std::string_view ToString(StopMode mode);

// initdb settings. The superuser name and password come from the implementation's options.
struct InitDbOptions {
  std::string auth_local = "scram-sha-256";  // --auth-local
  std::string auth_host = "scram-sha-256";   // --auth-host
  std::optional<std::string> encoding;       // --encoding (UTF8 when unset)
  std::optional<std::string> locale;         // --locale (C when unset: no OS locale needed)
  std::vector<std::string> extra_args;       // passed through to initdb verbatim
};

// What Stop() did.
struct StopResult {
  bool was_running = false;             // false: nothing to do, the server was already down
  bool escalated_to_immediate = false;  // the requested mode did not finish in time
  std::string detail;                   // for the log: what happened
};

// One row of pg_stat_replication (on the server sending WAL).
struct ReplicationRow {
  std::string application_name;
  std::string client_addr;  // empty for a unix-socket client
  std::string state;        // "streaming", "catchup", "startup", "backup", "stopping"
  std::optional<Lsn> sent_lsn;
  std::optional<Lsn> write_lsn;
  std::optional<Lsn> flush_lsn;
  std::optional<Lsn> replay_lsn;
  std::string sync_state;  // "async", "potential", "sync", "quorum"
};

// pg_stat_wal_receiver (on a standby). Absent when no WAL receiver runs.
struct WalReceiverInfo {
  std::string status;  // "streaming", "starting", "waiting", "restarting", "stopping"
  Timeline received_tli;
  std::optional<Lsn> flushed_lsn;
  std::string slot_name;
  std::string sender_host;
  int sender_port = 0;
  std::string conninfo;  // as PostgreSQL shows it: the password is masked
  bool streaming() const { return status == "streaming"; }
};

// A snapshot of the running server, from libpq queries.
struct PgStatus {
  bool running = true;  // the postmaster is alive (always true when Status() succeeds)
  // False while the server starts up, shuts down or runs crash recovery (it rejects
  // connections); the remaining fields are then unset.
  bool accepting_connections = false;
  bool in_recovery = false;
  // The timeline the server writes (primary: from the current WAL file name, which is exact
  // right after promotion) or receives (standby: pg_stat_wal_receiver.received_tli, else the
  // latest checkpoint/restartpoint's timeline).
  Timeline timeline;
  std::optional<Lsn> current_wal_lsn;  // primary: pg_current_wal_lsn()
  std::optional<Lsn> flush_wal_lsn;    // primary: pg_current_wal_flush_lsn()
  std::optional<Lsn> received_lsn;     // standby: pg_last_wal_receive_lsn()
  std::optional<Lsn> replayed_lsn;     // standby: pg_last_wal_replay_lsn()
  bool replay_paused = false;
  std::vector<ReplicationRow> replication;  // pg_stat_replication, ordered by name
  std::optional<WalReceiverInfo> wal_receiver;
  std::optional<SystemTime> postmaster_start_time;
  int server_version_num = 0;                // 150018
  std::string server_version;                // "15.18 (Debian 15.18-0+deb12u1)"
  std::vector<std::string> pending_restart;  // pg_settings names with pending_restart
  std::string not_accepting_reason;          // libpq's message when !accepting_connections

  // The furthest position this server has: current (primary) or max(received, replayed).
  std::optional<Lsn> Position() const;
};

// pg_controldata output (works while the server is down).
struct ControlData {
  uint64_t system_identifier = 0;
  std::string cluster_state;           // "in production", "shut down", "shut down in recovery", ...
  Lsn checkpoint_lsn;                  // Latest checkpoint location
  Lsn redo_lsn;                        // Latest checkpoint's REDO location
  Timeline checkpoint_timeline;        // Latest checkpoint's TimeLineID
  Lsn min_recovery_end_lsn;            // Minimum recovery ending location
  Timeline min_recovery_end_timeline;  // Min recovery ending loc's timeline
  uint32_t data_checksum_version = 0;  // 0: no checksums
  bool wal_log_hints = false;
  std::map<std::string, std::string> fields;  // every "Name: value" line

  bool CleanlyShutDown() const {
    return cluster_state == "shut down" || cluster_state == "shut down in recovery";
  }
};

// What WriteManagedConfig / ConfigureStandby / ClearStandby changed.
struct ConfigChange {
  bool changed = false;         // the managed file's content changed
  bool restart_needed = false;  // a changed parameter needs a restart (context postmaster)
  std::vector<std::string> changed_parameters;  // added, changed or removed names, sorted
};

// One pg_hba.conf line. Names with spaces or commas are quoted when rendered.
struct HbaEntry {
  std::string type = "host";  // local, host, hostssl, hostnossl
  std::string database = "all";
  std::string user = "all";
  std::string address;  // empty for "local"; "127.0.0.1/32", "samenet", ...
  std::string method = "scram-sha-256";
  std::string options;  // appended verbatim ("clientcert=verify-full")
};

struct StandbyConfig {
  std::string primary_conninfo;   // build it with BuildConninfo()
  std::string primary_slot_name;  // empty: no slot
  std::string recovery_target_timeline = "latest";
};

struct SlotInfo {
  std::string name;
  std::string type;  // "physical" / "logical"
  bool active = false;
  std::optional<Lsn> restart_lsn;
};

// Rewind() outcome. Failures that re-cloning can fix are an outcome (kImpossible), not an
// error; errors are kept for "we could not find out" (source unreachable, timeout).
struct RewindResult {
  enum class Outcome { kNotNeeded, kDone, kImpossible };
  Outcome outcome = Outcome::kImpossible;
  bool ran_crash_recovery = false;  // the target was not shut down cleanly
  std::string detail;               // pg_rewind's reason, for the log
};
std::string_view ToString(RewindResult::Outcome outcome);

// The rows of the last statement of ExecuteSql (text format; NULL is nullopt).
struct SqlResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::string command_status;  // "CREATE ROLE", "SELECT 3"
};

struct RoleSpec {
  std::string name;
  std::optional<std::string> password;  // set (or reset) when given
  bool superuser = false;
  bool replication = false;
  bool login = true;
};

class Postgres {
 public:
  virtual ~Postgres() = default;

  // --- Life cycle -------------------------------------------------------------------------
  // Creates a new cluster in the (absent or empty) data directory, with data checksums.
  // A half-made directory is removed on failure. kFailed if the directory is not empty.
  virtual Result<void> InitDb(const InitDbOptions& options) = 0;
  // Starts the server and waits until it accepts connections. Ok if already running.
  virtual Result<void> Start(Duration timeout) = 0;
  // Stops the server. A kFast/kSmart stop that does not finish in `timeout` is escalated to
  // kImmediate (a crash; recovery runs at the next start), which StopResult reports.
  virtual Result<StopResult> Stop(StopMode mode, Duration timeout) = 0;
  // Stop(mode, timeout) then Start(timeout).
  virtual Result<void> Restart(StopMode mode, Duration timeout) = 0;
  // Re-reads the configuration files (SIGHUP). kUnavailable if not running.
  virtual Result<void> Reload() = 0;
  // Ends recovery and waits until the server accepts writes. Ok if already a primary.
  virtual Result<void> Promote(Duration timeout) = 0;

  // --- Observation --------------------------------------------------------------------------
  // Queries the running server (fast: short connect and statement timeouts).
  // kUnavailable when it is not running or cannot be reached; when the postmaster runs but
  // rejects connections (startup, recovery, shutdown) the result says !accepting_connections.
  virtual Result<PgStatus> Status() = 0;
  // pg_controldata: works whether the server runs or not.
  virtual Result<ControlData> ReadControlData() = 0;
  // Cheap: postmaster.pid names a live postgres process. No connection is made.
  virtual bool IsRunning() = 0;

  // --- Configuration ------------------------------------------------------------------------
  // Makes `parameters` the pgwarden-managed parameters (the standby settings and the
  // listen/port/socket settings from the options are kept). Does not reload.
  virtual Result<ConfigChange> WriteManagedConfig(
      const std::map<std::string, std::string>& parameters) = 0;
  // Rewrites pg_hba.conf: a line giving the superuser local access first, then `entries`.
  virtual Result<bool> WriteHba(const std::vector<HbaEntry>& entries) = 0;
  // Writes primary_conninfo / primary_slot_name / a non-default recovery_target_timeline into the
  // managed file and creates standby.signal. Takes effect at the next (re)start; primary_conninfo
  // and primary_slot_name also with a reload.
  virtual Result<ConfigChange> ConfigureStandby(const StandbyConfig& standby) = 0;
  // Removes standby.signal and the standby settings.
  virtual Result<ConfigChange> ClearStandby() = 0;

  // --- Replication slots (on a running primary) -----------------------------------------
  virtual Result<void> CreatePhysicalSlot(const std::string& name) = 0;  // Ok if it exists
  virtual Result<void> DropSlot(const std::string& name) = 0;            // Ok if absent
  virtual Result<std::vector<SlotInfo>> ListSlots() = 0;

  // --- Replicas -----------------------------------------------------------------------------
  // Clones `source_conninfo`'s cluster into the (absent or empty) data directory with
  // pg_basebackup -X stream --checkpoint=fast. The copy is then ready for ConfigureStandby.
  virtual Result<void> BaseBackup(const std::string& source_conninfo, Duration timeout) = 0;
  // Rewinds the stopped data directory to follow `source_conninfo` (pg_rewind; the source
  // must be reachable as a superuser with a dbname). A target that crashed is first brought
  // to a clean shutdown (a primary: single-user crash recovery; a standby: start + stop as a
  // standby). A source promoted moments ago gets a CHECKPOINT first (its pg_control still
  // names the old timeline otherwise). This node's config files are kept. Afterwards:
  // ConfigureStandby + Start.
  virtual Result<RewindResult> Rewind(const std::string& source_conninfo, Duration timeout) = 0;

  // --- SQL ----------------------------------------------------------------------------------
  // Runs `sql` as the superuser. With `params` it must be one statement using $1, $2, ...;
  // without, several statements may be given. Returns the last statement's rows.
  virtual Result<SqlResult> ExecuteSql(const std::string& sql,
                                       const std::vector<std::optional<std::string>>& params,
                                       Duration timeout) = 0;
  // Creates the role or brings its attributes and password up to date (identifiers and
  // literals escaped by libpq).
  virtual Result<void> EnsureRole(const RoleSpec& role, Duration timeout) = 0;
};

}  // namespace pgwarden::postgres
