// LocalPostgres, part 3: making and repairing replicas (pg_basebackup, pg_rewind, crash
// recovery in single-user mode).
#include <sys/stat.h>

#include <filesystem>

#include "postgres/config_files.h"
#include "postgres/control_data.h"
#include "postgres/local_postgres.h"
#include "postgres/local_postgres_internal.h"

namespace pgwarden::postgres {

namespace fs = std::filesystem;
using namespace internal;  // NOLINT: this module's own helpers

namespace {

// Files pg_rewind would overwrite with the source's copies but that describe this node.
constexpr const char* kNodeConfigFiles[] = {"postgresql.conf", "postgresql.pgwarden.conf",
                                            "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf"};

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
  auto r = RunProgram("pg_basebackup",
                      {"-D", options_.data_dir, "-X", "stream", "--checkpoint=fast",
                       "--no-password", "-d", split->conninfo},
                      timeout, /*checked=*/false, env);
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

Result<void> LocalPostgres::RunCrashRecovery(Duration timeout) {
  // Single-user mode refuses to run with standby.signal ("standby mode is not supported by
  // single-user servers"): set the signal files aside while it replays the local WAL.
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

  RewindResult result;
  auto control = ReadControlData();
  if (!control) return Fail(control.error());
  if (!control->CleanlyShutDown()) {
    // pg_rewind refuses a target that was not shut down cleanly (a crash, an immediate
    // stop). Finish its crash recovery first.
    if (auto r = RunCrashRecovery(Remaining(deadline)); !r) return Fail(r.error());
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
  auto r = RunProgram("pg_rewind",
                      {"--target-pgdata=" + options_.data_dir, "--source-server=" + split->conninfo,
                       "--no-ensure-shutdown"},
                      Remaining(deadline), /*checked=*/false, env);
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
