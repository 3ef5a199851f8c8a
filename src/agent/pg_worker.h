// The agent's PostgreSQL side: a worker thread that carries out the core's long operations
// (initdb + bootstrap, clone, start, stop, promote, follow, rewind) one at a time, and a status
// thread that polls the server every ~250 ms into a snapshot, each with its own LocalPostgres
// (LocalPostgres is not thread-safe). The control thread never calls PostgreSQL itself: it
// submits a task, reports it as in flight, and gets the outcome through `on_done`.
//
// A StopPostgres preempts the running task: the postmaster is signalled directly (SIGQUIT for
// immediate, SIGINT for fast), which also makes the running task fail, and the stop is then
// confirmed by the worker.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "core/actions.h"
#include "core/model.h"
#include "postgres/local_postgres.h"

namespace pgwarden::agent {

// What the status thread (or the worker, after an operation) last saw.
struct PgFacts {
  core::LocalPostgres local;
  std::optional<postgres::PgStatus> status;  // when running and answering
  std::optional<postgres::ControlData> control;
  SteadyTime observed_at{};  // when the observation STARTED
};

// Where to copy / stream from: a member's PostgreSQL over TCP.
struct SourceServer {
  MemberName name;
  std::string host;
  int port = 0;
};

// Who asked for a task: the core (its action is carried out), or the operator through the REST
// API (pg_operations.cc; `action` is then what the core sees in flight: StartPostgres for a
// restart, SetSynchronousStandbys for a config reload).
enum class PgOp { kCore, kApplyConfig, kRestart };

// Everything a task needs besides the action.
struct PgTask {
  core::Action action;
  std::optional<SourceServer> source;  // CloneFrom / Rewind / Follow / StartPostgres(replica)
  std::map<std::string, std::string> parameters;
  std::vector<postgres::HbaEntry> hba;
  // Bootstrap (InitDb) only.
  postgres::InitDbOptions initdb;
  std::string post_bootstrap;  // script, run with a connection URL argument
  std::string connect_host;    // for the URL given to post_bootstrap
  int connect_port = 0;
  PgOp op = PgOp::kCore;
  Duration op_timeout{};  // kRestart: the start timeout; zero: the worker's own
  // Called on the worker thread with the result when the task ends (operator requests).
  std::function<void(const Result<void>&)> on_done;
};

struct PgWorkerOptions {
  postgres::LocalPostgresOptions pg;
  MemberName me;
  Duration start_timeout = std::chrono::seconds(60);
  Duration stop_timeout = std::chrono::seconds(30);
  Duration promote_timeout = std::chrono::seconds(60);
  Duration clone_timeout = std::chrono::seconds(600);
  Duration rewind_timeout = std::chrono::seconds(600);
  Duration poll_interval = std::chrono::milliseconds(250);
};

class PgWorker {
 public:
  // `on_change` is called (from the worker or status thread) when a task ends or the status
  // snapshot changes in a way the control thread should see.
  PgWorker(PgWorkerOptions options, std::function<void()> on_change);
  ~PgWorker();  // Stop()s

  void Start();
  void Stop();

  // Starts `task` (a StopPostgres preempts the one running). The outcome comes from TakeOutcomes.
  void Submit(PgTask task);
  // The task running or queued, if any.
  std::optional<core::InFlight> InFlight() const;
  // Outcomes of tasks that ended since the last call.
  std::vector<core::Outcome> TakeOutcomes();
  PgFacts Facts() const;
  // The replication slots the status thread keeps on a running primary (SyncSlots).
  void SetSlots(std::optional<std::vector<std::string>> slots);

  // Sends `sig` to the postmaster named by postmaster.pid; true if one was signalled.
  // Async-signal fast: no PostgreSQL call. Used by the fence and for preemption.
  bool SignalPostmaster(int sig) const;
  // SIGQUIT, then SIGKILL after `grace` if still alive; waits (bounded) for it to go.
  // Returns whether a postmaster was there to stop.
  bool StopImmediatelyNow(Duration grace);
  // `initialize` now holds our system identifier: the bootstrap is complete.
  void ConfirmBootstrap();
  std::optional<pid_t> PostmasterPid() const;
  // The postmaster's pid as the status thread last saw it (0: none), without touching the disk:
  // for the fence thread, which a hung file system must never block.
  pid_t CachedPostmasterPid() const { return cached_postmaster_pid_.load(); }
  // The last upstream the worker configured (primary_conninfo); nullopt: none or unknown.
  std::optional<MemberName> Upstream() const;

  const PgWorkerOptions& options() const { return options_; }

 private:
  void WorkerLoop();
  void StatusLoop();
  Result<void> RunTask(postgres::LocalPostgres& pg, const PgTask& task);
  Result<void> Bootstrap(postgres::LocalPostgres& pg, const PgTask& task);
  Result<void> ConfigureAsStandby(postgres::LocalPostgres& pg, const PgTask& task);
  Result<void> WipeDataDir();
  // The operator's tasks (pg_operations.cc).
  Result<void> RunOperation(postgres::LocalPostgres& pg, const PgTask& task);
  PgFacts Observe(postgres::LocalPostgres& pg, SteadyTime started);
  void Publish(PgFacts facts);
  std::string MarkerPath() const;

  PgWorkerOptions options_;
  std::function<void()> on_change_;

  std::atomic<pid_t> cached_postmaster_pid_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::deque<PgTask> queue_;               // guarded by mu_
  std::optional<core::InFlight> running_;  // guarded by mu_
  std::vector<core::Outcome> outcomes_;    // guarded by mu_
  PgFacts facts_;                          // guarded by mu_
  std::optional<MemberName> upstream_;     // guarded by mu_
  // synchronous_standby_names as last written (SetSynchronousStandbys); {} after any other
  // rewrite of the managed config (which leaves it out); nullopt: unknown (agent start).
  std::optional<core::SyncStandbyNames> sync_names_;  // guarded by mu_
  std::optional<std::vector<std::string>> slots_;     // guarded by mu_
  std::thread worker_;
  std::thread status_;
};

}  // namespace pgwarden::agent
