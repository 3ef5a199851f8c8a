// LocalPostgres, part 1: programs, the data directory, life cycle and configuration files.
// Part 2 (local_postgres_sql.cc): status and SQL. Part 3 (local_postgres_replica.cc):
// pg_basebackup and pg_rewind.
#include "postgres/local_postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "postgres/config_files.h"
#include "postgres/conninfo.h"
#include "postgres/control_data.h"
#include "postgres/local_postgres_internal.h"

namespace pgwarden::postgres {

namespace fs = std::filesystem;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::string_view ToString(StopMode mode) {
  switch (mode) {
    case StopMode::kSmart:
      return "smart";
    case StopMode::kFast:
      return "fast";
    case StopMode::kImmediate:
      return "immediate";
  }
  return "?";
}

std::string_view ToString(RewindResult::Outcome outcome) {
  switch (outcome) {
    case RewindResult::Outcome::kNotNeeded:
      return "not needed";
    case RewindResult::Outcome::kDone:
      return "done";
    case RewindResult::Outcome::kImpossible:
      return "impossible";
  }
  return "?";
}

std::optional<Lsn> PgStatus::Position() const {
  if (!in_recovery) return current_wal_lsn;
  if (received_lsn && replayed_lsn) return std::max(*received_lsn, *replayed_lsn);
  return received_lsn ? received_lsn : replayed_lsn;
}

namespace internal {

int CeilSeconds(Duration d) {
  auto ms = duration_cast<milliseconds>(d).count();
  return static_cast<int>(std::max<int64_t>(1, (ms + 999) / 1000));
}

std::string FormatDuration(Duration d) {
  auto ms = duration_cast<milliseconds>(d).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

Duration Remaining(SteadyTime deadline) {
  auto left = deadline - SteadyClock::now();
  return left.count() > 0 ? Duration(left) : Duration(0);
}

bool LooksLikeConnectionFailure(std::string_view output) {
  for (std::string_view needle :
       {"could not connect", "connection to server", "Connection refused", "timeout expired",
        "could not translate host name", "no pg_hba.conf entry", "authentication failed"}) {
    if (output.find(needle) != std::string_view::npos) return true;
  }
  return false;
}

bool IsConninfoUri(std::string_view conninfo) {
  return conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0;
}

Result<SplitConninfo> SplitPassword(const std::string& conninfo) {
  // A URI is passed through as it is (its password, if any, stays in it).
  if (IsConninfoUri(conninfo)) return SplitConninfo{conninfo, ""};
  ConninfoParams params;
  if (!ParseConninfo(conninfo, &params)) {
    return Fail(ErrorCode::kInvalidArgument,
                "malformed conninfo (unterminated quote or a key "
                "without '='): " +
                    RedactConninfo(conninfo));
  }
  SplitConninfo out;
  ConninfoParams rest;
  for (auto& [key, value] : params) {
    if (key == "password") {
      out.password = value;
    } else {
      rest.emplace_back(key, value);
    }
  }
  out.conninfo = BuildConninfo(rest);
  return out;
}

std::string RedactConninfo(const std::string& conninfo) {
  if (IsConninfoUri(conninfo)) {
    size_t start = conninfo.find("://") + 3;
    size_t at = conninfo.find('@', start);
    if (at == std::string::npos) return conninfo;
    return conninfo.substr(0, start) + "***" + conninfo.substr(at);
  }
  ConninfoParams params;
  if (!ParseConninfo(conninfo, &params)) return "<unparsable conninfo>";
  for (auto& [key, value] : params) {
    if (key == "password") value = "***";
  }
  return BuildConninfo(params);
}

}  // namespace internal

using namespace internal;  // NOLINT: this file's own helpers

LocalPostgres::LocalPostgres(LocalPostgresOptions options) : options_(std::move(options)) {}

std::string LocalPostgres::DataPath(std::string_view name) const {
  return options_.data_dir + "/" + std::string(name);
}

std::string LocalPostgres::LogFile() const {
  return options_.log_file.empty() ? DataPath("pgwarden-postgres.log") : options_.log_file;
}

std::string LocalPostgres::LogTail(int lines) const {
  // Only the end of the file: a server log can be large.
  std::ifstream in(LogFile(), std::ios::binary | std::ios::ate);
  if (!in) return "(no server log at " + LogFile() + ")";
  std::streamoff size = in.tellg();
  std::streamoff start = std::max<std::streamoff>(0, size - 16384);
  in.seekg(start);
  std::string text(static_cast<size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return LastLines(text, lines);
}

Result<LocalPostgres::Owner> LocalPostgres::FileOwner() {
  if (owner_) return *owner_;
  if (!RunningAsRoot()) {
    owner_ = Owner{};
    return *owner_;
  }
  auto user = LookupOsUser(options_.os_user);
  if (!user) {
    return Fail(ErrorCode::kInvalidArgument,
                "OS user \"" + options_.os_user +
                    "\" (postgres os_user) not found: " + user.error().message);
  }
  owner_ = Owner{static_cast<int>(user->uid), static_cast<int>(user->gid)};
  return *owner_;
}

Result<std::string> LocalPostgres::ProgramPath(const std::string& name) const {
  std::string path = options_.bin_dir + "/" + name;
  if (::access(path.c_str(), X_OK) != 0) {
    return Fail(ErrorCode::kInvalidArgument,
                "PostgreSQL program " + path + " is missing or not executable (" +
                    std::strerror(errno) + "); check bin_dir (\"" + options_.bin_dir + "\")");
  }
  return path;
}

Result<ProcessResult> LocalPostgres::RunProgram(const std::string& program,
                                                std::vector<std::string> args, Duration timeout,
                                                bool checked,
                                                std::map<std::string, std::string> env,
                                                std::optional<std::string> stdin_data) {
  auto path = ProgramPath(program);
  if (!path) return Fail(path.error());
  Command cmd;
  cmd.argv.push_back(*path);
  for (auto& a : args) cmd.argv.push_back(std::move(a));
  if (RunningAsRoot()) cmd.run_as_user = options_.os_user;
  // The output is parsed and quoted in errors: untranslated.
  cmd.env = {{"LC_ALL", "C"}, {"LANG", "C"}, {"LC_MESSAGES", "C"}};
  for (auto& [k, v] : env) cmd.env[k] = v;
  cmd.working_dir = "/";
  cmd.stdin_data = std::move(stdin_data);
  auto ms = std::max(milliseconds(1), duration_cast<milliseconds>(timeout));
  return checked ? RunChecked(cmd, ms) : Run(cmd, ms);
}

bool LocalPostgres::IsRunning() {
  auto text = ReadFileToString(DataPath("postmaster.pid"));
  if (!text) return false;
  pid_t pid = 0;
  try {
    pid = static_cast<pid_t>(std::stol(text->substr(0, text->find('\n'))));
  } catch (...) {
    return false;
  }
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  // A stale postmaster.pid can name a reused pid, and a postmaster that died may linger as
  // a zombie when nobody reaps it: check the process name and state.
  auto stat = ReadFileToString("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;  // no /proc: trust kill()
  size_t open = stat->find('(');
  size_t close = stat->rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 >= stat->size()) {
    return true;
  }
  std::string comm = stat->substr(open + 1, close - open - 1);
  char state = (*stat)[close + 2];
  if (state == 'Z' || state == 'X' || state == 'x') return false;
  return comm.rfind("postgres", 0) == 0 || comm.rfind("postmaster", 0) == 0;
}

Result<void> LocalPostgres::PrepareEmptyDataDir(bool* created) {
  *created = false;
  const std::string& dir = options_.data_dir;
  if (dir.empty() || dir.front() != '/') {
    return Fail(ErrorCode::kInvalidArgument,
                "data_dir must be an absolute path, got \"" + dir + "\"");
  }
  auto owner = FileOwner();
  if (!owner) return Fail(owner.error());
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      return Fail(ErrorCode::kFailed, "data directory " + dir + " exists and is not a directory");
    }
    if (!fs::is_empty(dir, ec)) {
      return Fail(ErrorCode::kFailed, "data directory " + dir + " is not empty");
    }
  } else {
    fs::create_directories(fs::path(dir).parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0) {
      return Fail(ErrorCode::kFailed,
                  "cannot create data directory " + dir + ": " + std::strerror(errno));
    }
    *created = true;
  }
  if (::chmod(dir.c_str(), 0700) != 0) {
    return Fail(ErrorCode::kFailed, "cannot chmod 0700 " + dir + ": " + std::strerror(errno));
  }
  if (owner->uid >= 0 && ::chown(dir.c_str(), owner->uid, owner->gid) != 0) {
    return Fail(ErrorCode::kFailed,
                "cannot chown " + dir + " to " + options_.os_user + ": " + std::strerror(errno));
  }
  return Ok();
}

void LocalPostgres::CleanFailedDataDir(bool created) {
  std::error_code ec;
  if (created) {
    fs::remove_all(options_.data_dir, ec);
    return;
  }
  for (const auto& entry : fs::directory_iterator(options_.data_dir, ec)) {
    fs::remove_all(entry.path(), ec);
  }
}

Result<void> LocalPostgres::EnsureSocketDir() {
  const std::string& dir = options_.socket_dir;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return Ok();
  auto owner = FileOwner();
  if (!owner) return Fail(owner.error());
  fs::create_directories(dir, ec);
  if (ec)
    return Fail(ErrorCode::kFailed, "cannot create socket directory " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0755);
  if (owner->uid >= 0 && ::chown(dir.c_str(), owner->uid, owner->gid) != 0) {
    return Fail(ErrorCode::kFailed,
                "cannot chown " + dir + " to " + options_.os_user + ": " + std::strerror(errno));
  }
  return Ok();
}

// --- Life cycle ---------------------------------------------------------------------------

Result<void> LocalPostgres::InitDb(const InitDbOptions& init) {
  if (auto p = ProgramPath("initdb"); !p) return Fail(p.error());
  auto owner = FileOwner();
  if (!owner) return Fail(owner.error());
  bool created = false;
  if (auto r = PrepareEmptyDataDir(&created); !r) return Fail(r.error());

  std::vector<std::string> args = {"-D",
                                   options_.data_dir,
                                   "-U",
                                   options_.superuser.username,
                                   "--data-checksums",
                                   "--auth-local=" + init.auth_local,
                                   "--auth-host=" + init.auth_host,
                                   "--encoding=" + init.encoding.value_or("UTF8"),
                                   "--locale=" + init.locale.value_or("C")};
  // The password goes through a file (never argv) readable by the OS user only; initdb reads
  // its first line.
  if (options_.superuser.password.find_first_of("\r\n") != std::string::npos) {
    CleanFailedDataDir(created);
    return Fail(ErrorCode::kInvalidArgument, "the superuser password contains a line break");
  }
  std::string pwfile;
  if (!options_.superuser.password.empty()) {
    char tmpl[] = "/tmp/pgwarden-pwfile-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0) {
      CleanFailedDataDir(created);
      return Fail(ErrorCode::kFailed,
                  std::string("cannot create a password file: ") + std::strerror(errno));
    }
    pwfile = tmpl;
    std::string content = options_.superuser.password + "\n";
    bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    if (owner->uid >= 0 && ::fchown(fd, owner->uid, owner->gid) != 0) ok = false;
    ::close(fd);
    if (!ok) {
      ::unlink(pwfile.c_str());
      CleanFailedDataDir(created);
      return Fail(ErrorCode::kFailed, "cannot write the initdb password file " + pwfile);
    }
    args.push_back("--pwfile=" + pwfile);
  }
  if (!options_.sync_to_disk) args.push_back("--no-sync");
  for (const auto& a : init.extra_args) args.push_back(a);

  auto r = RunProgram("initdb", std::move(args), options_.initdb_timeout, /*checked=*/true);
  if (!pwfile.empty()) ::unlink(pwfile.c_str());
  if (!r) {
    CleanFailedDataDir(created);
    return Fail(r.error().code, "initdb of " + options_.data_dir + " failed: " + r.error().message);
  }
  auto written = WriteManagedFile({});
  if (!written) return Fail(written.error());
  return Ok();
}

Result<void> LocalPostgres::Start(Duration timeout) {
  if (IsRunning()) return Ok();
  if (auto p = ProgramPath("pg_ctl"); !p) return Fail(p.error());
  std::error_code ec;
  if (!fs::exists(DataPath("PG_VERSION"), ec)) {
    return Fail(ErrorCode::kFailed, "cannot start: no PostgreSQL cluster in " + options_.data_dir +
                                        " (PG_VERSION missing)");
  }
  if (auto r = EnsureSocketDir(); !r) return Fail(r.error());
  // The listen/port/socket settings are ours even if a base backup or pg_rewind copied
  // another node's managed file.
  auto params = ReadManagedParameters();
  if (!params) return Fail(params.error());
  if (auto w = WriteManagedFile(*params); !w) return Fail(w.error());

  // pg_ctl (as the OS user) appends to the log file: make sure it may, wherever it is.
  if (auto owner = FileOwner(); owner && owner->uid >= 0) {
    int fd = ::open(LogFile().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      if (::fchown(fd, owner->uid, owner->gid) != 0) {
        // pg_ctl reports it below if it matters.
      }
      ::close(fd);
    }
  }
  int secs = CeilSeconds(timeout);
  auto r = RunProgram(
      "pg_ctl",
      {"start", "-D", options_.data_dir, "-w", "-t", std::to_string(secs), "-l", LogFile()},
      timeout + std::chrono::seconds(5), /*checked=*/false);
  if (!r) {
    return Fail(r.error().code, "pg_ctl start of " + options_.data_dir + ": " + r.error().message +
                                    "\nserver log:\n" + LogTail(8));
  }
  if (r->exit_code != 0) {
    bool slow = r->output.find("did not start in time") != std::string::npos;
    return Fail(slow ? ErrorCode::kTimeout : ErrorCode::kFailed,
                "pg_ctl start -D " + options_.data_dir + " exited with " +
                    std::to_string(r->exit_code) +
                    (slow ? " (not ready within " + FormatDuration(timeout) + ")" : "") + ": " +
                    LastLines(r->output, 4) + "\nserver log:\n" + LogTail(8));
  }
  return Ok();
}

Result<StopResult> LocalPostgres::Stop(StopMode mode, Duration timeout) {
  StopResult result;
  status_conn_.reset();
  if (!IsRunning()) {
    result.detail = "not running";
    return result;
  }
  result.was_running = true;
  auto stop = [&](StopMode m, Duration t) {
    return RunProgram("pg_ctl",
                      {"stop", "-D", options_.data_dir, "-m", std::string(ToString(m)), "-w", "-t",
                       std::to_string(CeilSeconds(t))},
                      t + std::chrono::seconds(5), /*checked=*/false);
  };
  auto r = stop(mode, timeout);
  if ((r && r->exit_code == 0) || !IsRunning()) {
    result.detail = "stopped (" + std::string(ToString(mode)) + ")";
    return result;
  }
  std::string first_failure = r ? LastLines(r->output, 3) : r.error().message;
  if (mode == StopMode::kImmediate) {
    return Fail(ErrorCode::kFailed,
                "pg_ctl stop -m immediate -D " + options_.data_dir + " failed: " + first_failure);
  }
  // The requested mode did not finish in time (a stuck backend, a slow checkpoint): an
  // immediate stop always ends, the postmaster SIGKILLs children after 5 s.
  auto r2 = stop(StopMode::kImmediate, std::chrono::seconds(30));
  if ((r2 && r2->exit_code == 0) || !IsRunning()) {
    result.escalated_to_immediate = true;
    result.detail = std::string(ToString(mode)) + " stop did not finish within " +
                    FormatDuration(timeout) +
                    "; escalated to immediate (crash recovery runs at the next start)";
    return result;
  }
  return Fail(ErrorCode::kTimeout, "PostgreSQL in " + options_.data_dir + " still runs after " +
                                       std::string(ToString(mode)) + " and immediate stops: " +
                                       (r2 ? LastLines(r2->output, 3) : r2.error().message));
}

Result<void> LocalPostgres::Restart(StopMode mode, Duration timeout) {
  auto stopped = Stop(mode, timeout);
  if (!stopped) return Fail(stopped.error());
  return Start(timeout);
}

Result<void> LocalPostgres::Reload() {
  if (!IsRunning()) {
    return Fail(ErrorCode::kUnavailable,
                "cannot reload: PostgreSQL is not running in " + options_.data_dir);
  }
  auto r = RunProgram("pg_ctl", {"reload", "-D", options_.data_dir}, options_.program_timeout,
                      /*checked=*/true);
  if (!r) return Fail(r.error());
  return Ok();
}

Result<void> LocalPostgres::Promote(Duration timeout) {
  SteadyTime deadline = SteadyClock::now() + timeout;
  if (!IsRunning()) {
    return Fail(ErrorCode::kUnavailable,
                "cannot promote: PostgreSQL is not running in " + options_.data_dir);
  }
  auto in_recovery = [&]() -> Result<bool> {
    auto conn = Connect(options_.sql_timeout,
                        std::min(deadline, SteadyClock::now() + options_.connect_timeout));
    if (!conn) return Fail(conn.error());
    auto rows = conn->Query("SELECT pg_is_in_recovery()", deadline);
    if (!rows) return Fail(rows.error());
    if (rows->rows.size() != 1 || !rows->rows[0][0]) {
      return Fail(ErrorCode::kCorrupt, "pg_is_in_recovery() returned no value");
    }
    return *rows->rows[0][0] == "t";
  };
  // No SQL check first: a standby with hot_standby=off takes no connections. pg_ctl reads
  // pg_control and says so when the server is not a standby.
  Duration left = Remaining(deadline);
  auto r = RunProgram(
      "pg_ctl", {"promote", "-D", options_.data_dir, "-w", "-t", std::to_string(CeilSeconds(left))},
      left + std::chrono::seconds(5), /*checked=*/false);
  if (!r) return Fail(r.error().code, "pg_ctl promote: " + r.error().message);
  if (r->exit_code != 0) {
    if (r->output.find("not in standby mode") != std::string::npos) {
      auto primary = in_recovery();
      if (primary && !*primary) return Ok();  // already a primary
    }
    bool slow = r->output.find("did not promote in time") != std::string::npos;
    return Fail(slow ? ErrorCode::kTimeout : ErrorCode::kFailed,
                "pg_ctl promote -D " + options_.data_dir + " exited with " +
                    std::to_string(r->exit_code) + ": " + LastLines(r->output, 4));
  }
  // pg_ctl returns when pg_control says "in production"; the shared-memory recovery state
  // that pg_is_in_recovery() reads flips a moment later. Wait for it, so that the next
  // Status() already reports a primary on the new timeline.
  while (true) {
    auto still = in_recovery();
    if (still && !*still) return Ok();
    if (SteadyClock::now() >= deadline) {
      return Fail(ErrorCode::kTimeout, "promoted, but the server still reports recovery after " +
                                           FormatDuration(timeout) +
                                           (still ? std::string() : ": " + still.error().message));
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

Result<ControlData> LocalPostgres::ReadControlData() {
  auto r = RunProgram("pg_controldata", {"-D", options_.data_dir}, options_.program_timeout,
                      /*checked=*/true);
  if (!r) return Fail(r.error());
  auto cd = ParseControlData(r->output);
  if (!cd) {
    return Fail(cd.error().code,
                cd.error().message + " (pg_controldata -D " + options_.data_dir + ")");
  }
  return cd;
}

// --- Configuration files ----------------------------------------------------------------

Result<std::map<std::string, std::string>> LocalPostgres::ReadManagedParameters() {
  auto text = ReadFileToString(DataPath(kManagedConfFile));
  if (!text) {
    if (text.error().code == ErrorCode::kNotFound) return std::map<std::string, std::string>{};
    return Fail(text.error());
  }
  auto parsed = ParseManagedConfig(*text);
  // The file is ours: an unparsable one (edited by hand) is replaced, not fatal.
  if (!parsed) return std::map<std::string, std::string>{};
  return parsed;
}

Result<std::vector<std::string>> LocalPostgres::WriteManagedFile(
    std::map<std::string, std::string> parameters) {
  auto owner = FileOwner();
  if (!owner) return Fail(owner.error());
  std::string conf_path = DataPath("postgresql.conf");
  auto conf = ReadFileToString(conf_path);
  if (!conf) {
    return Fail(ErrorCode::kFailed,
                "no usable postgresql.conf in " + options_.data_dir + ": " + conf.error().message);
  }
  std::string with_include = WithManagedInclude(*conf);
  bool include_added = with_include != *conf;

  parameters["listen_addresses"] = options_.listen_addresses;
  parameters["port"] = std::to_string(options_.port);
  parameters["unix_socket_directories"] = options_.socket_dir;

  std::string path = DataPath(kManagedConfFile);
  auto old_text = ReadFileToString(path);
  std::map<std::string, std::string> old;
  if (old_text && !include_added) {
    if (auto parsed = ParseManagedConfig(*old_text)) old = *parsed;
  }
  std::string text = RenderManagedConfig(parameters);
  if (!old_text || *old_text != text) {
    if (auto w = WriteFileAtomically(path, text, 0600, owner->uid, owner->gid); !w) {
      return Fail(w.error());
    }
  }
  if (include_added) {
    if (auto w = WriteFileAtomically(conf_path, with_include, 0600, owner->uid, owner->gid); !w) {
      return Fail(w.error());
    }
  }
  return ChangedParameters(old, parameters);
}

namespace {

constexpr std::string_view kStandbyKeys[] = {"primary_conninfo", "primary_slot_name",
                                             "recovery_target_timeline"};

bool IsStandbyKey(const std::string& name) {
  return std::find(std::begin(kStandbyKeys), std::end(kStandbyKeys), name) !=
         std::end(kStandbyKeys);
}

Result<void> ValidateParameter(const std::string& name, const std::string& value) {
  if (name.empty()) return Fail(ErrorCode::kInvalidArgument, "empty parameter name");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) {
      return Fail(ErrorCode::kInvalidArgument,
                  "invalid PostgreSQL parameter name \"" + name + "\"");
    }
  }
  if (value.find_first_of("\n\r", 0) != std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "value of PostgreSQL parameter " + name + " contains a line break");
  }
  return Ok();
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

Result<void> ValidateSlotName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 63;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) ok = false;
  }
  if (!ok) {
    return Fail(ErrorCode::kInvalidArgument,
                "invalid replication slot name \"" + name +
                    "\": use 1-63 lower-case letters, digits and underscores");
  }
  return Ok();
}

Result<ConfigChange> LocalPostgres::WriteManagedConfig(
    const std::map<std::string, std::string>& parameters) {
  for (const auto& [name, value] : parameters) {
    if (auto v = ValidateParameter(name, value); !v) return Fail(v.error());
  }
  auto old = ReadManagedParameters();
  if (!old) return Fail(old.error());
  std::map<std::string, std::string> next;
  for (const auto& [name, value] : parameters) {
    if (!IsStandbyKey(name)) next[name] = value;  // those belong to ConfigureStandby
  }
  for (const auto& [name, value] : *old) {
    if (IsStandbyKey(name)) next[name] = value;
  }
  auto changed = WriteManagedFile(std::move(next));
  if (!changed) return Fail(changed.error());
  ConfigChange out;
  out.changed = !changed->empty();
  out.changed_parameters = *changed;
  out.restart_needed = out.changed && IsRunning() && NeedsRestart(*changed);
  return out;
}

Result<bool> LocalPostgres::WriteHba(const std::vector<HbaEntry>& entries) {
  for (const HbaEntry& e : entries) {
    for (const std::string* f :
         {&e.type, &e.database, &e.user, &e.address, &e.method, &e.options}) {
      if (f->find_first_of("\n\r") != std::string::npos) {
        return Fail(ErrorCode::kInvalidArgument, "pg_hba entry field contains a line break");
      }
    }
    if (e.type.empty() || e.method.empty() || (e.type != "local" && e.address.empty())) {
      return Fail(ErrorCode::kInvalidArgument,
                  "pg_hba entry needs a type, a method and (except for local) an address: " +
                      e.type + " " + e.database + " " + e.user);
    }
  }
  const std::string& own = options_.local_auth_method;
  if (options_.superuser.password.empty() &&
      (own == "scram-sha-256" || own == "md5" || own == "password")) {
    return Fail(ErrorCode::kInvalidArgument,
                "pg_hba: local_auth_method " + own +
                    " needs a superuser password, and none is "
                    "configured: pgwarden could not connect to its own server");
  }
  auto owner = FileOwner();
  if (!owner) return Fail(owner.error());
  std::string path = DataPath("pg_hba.conf");
  std::string text = RenderHba(options_.superuser.username, options_.local_auth_method, entries);
  auto old = ReadFileToString(path);
  if (old && *old == text) return false;
  if (auto w = WriteFileAtomically(path, text, 0600, owner->uid, owner->gid); !w) {
    return Fail(w.error());
  }
  return true;
}

Result<ConfigChange> LocalPostgres::ConfigureStandby(const StandbyConfig& standby) {
  if (standby.primary_conninfo.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "ConfigureStandby: primary_conninfo is empty");
  }
  if (auto v = ValidateParameter("primary_conninfo", standby.primary_conninfo); !v) {
    return Fail(v.error());
  }
  ConninfoParams parsed;
  if (!IsConninfoUri(standby.primary_conninfo) &&
      !ParseConninfo(standby.primary_conninfo, &parsed)) {
    return Fail(ErrorCode::kInvalidArgument, "ConfigureStandby: malformed primary_conninfo " +
                                                 RedactConninfo(standby.primary_conninfo));
  }
  if (!standby.primary_slot_name.empty()) {
    if (auto v = ValidateSlotName(standby.primary_slot_name); !v) return Fail(v.error());
  }
  auto owner = FileOwner();
  if (!owner) return Fail(owner.error());
  auto params = ReadManagedParameters();
  if (!params) return Fail(params.error());
  (*params)["primary_conninfo"] = standby.primary_conninfo;
  if (standby.primary_slot_name.empty()) {
    params->erase("primary_slot_name");
  } else {
    (*params)["primary_slot_name"] = standby.primary_slot_name;
  }
  // 'latest' is PostgreSQL's default (12+): left out, so that ClearStandby() on promotion does
  // not remove a postmaster-context setting, which would flag the new primary pending_restart.
  if (standby.recovery_target_timeline == "latest") {
    params->erase("recovery_target_timeline");
  } else {
    (*params)["recovery_target_timeline"] = standby.recovery_target_timeline;
  }
  auto changed = WriteManagedFile(std::move(*params));
  if (!changed) return Fail(changed.error());

  std::string signal = DataPath("standby.signal");
  std::error_code ec;
  bool had_signal = fs::exists(signal, ec);
  if (!had_signal) {
    if (auto w = WriteFileAtomically(signal, "", 0600, owner->uid, owner->gid); !w) {
      return Fail(w.error());
    }
  }
  ConfigChange out;
  out.changed = !changed->empty() || !had_signal;
  out.changed_parameters = *changed;
  // Since PostgreSQL 13 primary_conninfo and primary_slot_name take effect on reload; a
  // running primary becomes a standby, and a new recovery_target_timeline applies, only
  // after a restart.
  out.restart_needed =
      IsRunning() && (!had_signal || Contains(*changed, "recovery_target_timeline"));
  return out;
}

Result<ConfigChange> LocalPostgres::ClearStandby() {
  auto params = ReadManagedParameters();
  if (!params) return Fail(params.error());
  for (std::string_view key : kStandbyKeys) params->erase(std::string(key));
  auto changed = WriteManagedFile(std::move(*params));
  if (!changed) return Fail(changed.error());
  std::error_code ec;
  bool had_signal = fs::remove(DataPath("standby.signal"), ec);
  fs::remove(DataPath("recovery.signal"), ec);
  ConfigChange out;
  out.changed = !changed->empty() || had_signal;
  out.changed_parameters = *changed;
  // The standby settings mean nothing outside recovery, and a standby leaves recovery
  // through Promote(), not through a restart.
  out.restart_needed = false;
  return out;
}

}  // namespace pgwarden::postgres
