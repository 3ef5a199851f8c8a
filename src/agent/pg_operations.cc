// The PostgreSQL work the operator asks for through the REST API, run by the PgWorker like the
// core's operations (one at a time, reported in flight):
//  - kApplyConfig: rewrite the managed parameters and pg_hba.conf, then reload (PATCH /config
//    of postgresql.parameters, POST /reload). Parameters that need a restart then show up as
//    pending_restart (pg_settings), as in Patroni.
//  - kRestart: the same rewrite, then stop (fast) and start again in the same role.
// Both keep synchronous_standby_names as it is: dropping it even briefly would acknowledge
// commits that the standby listed in `sync` does not have.
#include <spdlog/spdlog.h>

#include "agent/pg_worker.h"

namespace pgwarden::agent {

namespace {

// The current synchronous_standby_names: as last written by the worker, else as the running
// server has it; nullopt when unknown (server down and never written).
std::optional<std::string> CurrentSyncNames(postgres::LocalPostgres& pg,
                                            const std::optional<core::SyncStandbyNames>& known) {
  if (known) {
    core::SetSynchronousStandbys s{known->names, known->count, known->strict};
    if (known->names.empty() && !known->strict) return std::string();
    return core::SynchronousStandbyNamesValue(s);
  }
  auto r = pg.ExecuteSql("SELECT current_setting('synchronous_standby_names')", {},
                         std::chrono::seconds(5));
  if (!r || r->rows.empty() || r->rows[0].empty() || !r->rows[0][0]) return std::nullopt;
  return *r->rows[0][0];
}

}  // namespace

Result<void> PgWorker::RunOperation(postgres::LocalPostgres& pg, const PgTask& task) {
  std::optional<core::SyncStandbyNames> known;
  {
    std::lock_guard lock(mu_);
    known = sync_names_;
  }
  auto parameters = task.parameters;
  if (auto names = CurrentSyncNames(pg, known); names && !names->empty()) {
    parameters["synchronous_standby_names"] = *names;
  }
  auto change = pg.WriteManagedConfig(parameters);
  if (!change) return Fail(change.error());
  bool hba_changed = false;
  if (!task.hba.empty()) {
    auto hba = pg.WriteHba(task.hba);
    if (!hba) return Fail(hba.error());
    hba_changed = *hba;
  }
  if (task.op == PgOp::kApplyConfig) {
    if (!change->changed && !hba_changed) return Ok();
    std::string names;
    for (const auto& n : change->changed_parameters) names += (names.empty() ? "" : ", ") + n;
    spdlog::info("postgres: configuration changed ({}{}){}", names.empty() ? "pg_hba.conf" : names,
                 hba_changed && !names.empty() ? ", pg_hba.conf" : "",
                 change->restart_needed ? "; some need a restart (pending_restart)" : "");
    if (!pg.IsRunning()) return Ok();  // the next start reads the files
    return pg.Reload();
  }
  // kRestart
  const Duration timeout = task.op_timeout.count() > 0 ? task.op_timeout : options_.start_timeout;
  if (!pg.IsRunning()) return pg.Start(timeout);
  auto stopped = pg.Stop(postgres::StopMode::kFast, options_.stop_timeout);
  if (!stopped) return Fail(stopped.error());
  return pg.Start(timeout);
}

}  // namespace pgwarden::agent
