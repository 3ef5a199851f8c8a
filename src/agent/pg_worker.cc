#include "agent/pg_worker.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/settings.h"
#include "common/process.h"
#include "postgres/conninfo.h"

namespace pgwarden::agent {
namespace fs = std::filesystem;
namespace {

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

bool ValidDataDir(const std::string& dir) {
  return Exists(dir + "/PG_VERSION") && Exists(dir + "/global/pg_control");
}

bool NonEmptyDir(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && !fs::is_empty(dir, ec);
}

// Where timeline `tl` began, from pg_wal/<tl>.history (its last entry's switch point).
std::optional<Lsn> TimelineStart(const std::string& data_dir, Timeline tl) {
  if (tl.value() <= 1) return std::nullopt;
  char name[32];
  std::snprintf(name, sizeof(name), "%08X.history", tl.value());
  std::ifstream in(data_dir + "/pg_wal/" + name);
  std::optional<Lsn> last;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string parent, lsn;
    if (fields >> parent >> lsn) {
      if (auto parsed = Lsn::Parse(lsn)) last = parsed;
    }
  }
  return last;
}

postgres::StopMode ToPgStopMode(core::StopMode mode) {
  return mode == core::StopMode::kImmediate ? postgres::StopMode::kImmediate
                                            : postgres::StopMode::kFast;
}

bool SameShape(const core::LocalPostgres& a, const core::LocalPostgres& b) {
  auto sync_set = [](const core::LocalPostgres& l) {
    std::vector<MemberName> out;
    for (const auto& r : l.replication) {
      if (r.sync && r.streaming) out.push_back(r.name);
    }
    return out;
  };
  return a.data_dir == b.data_dir && a.state == b.state && a.role == b.role &&
         a.timeline == b.timeline && a.system_identifier == b.system_identifier &&
         a.upstream == b.upstream && a.sync_standby_names == b.sync_standby_names &&
         sync_set(a) == sync_set(b);
}

}  // namespace

PgWorker::PgWorker(PgWorkerOptions options, std::function<void()> on_change)
    : options_(std::move(options)), on_change_(std::move(on_change)) {}

PgWorker::~PgWorker() { Stop(); }

void PgWorker::Start() {
  worker_ = std::thread([this] { WorkerLoop(); });
  status_ = std::thread([this] { StatusLoop(); });
}

void PgWorker::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (status_.joinable()) status_.join();
}

std::string PgWorker::MarkerPath() const { return options_.pg.data_dir + ".bootstrap-pending"; }

void PgWorker::Submit(PgTask task) {
  const auto* stop = std::get_if<core::StopPostgres>(&task.action);
  const bool is_stop = stop != nullptr;
  const int sig = is_stop && stop->mode == core::StopMode::kImmediate ? SIGQUIT : SIGINT;
  bool busy;
  {
    std::lock_guard lock(mu_);
    busy = running_.has_value();
    if (is_stop) queue_.clear();  // a stop supersedes anything queued
    queue_.push_back(std::move(task));
  }
  if (is_stop && busy) {
    // Preempt: the running task (a promotion, a start) fails when its server goes away.
    SignalPostmaster(sig);
  }
  cv_.notify_all();
}

std::optional<core::InFlight> PgWorker::InFlight() const {
  std::lock_guard lock(mu_);
  if (running_) return running_;
  if (!queue_.empty()) return core::InFlight{queue_.front().action, SteadyClock::now()};
  return std::nullopt;
}

std::vector<core::Outcome> PgWorker::TakeOutcomes() {
  std::lock_guard lock(mu_);
  std::vector<core::Outcome> out;
  out.swap(outcomes_);
  return out;
}

PgFacts PgWorker::Facts() const {
  std::lock_guard lock(mu_);
  PgFacts f = facts_;
  f.local.upstream = upstream_;
  f.local.sync_standby_names = sync_names_;
  return f;
}

std::optional<MemberName> PgWorker::Upstream() const {
  std::lock_guard lock(mu_);
  return upstream_;
}

void PgWorker::SetSlots(std::optional<std::vector<std::string>> slots) {
  std::lock_guard lock(mu_);
  slots_ = std::move(slots);
}

std::optional<pid_t> PgWorker::PostmasterPid() const {
  std::ifstream in(options_.pg.data_dir + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 1) return std::nullopt;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return std::nullopt;
  return static_cast<pid_t>(pid);
}

bool PgWorker::SignalPostmaster(int sig) const {
  auto pid = PostmasterPid();
  if (!pid) return false;
  return ::kill(*pid, sig) == 0;
}

bool PgWorker::StopImmediatelyNow(Duration grace) {
  auto pid = PostmasterPid();
  if (!pid) return false;
  ::kill(*pid, SIGQUIT);
  ::kill(*pid, SIGCONT);  // a frozen postmaster handles the SIGQUIT as soon as it runs
  const SteadyTime deadline = SteadyClock::now() + grace;
  while (SteadyClock::now() < deadline) {
    if (::kill(*pid, 0) != 0) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  spdlog::warn("postmaster {} still alive after SIGQUIT: SIGKILL", *pid);
  ::kill(*pid, SIGKILL);
  return true;
}

void PgWorker::ConfirmBootstrap() {
  std::error_code ec;
  fs::remove(MarkerPath(), ec);
}

void PgWorker::WorkerLoop() {
  postgres::LocalPostgres pg(options_.pg);
  while (true) {
    PgTask task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      running_ = core::InFlight{task.action, SteadyClock::now()};
    }
    const std::string what = core::Describe(task.action);
    spdlog::info("postgres: {} ...", what);
    const SteadyTime started = SteadyClock::now();
    Result<void> result = RunTask(pg, task);
    const auto took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started);
    if (result) {
      spdlog::info("postgres: {} done in {} ms", what, took.count());
    } else {
      spdlog::warn("postgres: {} failed after {} ms: {}", what, took.count(),
                   result.error().ToString());
    }
    if (task.on_done) task.on_done(result);
    PgFacts facts = Observe(pg, SteadyClock::now());
    {
      std::lock_guard lock(mu_);
      outcomes_.push_back(core::Outcome{task.action, result});
      running_.reset();
    }
    Publish(std::move(facts));
    on_change_();
  }
}

void PgWorker::StatusLoop() {
  postgres::LocalPostgres pg(options_.pg);
  int turn = 0;
  std::vector<std::string> synced;
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, options_.poll_interval, [this] { return stop_; })) return;
    }
    PgFacts facts = Observe(pg, SteadyClock::now());
    cached_postmaster_pid_ = PostmasterPid().value_or(0);
    const bool primary = facts.local.Running() && facts.local.role == core::PgRole::kPrimary;
    Publish(facts);
    std::optional<std::vector<std::string>> want;
    {
      std::lock_guard lock(mu_);
      want = slots_;
    }
    if (!primary || !want) {
      synced.clear();
      continue;
    }
    if (*want == synced && ++turn % 8 != 0) continue;
    auto slots = pg.ListSlots();
    if (!slots) continue;
    bool ok = true;
    for (const std::string& name : *want) {
      bool have = false;
      for (const auto& s : *slots) have = have || s.name == name;
      if (!have) {
        if (auto r = pg.CreatePhysicalSlot(name); !r) {
          spdlog::warn("creating slot {}: {}", name, r.error().ToString());
          ok = false;
        }
      }
    }
    for (const auto& s : *slots) {
      if (s.type != "physical" || s.active) continue;
      if (std::find(want->begin(), want->end(), s.name) == want->end()) {
        if (auto r = pg.DropSlot(s.name); !r) ok = false;
      }
    }
    if (ok) synced = *want;
  }
}

void PgWorker::Publish(PgFacts facts) {
  bool changed;
  {
    std::lock_guard lock(mu_);
    if (facts.observed_at < facts_.observed_at) return;  // an older observation finished late
    facts.local.upstream = upstream_;
    facts.local.sync_standby_names = sync_names_;
    changed = !SameShape(facts.local, facts_.local);
    facts_ = std::move(facts);
  }
  if (changed) on_change_();
}

PgFacts PgWorker::Observe(postgres::LocalPostgres& pg, SteadyTime started) {
  PgFacts f;
  f.observed_at = started;
  core::LocalPostgres& l = f.local;
  const std::string& dir = options_.pg.data_dir;
  if (!ValidDataDir(dir)) {
    l.data_dir = core::DataDirState::kEmpty;
    l.state = pg.IsRunning() ? core::ProcessState::kRunning : core::ProcessState::kStopped;
    return f;
  }
  l.data_dir = Exists(MarkerPath()) ? core::DataDirState::kBootstrapPending
                                    : core::DataDirState::kInitialized;
  auto control = pg.ReadControlData();
  if (control) {
    f.control = *control;
    l.system_identifier = std::to_string(control->system_identifier);
  }
  if (pg.IsRunning()) {
    auto status = pg.Status();
    if (status && status->accepting_connections) {
      l.state = core::ProcessState::kRunning;
      l.role = status->in_recovery ? core::PgRole::kReplica : core::PgRole::kPrimary;
      l.timeline = status->timeline;
      if (status->current_wal_lsn) l.write_lsn = *status->current_wal_lsn;
      if (status->received_lsn) l.received_lsn = *status->received_lsn;
      if (status->replayed_lsn) l.replayed_lsn = *status->replayed_lsn;
      l.pending_restart = !status->pending_restart.empty();
      f.status = *status;
      if (!status->in_recovery && !status->replication.empty()) {
        // Synchronous replication: the core needs a flush LSN read AFTER the rows (Status()
        // reads it before pg_stat_replication), hence a second query; without it, no rows.
        auto again = pg.Status();
        if (again && again->flush_wal_lsn) {
          l.flush_lsn = *again->flush_wal_lsn;
          for (const auto& r : status->replication) {
            l.replication.push_back(
                core::StandbyReplication{MemberName(r.application_name), r.state == "streaming",
                                         r.sync_state == "sync" || r.sync_state == "quorum",
                                         r.flush_lsn.value_or(Lsn()), r.write_lsn, r.replay_lsn});
          }
        }
      }
    } else {
      l.state = core::ProcessState::kStarting;
      // Starting up: what it will be follows from standby.signal.
      l.role = Exists(dir + "/standby.signal") ? core::PgRole::kReplica : core::PgRole::kPrimary;
      if (control) l.timeline = control->checkpoint_timeline;
    }
  } else if (control) {
    const bool in_production = control->cluster_state == "in production";
    l.state = in_production ? core::ProcessState::kCrashed : core::ProcessState::kStopped;
    const bool standby_signal = Exists(dir + "/standby.signal");
    const bool primary_state = in_production || control->cluster_state == "shut down";
    l.role = (primary_state && !standby_signal) ? core::PgRole::kPrimary : core::PgRole::kReplica;
    l.timeline = std::max(control->checkpoint_timeline, control->min_recovery_end_timeline);
    const Lsn end = std::max(control->checkpoint_lsn, control->min_recovery_end_lsn);
    if (l.role == core::PgRole::kPrimary) {
      l.write_lsn = end;
    } else {
      l.received_lsn = end;
      l.replayed_lsn = end;
    }
  }
  l.timeline_start_lsn = TimelineStart(dir, l.timeline);
  return f;
}

Result<void> PgWorker::WipeDataDir() {
  std::error_code ec;
  const std::string& dir = options_.pg.data_dir;
  if (!fs::exists(dir, ec)) return Ok();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    fs::remove_all(entry.path(), ec);
    if (ec)
      return Fail(ErrorCode::kFailed, "removing " + entry.path().string() + ": " + ec.message());
  }
  return Ok();
}

Result<void> PgWorker::ConfigureAsStandby(postgres::LocalPostgres& pg, const PgTask& task) {
  if (auto r = pg.WriteManagedConfig(task.parameters); !r) return Fail(r.error());
  {
    std::lock_guard lock(mu_);
    sync_names_ = core::SyncStandbyNames{};  // the rewritten config has none
  }
  if (!task.source) {
    // Recovery without a (known) upstream: standby.signal alone. A primary_conninfo left from
    // before is harmless: the core sends Follow once there is a leader.
    const std::string signal = options_.pg.data_dir + "/standby.signal";
    { std::ofstream out(signal); }
    if (!Exists(signal)) return Fail(ErrorCode::kFailed, "cannot create " + signal);
    struct stat st {};
    if (::stat(options_.pg.data_dir.c_str(), &st) == 0) {
      if (::chown(signal.c_str(), st.st_uid, st.st_gid) != 0) {
        spdlog::warn("chown {}: {}", signal, std::strerror(errno));
      }
    }
    std::lock_guard lock(mu_);
    upstream_.reset();
    return Ok();
  }
  postgres::StandbyConfig standby;
  standby.primary_conninfo = postgres::BuildSourceConninfo(
      {task.source->host, task.source->port, options_.pg.replication.username,
       options_.pg.replication.password, options_.me.str(), "", 5});
  standby.primary_slot_name = SlotNameFor(options_.me);
  auto change = pg.ConfigureStandby(standby);
  if (!change) return Fail(change.error());
  std::lock_guard lock(mu_);
  upstream_ = task.source->name;
  return Ok();
}

Result<void> PgWorker::RunTask(postgres::LocalPostgres& pg, const PgTask& task) {
  if (task.op != PgOp::kCore) return RunOperation(pg, task);
  const auto& a = task.action;
  if (std::holds_alternative<core::InitDb>(a)) return Bootstrap(pg, task);
  if (const auto* stop = std::get_if<core::StopPostgres>(&a)) {
    auto r = pg.Stop(ToPgStopMode(stop->mode), options_.stop_timeout);
    if (!r) return Fail(r.error());
    return Ok();
  }
  if (const auto* ssn = std::get_if<core::SetSynchronousStandbys>(&a)) {
    auto parameters = task.parameters;
    parameters["synchronous_standby_names"] = core::SynchronousStandbyNamesValue(*ssn);
    if (auto r = pg.WriteManagedConfig(parameters); !r) return Fail(r.error());
    if (auto r = pg.Reload(); !r) return r;
    std::lock_guard lock(mu_);
    sync_names_ = core::AppliedBy(*ssn);
    return Ok();
  }
  if (const auto* start = std::get_if<core::StartPostgres>(&a)) {
    if (auto r = pg.WriteManagedConfig(task.parameters); !r) return Fail(r.error());
    {
      std::lock_guard lock(mu_);
      sync_names_ = core::SyncStandbyNames{};  // the rewritten config has none
    }
    if (!task.hba.empty()) {
      if (auto r = pg.WriteHba(task.hba); !r) return Fail(r.error());
    }
    if (start->role == core::StartRole::kReplica) {
      if (auto r = ConfigureAsStandby(pg, task); !r) return r;
    } else {
      if (auto r = pg.ClearStandby(); !r) return Fail(r.error());
      std::lock_guard lock(mu_);
      upstream_.reset();
    }
    return pg.Start(options_.start_timeout);
  }
  if (std::holds_alternative<core::Promote>(a)) {
    if (auto r = pg.Promote(options_.promote_timeout); !r) return r;
    {
      std::lock_guard lock(mu_);
      upstream_.reset();
    }
    if (auto r = pg.ClearStandby(); !r) spdlog::warn("after promotion: {}", r.error().ToString());
    return Ok();
  }
  if (std::holds_alternative<core::Follow>(a)) {
    if (!task.source) return Fail(ErrorCode::kInvalidArgument, "follow: leader has no conn_url");
    postgres::StandbyConfig standby;
    standby.primary_conninfo = postgres::BuildSourceConninfo(
        {task.source->host, task.source->port, options_.pg.replication.username,
         options_.pg.replication.password, options_.me.str(), "", 5});
    standby.primary_slot_name = SlotNameFor(options_.me);
    auto change = pg.ConfigureStandby(standby);
    if (!change) return Fail(change.error());
    Result<void> applied = change->restart_needed
                               ? pg.Restart(postgres::StopMode::kFast, options_.start_timeout)
                               : pg.Reload();
    if (!applied) return applied;
    std::lock_guard lock(mu_);
    upstream_ = task.source->name;
    return Ok();
  }
  if (const auto* clone = std::get_if<core::CloneFrom>(&a)) {
    if (!task.source) return Fail(ErrorCode::kInvalidArgument, "clone: source has no conn_url");
    if (clone->remove_existing) {
      if (pg.IsRunning()) StopImmediatelyNow(std::chrono::seconds(5));
      if (auto r = WipeDataDir(); !r) return r;
    } else if (ValidDataDir(options_.pg.data_dir)) {
      return Fail(ErrorCode::kFailed, "clone: the data directory is not empty");
    } else if (NonEmptyDir(options_.pg.data_dir)) {
      if (auto r = WipeDataDir(); !r) return r;  // a partial leftover
    }
    std::error_code ec;
    fs::remove(MarkerPath(), ec);
    const std::string conninfo = postgres::BuildSourceConninfo(
        {task.source->host, task.source->port, options_.pg.replication.username,
         options_.pg.replication.password, options_.me.str(), "", 5});
    if (auto r = pg.BaseBackup(conninfo, options_.clone_timeout); !r) {
      WipeDataDir();
      return r;
    }
    return ConfigureAsStandby(pg, task);
  }
  if (std::holds_alternative<core::Rewind>(a)) {
    if (!task.source) return Fail(ErrorCode::kInvalidArgument, "rewind: source has no conn_url");
    if (pg.IsRunning()) {
      if (auto r = pg.Stop(postgres::StopMode::kFast, options_.stop_timeout); !r) {
        return Fail(r.error());
      }
    }
    const std::string conninfo = postgres::BuildSourceConninfo(
        {task.source->host, task.source->port, options_.pg.superuser.username,
         options_.pg.superuser.password, options_.me.str(), "postgres", 5});
    auto r = pg.Rewind(conninfo, options_.rewind_timeout);
    if (!r) return Fail(r.error());
    spdlog::info("pg_rewind: {} ({})", postgres::ToString(r->outcome), r->detail);
    if (r->outcome == postgres::RewindResult::Outcome::kImpossible) {
      return Fail(ErrorCode::kFailed, "pg_rewind impossible: " + r->detail);
    }
    return ConfigureAsStandby(pg, task);
  }
  return Fail(ErrorCode::kInvalidArgument, "not a PostgreSQL operation: " + core::Describe(a));
}

Result<void> PgWorker::Bootstrap(postgres::LocalPostgres& pg, const PgTask& task) {
  const std::string& dir = options_.pg.data_dir;
  if (ValidDataDir(dir)) return Fail(ErrorCode::kFailed, "initdb: " + dir + " is not empty");
  if (NonEmptyDir(dir)) {
    if (auto r = WipeDataDir(); !r) return r;
  }
  // The marker goes first: a crash at any later point leaves a directory that is known to be
  // an unfinished bootstrap, never one that passes for an initialized member.
  { std::ofstream(MarkerPath()) << "bootstrap started\n"; }
  auto fail = [&](Error e) -> Result<void> {
    StopImmediatelyNow(std::chrono::seconds(5));
    WipeDataDir();
    std::error_code ec;
    fs::remove(MarkerPath(), ec);
    return Fail(std::move(e));
  };
  if (auto r = pg.InitDb(task.initdb); !r) return fail(r.error());
  if (auto r = pg.WriteManagedConfig(task.parameters); !r) return fail(r.error());
  {
    std::lock_guard lock(mu_);
    sync_names_ = core::SyncStandbyNames{};  // the new config has none
  }
  if (auto r = pg.WriteHba(task.hba); !r) return fail(r.error());
  if (auto r = pg.Start(options_.start_timeout); !r) return fail(r.error());
  const auto& su = options_.pg.superuser;
  const auto& repl = options_.pg.replication;
  postgres::RoleSpec superuser{su.username, std::nullopt, true, false, true};
  if (!su.password.empty()) superuser.password = su.password;
  if (auto r = pg.EnsureRole(superuser, std::chrono::seconds(30)); !r) return fail(r.error());
  postgres::RoleSpec replication{repl.username, std::nullopt, false, true, true};
  if (!repl.password.empty()) replication.password = repl.password;
  if (auto r = pg.EnsureRole(replication, std::chrono::seconds(30)); !r) return fail(r.error());
  if (!task.post_bootstrap.empty()) {
    Command cmd;
    const std::string url = "postgres://" + su.username + "@" + task.connect_host + ":" +
                            std::to_string(task.connect_port) + "/postgres";
    cmd.argv = {task.post_bootstrap, url};
    if (RunningAsRoot()) cmd.run_as_user = options_.pg.os_user;
    if (!su.password.empty()) cmd.env["PGPASSWORD"] = su.password;
    auto r = RunChecked(cmd, std::chrono::minutes(5));
    if (!r) return fail(Error{ErrorCode::kFailed, "post_bootstrap: " + r.error().message});
    spdlog::info("post_bootstrap {} done", task.post_bootstrap);
  }
  return Ok();
}

}  // namespace pgwarden::agent
