// LocalPostgres: the Postgres interface for one PostgreSQL 15 data directory on this machine.
//
// Programs (initdb, pg_ctl, pg_basebackup, pg_rewind, pg_controldata, postgres --single) run
// from options.bin_dir with LC_ALL=C (their output is parsed) and, when pgwarden runs as
// root, as options.os_user: PostgreSQL refuses to run as root. The data, socket and
// log paths are then chown'ed to that user. SQL goes over libpq to the unix socket in
// options.socket_dir as the superuser, with short connect/statement timeouts.
//
// Not thread-safe: owned by one worker thread (see postgres.h).
#pragma once

#include <optional>
#include <string>

#include "common/process.h"
#include "postgres/libpq_connection.h"
#include "postgres/postgres.h"

namespace pgwarden::postgres {

struct Credentials {
  std::string username;
  std::string password;  // empty: none (trust or peer authentication)
};

struct LocalPostgresOptions {
  std::string data_dir;  // required, absolute
  std::string bin_dir = "/usr/lib/postgresql/15/bin";
  std::string listen_addresses = "127.0.0.1";      // written into the managed file
  int port = 5432;                                 // written into the managed file
  std::string socket_dir = "/var/run/postgresql";  // unix_socket_directories; created
  std::string os_user = "postgres";                // used only when running as root
  std::string log_file;  // server log (pg_ctl -l); empty: <data_dir>/pgwarden-postgres.log
  Credentials superuser{"postgres", ""};
  Credentials replication{"replicator", ""};
  std::string local_auth_method = "scram-sha-256";  // pg_hba line for the superuser
  // false only for throw-away test clusters: initdb, pg_basebackup and pg_rewind run with
  // --no-sync (deleting freshly fsynced data directories is slow on some disks).
  bool sync_to_disk = true;
  Duration connect_timeout = std::chrono::seconds(2);
  Duration status_timeout = std::chrono::seconds(3);    // one Status() call, all queries
  Duration sql_timeout = std::chrono::seconds(10);      // slot operations, promote checks
  Duration program_timeout = std::chrono::seconds(30);  // pg_controldata, pg_ctl reload
  Duration initdb_timeout = std::chrono::seconds(120);
};

class LocalPostgres final : public Postgres {
 public:
  explicit LocalPostgres(LocalPostgresOptions options);

  const LocalPostgresOptions& options() const { return options_; }
  std::string LogFile() const;
  // The conninfo pgwarden uses for its own connections (unix socket, superuser).
  std::string LocalConninfo(Duration statement_timeout) const;

  Result<void> InitDb(const InitDbOptions& options) override;
  Result<void> Start(Duration timeout) override;
  Result<StopResult> Stop(StopMode mode, Duration timeout) override;
  Result<void> Restart(StopMode mode, Duration timeout) override;
  Result<void> Reload() override;
  Result<void> Promote(Duration timeout) override;

  Result<PgStatus> Status() override;
  Result<ControlData> ReadControlData() override;
  bool IsRunning() override;

  Result<ConfigChange> WriteManagedConfig(
      const std::map<std::string, std::string>& parameters) override;
  Result<bool> WriteHba(const std::vector<HbaEntry>& entries) override;
  Result<ConfigChange> ConfigureStandby(const StandbyConfig& standby) override;
  Result<ConfigChange> ClearStandby() override;

  Result<void> CreatePhysicalSlot(const std::string& name) override;
  Result<void> DropSlot(const std::string& name) override;
  Result<std::vector<SlotInfo>> ListSlots() override;

  Result<void> BaseBackup(const std::string& source_conninfo, Duration timeout) override;
  Result<RewindResult> Rewind(const std::string& source_conninfo, Duration timeout) override;

  Result<SqlResult> ExecuteSql(const std::string& sql,
                               const std::vector<std::optional<std::string>>& params,
                               Duration timeout) override;
  Result<void> EnsureRole(const RoleSpec& role, Duration timeout) override;

 private:
  struct Owner {
    int uid = -1;  // -1: do not chown (not running as root)
    int gid = -1;
  };
  std::string DataPath(std::string_view name) const;
  Result<Owner> FileOwner();
  Result<std::string> ProgramPath(const std::string& name) const;
  // Runs bin_dir/<program> args... as the OS user; kFailed with the command and output tail
  // on a non-zero exit when `checked`.
  Result<ProcessResult> RunProgram(const std::string& program, std::vector<std::string> args,
                                   Duration timeout, bool checked,
                                   std::map<std::string, std::string> env = {},
                                   std::optional<std::string> stdin_data = std::nullopt);
  Result<PgConnection> Connect(Duration statement_timeout, SteadyTime deadline);

  // Creates the data directory (mode 0700, owned by the OS user) or checks it is empty.
  // *created tells the caller whether to remove the directory itself on failure.
  Result<void> PrepareEmptyDataDir(bool* created);
  void CleanFailedDataDir(bool created);
  Result<void> EnsureSocketDir();
  Result<std::map<std::string, std::string>> ReadManagedParameters();
  // Writes the managed file with `parameters` + the options' listen/port/socket settings,
  // and the include line in postgresql.conf. Returns the names that changed.
  Result<std::vector<std::string>> WriteManagedFile(std::map<std::string, std::string> parameters);
  // True when one of `names` has context 'postmaster' (asked of the running server).
  bool NeedsRestart(const std::vector<std::string>& names);
  // Brings a target that was not shut down cleanly (pg_controldata `state`) to a clean
  // shutdown so that pg_rewind accepts it.
  Result<void> RunCrashRecovery(const std::string& state, Duration timeout);
  std::string LogTail(int lines) const;

  // The queries of Status() over `conn`; fills everything but running/accepting.
  Result<void> QueryStatus(PgConnection& conn, SteadyTime deadline, PgStatus* out);

  LocalPostgresOptions options_;
  std::optional<Owner> owner_;  // resolved once
  // Status()'s connection, kept between calls. Closed before every stop: a smart shutdown
  // waits for all sessions, ours included.
  std::optional<PgConnection> status_conn_;
};

}  // namespace pgwarden::postgres
