// LocalPostgres, part 3: making and repairing replicas (pg_basebackup, pg_rewind, crash
// recovery in single-user mode).
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "postgres/config_files.h"
#include "postgres/control_data.h"
#include "postgres/libpq_connection.h"
#include "postgres/local_postgres.h"
#include "postgres/local_postgres_internal.h"

namespace pgwarden::postgres {

namespace fs = std::filesystem;
using namespace internal;  // NOLINT: this module's own helpers
using std::chrono::seconds;

namespace {

// Files pg_rewind would overwrite with the source's copies but that describe this node.
constexpr const char* kNodeConfigFiles[] = {"postgresql.conf", "postgresql.pgwarden.conf",
                                            "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf"};

// Connects to the rewind source and, if it is a primary whose pg_control still names an
// older timeline than the one it writes, runs CHECKPOINT there (superuser or pg_checkpoint).
Result<void> CheckpointPromotedSource(const std::string& source_conninfo, SteadyTime deadline) {
  auto conn = PgConnection::Connect(
      source_conninfo, std::min(deadline, SteadyClock::now() + std::chrono::seconds(10)));
  std::string what = "rewind source " + RedactConninfo(source_conninfo);
  if (!conn) return Fail(conn.error().code, what + ": " + conn.error().message);
  auto r = conn->Query(
      "SELECT pg_is_in_recovery() AS in_recovery, "
      "(SELECT timeline_id FROM pg_control_checkpoint()) AS control_tli, "
      "CASE WHEN pg_is_in_recovery() THEN NULL "
      "ELSE pg_walfile_name(pg_current_wal_lsn()) END AS walfile",
      deadline);
  if (!r) return Fail(r.error().code, what + ": " + r.error().message);
  if (r->rows.size() != 1 || !r->rows[0][0] || !r->rows[0][1]) {
    return Fail(ErrorCode::kCorrupt, what + ": unexpected answer to the timeline query");
  }
  if (*r->rows[0][0] == "t" || !r->rows[0][2]) return Ok();  // a standby source: nothing to do
  auto writing = TimelineFromWalFileName(*r->rows[0][2]);
  uint32_t control_tli = static_cast<uint32_t>(std::strtoul(r->rows[0][1]->c_str(), nullptr, 10));
  if (!writing || writing->value() <= control_tli) return Ok();
  auto cp = conn->Query("CHECKPOINT", deadline);
  if (!cp) {
    return Fail(cp.error().code,
                what + ": CHECKPOINT after promotion failed: " + cp.error().message);
  }
  return Ok();
}

}  // namespace

Result<void> LocalPostgres::BaseBackup(const std::string& source_conninfo, Duration timeout) {
  if (IsRunning()) {
    return Fail(ErrorCode::kFailed, "refusing pg_basebackup into " + options_.data_dir +
                                        ": a PostgreSQL server runs there");
  }
  if (auto p = ProgramPath("pg_basebackup"); !p) return Fail(p.error());
  auto split = SplitPassword(source_conninfo);
  if (!split) return Fail(split.error());
  bool created = false;
  if (auto r = PrepareEmptyDataDir(&created); !r) return Fail(r.error());

  std::map<std::string, std::string> env;
  if (!split->password.empty()) env["PGPASSWORD"] = split->password;
  // --checkpoint=fast: the default spread checkpoint makes the clone wait for up to
  // checkpoint_timeout * checkpoint_completion_target.
  std::vector<std::string> args = {"-D",     options_.data_dir,   "-X",
                                   "stream", "--checkpoint=fast", "--no-password",
                                   "-d",     split->conninfo};
  if (!options_.sync_to_disk) args.push_back("--no-sync");
  auto r = RunProgram("pg_basebackup", std::move(args), timeout, /*checked=*/false, env);
  std::string what = "pg_basebackup from " + split->conninfo + " into " + options_.data_dir;
  if (!r) {
    CleanFailedDataDir(created);
    return Fail(r.error().code, what + ": " + r.error().message);
  }
  if (r->exit_code != 0) {
    CleanFailedDataDir(created);
    return Fail(
        LooksLikeConnectionFailure(r->output) ? ErrorCode::kUnavailable : ErrorCode::kFailed,
        what + " exited with " + std::to_string(r->exit_code) + ": " + LastLines(r->output, 4));
  }
  // The copy carries the source's server log and (if the source is a standby) its
  // signal files: neither describes this node.
  std::error_code ec;
  if (options_.log_file.empty()) fs::remove(LogFile(), ec);
  fs::remove(DataPath("standby.signal"), ec);
  fs::remove(DataPath("recovery.signal"), ec);
  ::chmod(options_.data_dir.c_str(), 0700);
  // Our listen address, port and socket directory, not the source's.
  auto params = ReadManagedParameters();
  if (!params) return Fail(params.error());
  if (auto w = WriteManagedFile(*params); !w) return Fail(w.error());
  return Ok();
}

Result<void> LocalPostgres::RunCrashRecovery(const std::string& state, Duration timeout) {
  SteadyTime deadline = SteadyClock::now() + timeout;
  std::error_code exists_ec;
  if (state == "in archive recovery" && fs::exists(DataPath("standby.signal"), exists_ec)) {
    // A standby that crashed. Single-user mode cannot run standby mode, and running it
    // without standby.signal would end recovery and write WAL of its own on the current
    // timeline, ahead of the primary: start it as the standby it is (it reaches consistency
    // from its local WAL) and stop it cleanly, which leaves "shut down in recovery".
    if (auto r = Start(timeout); !r) {
      return Fail(r.error().code, "crash recovery of standby " + options_.data_dir +
                                      " before pg_rewind (start): " + r.error().message);
    }
    auto stopped = Stop(StopMode::kFast, std::max(Remaining(deadline), Duration(seconds(5))));
    if (!stopped) {
      return Fail(stopped.error().code, "crash recovery of standby " + options_.data_dir +
                                            " before pg_rewind (stop): " + stopped.error().message);
    }
    return Ok();
  }
  // A primary that crashed (or a crash during crash recovery): replay its WAL in
  // single-user mode, as pg_rewind itself would. Single-user mode refuses to run with
  // standby.signal ("standby mode is not supported by single-user servers"): set the signal files
  // aside while it replays the local WAL.
  std::vector<std::string> moved;
  for (const char* signal : {"standby.signal", "recovery.signal"}) {
    std::string path = DataPath(signal);
    std::error_code ec;
    if (fs::exists(path, ec)) {
      fs::rename(path, path + ".pgwarden-saved", ec);
      if (ec) {
        return Fail(ErrorCode::kFailed, "cannot set " + path + " aside: " + ec.message());
      }
      moved.push_back(path);
    }
  }
  // stdin is empty: the single-user backend finishes recovery, sees EOF and shuts down
  // cleanly (a shutdown checkpoint). archive_mode=off: nothing of this is archived.
  auto r = RunProgram(
      "postgres", {"--single", "-F", "-D", options_.data_dir, "-c", "archive_mode=off", "postgres"},
      timeout, /*checked=*/true, {}, std::string());
  for (const std::string& path : moved) {
    std::error_code ec;
    fs::rename(path + ".pgwarden-saved", path, ec);
  }
  if (!r) {
    return Fail(r.error().code, "crash recovery (postgres --single) of " + options_.data_dir +
                                    " before pg_rewind failed: " + r.error().message);
  }
  return Ok();
}

Result<RewindResult> LocalPostgres::Rewind(const std::string& source_conninfo, Duration timeout) {
  SteadyTime deadline = SteadyClock::now() + timeout;
  if (IsRunning()) {
    return Fail(ErrorCode::kFailed,
                "pg_rewind needs the target stopped, but PostgreSQL runs in " + options_.data_dir);
  }
  if (auto p = ProgramPath("pg_rewind"); !p) return Fail(p.error());
  auto split = SplitPassword(source_conninfo);
  if (!split) return Fail(split.error());
  auto owner = FileOwner();
  if (!owner) return Fail(owner.error());

  // A source promoted moments ago still has its old timeline in pg_control until its first
  // checkpoint on the new timeline, and pg_rewind reads the timeline from there: it would say
  // "same timeline, no rewind required" and the target could never follow. Checkpoint it.
  if (auto r = CheckpointPromotedSource(source_conninfo, deadline); !r) return Fail(r.error());

  RewindResult result;
  auto control = ReadControlData();
  if (!control) return Fail(control.error());
  if (!control->CleanlyShutDown()) {
    // pg_rewind refuses a target that was not shut down cleanly (a crash, an immediate
    // stop). Finish its crash recovery first.
    if (auto r = RunCrashRecovery(control->cluster_state, Remaining(deadline)); !r) {
      return Fail(r.error());
    }
    result.ran_crash_recovery = true;
    control = ReadControlData();
    if (!control) return Fail(control.error());
    if (!control->CleanlyShutDown()) {
      return Fail(ErrorCode::kFailed, "after crash recovery " + options_.data_dir +
                                          " is still not shut down cleanly (state \"" +
                                          control->cluster_state + "\")");
    }
  }

  // pg_rewind copies the source's configuration files over ours: keep ours.
  std::map<std::string, std::string> saved;
  for (const char* name : kNodeConfigFiles) {
    if (auto text = ReadFileToString(DataPath(name))) saved[name] = *text;
  }
  std::map<std::string, std::string> env;
  if (!split->password.empty()) env["PGPASSWORD"] = split->password;
  // --no-ensure-shutdown: crash recovery was done above, with the signal files set aside.
  std::vector<std::string> args = {"--target-pgdata=" + options_.data_dir,
                                   "--source-server=" + split->conninfo, "--no-ensure-shutdown"};
  if (!options_.sync_to_disk) args.push_back("--no-sync");
  auto r = RunProgram("pg_rewind", std::move(args), Remaining(deadline), /*checked=*/false, env);
  for (const auto& [name, text] : saved) {
    if (auto w = WriteFileAtomically(DataPath(name), text, 0600, owner->uid, owner->gid); !w) {
      return Fail(w.error());
    }
  }
  std::string what = "pg_rewind of " + options_.data_dir + " from " + split->conninfo;
  if (!r) {
    return Fail(r.error().code, what + ": " + r.error().message +
                                    " (the data directory may be half-rewound: re-clone it)");
  }
  if (r->exit_code != 0 && LooksLikeConnectionFailure(r->output)) {
    return Fail(ErrorCode::kUnavailable,
                what + ": cannot reach the source: " + LastLines(r->output, 3));
  }
  RewindResult classified = ClassifyRewindOutput(r->exit_code == 0, r->output);
  classified.ran_crash_recovery = result.ran_crash_recovery;
  return classified;
}

}  // namespace pgwarden::postgres
