// The agent's side of the operator interface: the requests of POST /restart, /reinitialize,
// /reload (and SIGHUP) carried out by the control thread between HA turns; live application of
// configuration changes (PostgreSQL parameters, the lease ttl); the node's own check of a new
// dynamic config.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "agent/agent_internal.h"
#include "agent/settings.h"

namespace pgwarden::agent {
namespace {

constexpr Duration kSubmitTimeout = std::chrono::seconds(10);
constexpr int kMaxLeaseMoveConflicts = 5;

Result<void> WaitFor(std::future<Result<void>>& future, Duration timeout, const char* what) {
  if (future.wait_for(timeout) != std::future_status::ready) {
    return Fail(ErrorCode::kTimeout,
                std::string(what) + ": no answer within " +
                    std::to_string(std::chrono::duration_cast<seconds>(timeout).count()) + " s");
  }
  try {
    return future.get();
  } catch (const std::future_error&) {
    return Fail(ErrorCode::kCancelled, std::string(what) + ": the agent is stopping");
  }
}

void SetOnce(std::promise<Result<void>>& p, Result<void> value) {
  try {
    p.set_value(std::move(value));
  } catch (const std::future_error&) {
  }
}

}  // namespace

std::optional<std::string> Agent::CheckDynamicConfig(const std::string& config_json) const {
  auto loaded = config::DynamicConfigFromJson(config_json, "config");
  if (!loaded) return loaded.error().message;
  auto timing = config::ResolveHaTiming(loaded->config, pgwarden_settings_);
  if (!timing) return "config: ttl: " + timing.error().message;
  return std::nullopt;
}

Result<void> Agent::QueueOperatorRequest(std::shared_ptr<OperatorRequest> request,
                                         Duration submit_timeout) {
  auto submitted = request->submitted.get_future();
  {
    std::lock_guard lock(op_mu_);
    if (operator_request_) {
      return Fail(ErrorCode::kConflict, "another operator request is still waiting to run");
    }
    operator_request_ = request;
  }
  Wake();
  auto r = WaitFor(submitted, submit_timeout, "operator request");
  if (!r) {
    std::lock_guard lock(op_mu_);
    if (operator_request_ == request) operator_request_.reset();
  }
  return r;
}

Result<std::string> Agent::OperatorRestart(const api::RestartRequest& request) {
  auto snapshot = api_ ? api_->snapshot() : nullptr;
  if (!snapshot) return Fail(ErrorCode::kUnavailable, "no status yet: the agent is starting");
  if (request.schedule) {
    // Patroni's schedule_future_restart: remembered here, carried out by the control thread
    // (CheckScheduledRestart), which checks the conditions when the time comes.
    if (!restart_schedule_.Schedule(
            {request, snapshot->self.postmaster_start_time, std::chrono::system_clock::now()})) {
      return Fail(ErrorCode::kConflict, "Another restart is already scheduled");
    }
    spdlog::info("restart scheduled at {}", api::FormatIsoUtc(*request.schedule));
    Wake();
    return std::string("Restart scheduled");
  }
  if (auto unmet =
          api::RestartConditionsUnmet(request, snapshot->self.role, snapshot->self.server_version,
                                      snapshot->self.pending_restart)) {
    spdlog::info("not proceeding with the restart: {}", *unmet);
    return Fail(ErrorCode::kFailed, "restart conditions are not satisfied");
  }
  auto op = std::make_shared<OperatorRequest>();
  op->kind = OperatorRequest::Kind::kRestart;
  op->timeout = request.timeout;
  auto done = op->done.get_future();
  if (auto r = QueueOperatorRequest(op, kSubmitTimeout); !r) return Fail(r.error());
  const Duration budget = request.timeout.value_or(std::chrono::seconds(60)) + seconds(40);
  auto r = WaitFor(done, budget, "restart");
  if (!r) {
    if (r.error().code == ErrorCode::kTimeout) return Fail(r.error());
    return Fail(ErrorCode::kFailed, "restart failed: " + r.error().message);
  }
  return std::string("restarted successfully");
}

Result<void> Agent::OperatorCancelScheduledRestart() {
  if (!restart_schedule_.Cancel()) return Fail(ErrorCode::kNotFound, "no restarts are scheduled");
  spdlog::info("scheduled restart deleted");
  Wake();
  return Ok();
}

std::optional<SteadyTime> Agent::CheckScheduledRestart() {
  const MemberName me(node_.name);
  uint64_t version = 0;
  std::optional<SteadyTime> wake;
  if (auto scheduled = restart_schedule_.Get(&version)) {
    const SystemTime at = *scheduled->request.schedule;
    const SystemTime now = std::chrono::system_clock::now();
    auto snapshot = api_ ? api_->snapshot() : nullptr;
    const std::optional<SystemTime> started =
        snapshot ? snapshot->self.postmaster_start_time : std::nullopt;
    if (started && scheduled->postmaster_start_time &&
        *started != *scheduled->postmaster_start_time && *started > scheduled->scheduled_at) {
      // As Patroni: PostgreSQL was restarted since the schedule was made; that was the restart.
      if (restart_schedule_.Take(version)) {
        spdlog::info("cancelling the scheduled restart: PostgreSQL was restarted at {} already",
                     api::FormatIsoUtc(*started));
      }
    } else if (dynamic_.pause) {
      // Maintenance mode holds it (Patroni runs no scheduled action while paused); once resumed
      // it runs, or is dropped as stale when its time passed more than 1.5 loop_wait ago.
    } else {
      switch (api::JudgeSchedule(at, now, ha_.loop_wait)) {
        case api::ScheduleVerdict::kWait:
          wake = SteadyClock::now() + std::chrono::duration_cast<Duration>(at - now);
          break;
        case api::ScheduleVerdict::kStale:
          if (restart_schedule_.Take(version)) {
            spdlog::warn("found a stale scheduled restart ({}), cleaning up",
                         api::FormatIsoUtc(at));
          }
          break;
        case api::ScheduleVerdict::kRun: {
          const bool pg_busy = worker_->InFlight().has_value();
          std::lock_guard lock(op_mu_);
          if (!snapshot || operator_request_ || pg_busy) {
            wake = SteadyClock::now() + milliseconds(200);  // after what runs now
            break;
          }
          if (!restart_schedule_.Take(version)) break;  // cancelled meanwhile
          if (auto unmet = api::RestartConditionsUnmet(scheduled->request, snapshot->self.role,
                                                       snapshot->self.server_version,
                                                       snapshot->self.pending_restart)) {
            spdlog::warn("scheduled restart at {}: not restarting, {}", api::FormatIsoUtc(at),
                         *unmet);
            break;
          }
          spdlog::info("scheduled restart at {}: restarting PostgreSQL", api::FormatIsoUtc(at));
          auto op = std::make_shared<OperatorRequest>();
          op->kind = OperatorRequest::Kind::kRestart;
          op->timeout = scheduled->request.timeout;
          operator_request_ = std::move(op);  // RunOperatorRequest, this turn: as POST /restart
          break;
        }
      }
    }
  }
  // The member key shows the schedule (Patroni's touch_member): rewritten when it changed.
  auto current = restart_schedule_.Get(&version);
  if (version != restart_schedule_published_ && view_) {
    const core::Member* stored = view_->FindMember(me);
    const int64_t lease = keeper_->Facts().id;
    if (stored && lease != 0) {
      std::optional<std::string> json;
      if (current) json = api::ScheduledRestartJson(*current, true);
      if (auto r = store_->WriteMember(*stored, lease, json); !r) {
        spdlog::warn("publishing the scheduled restart in the member key: {}",
                     r.error().ToString());
      } else {
        restart_schedule_published_ = version;
      }
    }
  }
  return wake;
}

Result<void> Agent::OperatorReinitialize(bool force) {
  auto op = std::make_shared<OperatorRequest>();
  op->kind = OperatorRequest::Kind::kReinitialize;
  (void)force;  // a running operation is never cut short; the request waits for it instead
  return QueueOperatorRequest(op, kSubmitTimeout);
}

Result<void> Agent::OperatorReload() {
  if (config_path_.empty()) {
    return Fail(ErrorCode::kFailed, "the agent was not started from a config file");
  }
  auto loaded = config::LoadConfigFile(config_path_);
  if (!loaded) {
    return Fail(ErrorCode::kInvalidArgument,
                "not reloaded, the running configuration stays: " + loaded.error().message);
  }
  for (const auto& w : loaded->warnings) spdlog::warn("{}", w);
  auto op = std::make_shared<OperatorRequest>();
  op->kind = OperatorRequest::Kind::kReload;
  op->reloaded = std::move(loaded->config);
  return QueueOperatorRequest(op, kSubmitTimeout);
}

void Agent::ApplyLocalConfig(const config::Config& reloaded) {
  // What cannot change without restarting the agent is reported and kept.
  std::vector<std::string> fixed;
  if (reloaded.name != node_.name) fixed.push_back("name");
  if (reloaded.scope != node_.scope) fixed.push_back("scope");
  if (reloaded.dcs_namespace != node_.dcs_namespace) fixed.push_back("namespace");
  if (reloaded.postgresql.data_dir != node_.postgresql.data_dir) fixed.push_back("data_dir");
  if (reloaded.restapi.listen.ToString() != node_.restapi.listen.ToString()) {
    fixed.push_back("restapi.listen");
  }
  if (reloaded.postgresql.connect_address.ToString() !=
      node_.postgresql.connect_address.ToString()) {
    fixed.push_back("postgresql.connect_address");
  }
  if (reloaded.pgwarden.keepalive_interval != node_.pgwarden.keepalive_interval ||
      reloaded.pgwarden.keepalive_timeout != node_.pgwarden.keepalive_timeout) {
    fixed.push_back("pgwarden.keepalive_*");
  }
  for (const auto& f : fixed) {
    spdlog::warn("reload: {} changed in the file; it takes effect at the next agent start", f);
  }
  node_.postgresql.parameters = reloaded.postgresql.parameters;
  node_.postgresql.pg_hba = reloaded.postgresql.pg_hba;
  node_.postgresql.use_pg_rewind = reloaded.postgresql.use_pg_rewind;
  node_.postgresql.remove_data_directory_on_rewind_failure =
      reloaded.postgresql.remove_data_directory_on_rewind_failure;
  node_.tags = reloaded.tags;
  std::string adjusted;
  ha_ = MakeHaConfig(node_, dynamic_, &adjusted);
  if (!adjusted.empty()) spdlog::warn("HA timing adjusted for the decision core: {}", adjusted);
  applied_parameters_.reset();  // rewrite and reload PostgreSQL's files (pg_hba too)
  spdlog::info("reload: {} applied", config_path_);
}

void Agent::RunOperatorRequest() {
  std::shared_ptr<OperatorRequest> op;
  {
    std::lock_guard lock(op_mu_);
    op = operator_request_;
  }
  if (!op) return;
  auto finish = [&](Result<void> submitted) {
    {
      std::lock_guard lock(op_mu_);
      if (operator_request_ == op) operator_request_.reset();
    }
    const bool ok = submitted.has_value();
    SetOnce(op->submitted, std::move(submitted));
    if (!ok) SetOnce(op->done, Fail(ErrorCode::kCancelled, "not started"));
  };
  if (op->kind == OperatorRequest::Kind::kReload) {
    ApplyLocalConfig(*op->reloaded);
    finish(Ok());
    SetOnce(op->done, Ok());
    Wake();
    return;
  }
  if (worker_->InFlight()) return;  // after the operation that runs now (the core's)
  const MemberName me(node_.name);
  PgFacts facts = worker_->Facts();
  if (op->kind == OperatorRequest::Kind::kReinitialize) {
    if (leader_) {
      finish(Fail(ErrorCode::kFailed, "I am the leader, can not reinitialize"));
      return;
    }
    if (!view_ || !view_->leader) {
      finish(Fail(ErrorCode::kFailed, "Cluster has no leader, can not reinitialize"));
      return;
    }
    if (view_->leader->holder == me) {
      finish(Fail(ErrorCode::kFailed, "I am the leader, can not reinitialize"));
      return;
    }
    PgTask task = MakeTask(core::CloneFrom{view_->leader->holder, true});
    if (!task.source) {
      finish(Fail(ErrorCode::kFailed,
                  "the leader " + view_->leader->holder.str() + " has no usable conn_url"));
      return;
    }
    spdlog::info("reinitialize: wiping the data directory and cloning from {}",
                 view_->leader->holder.str());
    task.on_done = [op](const Result<void>& r) {
      if (!r) spdlog::error("reinitialize failed: {}", r.error().ToString());
      SetOnce(op->done, r);
    };
    worker_->Submit(std::move(task));
    finish(Ok());
    return;
  }
  // kRestart: in the role PostgreSQL has now; the leader keeps its lock throughout (the core
  // sees a start as primary in flight, which it waits for, up to primary_start_timeout).
  const bool primary = leader_ && facts.local.role == core::PgRole::kPrimary;
  core::StartPostgres start;
  start.role = primary ? core::StartRole::kPrimary : core::StartRole::kReplica;
  if (!primary) start.upstream = worker_->Upstream();
  if (!facts.local.Running() && facts.local.data_dir != core::DataDirState::kInitialized) {
    finish(Fail(ErrorCode::kFailed, "PostgreSQL has no data directory yet: nothing to restart"));
    return;
  }
  PgTask task = MakeTask(start);
  task.op = PgOp::kRestart;
  if (op->timeout) task.op_timeout = *op->timeout;
  task.on_done = [op](const Result<void>& r) {
    if (!r) spdlog::error("restart failed: {}", r.error().ToString());
    SetOnce(op->done, r);
  };
  spdlog::info("restart requested: restarting PostgreSQL as {}", primary ? "primary" : "replica");
  applied_parameters_ = task.parameters;
  worker_->Submit(std::move(task));
  finish(Ok());
}

void Agent::ApplyParametersIfChanged() {
  if (apply_failed_.exchange(false)) applied_parameters_.reset();
  PgFacts facts = worker_->Facts();
  if (!facts.local.Running() || facts.local.data_dir != core::DataDirState::kInitialized) return;
  if (worker_->InFlight()) return;
  auto want = ManagedParameters(node_, dynamic_);
  if (applied_parameters_ && *applied_parameters_ == want) return;
  // Reported in flight as a re-application of the current synchronous_standby_names, which the
  // task keeps as it is.
  core::SetSynchronousStandbys label;
  if (facts.local.sync_standby_names) {
    label.names = facts.local.sync_standby_names->names;
    label.count = facts.local.sync_standby_names->count;
    label.strict = facts.local.sync_standby_names->strict;
  }
  PgTask task = MakeTask(label);
  task.op = PgOp::kApplyConfig;
  task.on_done = [this](const Result<void>& r) {
    if (!r) {
      spdlog::warn("applying the PostgreSQL configuration: {}", r.error().ToString());
      apply_failed_ = true;
    }
  };
  worker_->Submit(std::move(task));
  applied_parameters_ = std::move(want);
}

void Agent::MoveKeysToSuccessorLease() {
  auto successor = keeper_->PendingSuccessor();
  if (!successor) return;
  const int64_t old_id = keeper_->Facts().id;
  const MemberName me(node_.name);
  std::vector<dcs::Compare> compares;
  std::vector<dcs::TxnOp> puts;
  for (const std::string& key : {keys_.leader, keys_.Member(me)}) {
    auto read = dcs_->Get(key);
    if (!read) {
      spdlog::warn("moving our keys to lease {:x}: reading {}: {}", successor->id, key,
                   read.error().ToString());
      return;  // next turn; both leases stay alive meanwhile
    }
    if (read->kvs.empty()) continue;
    const dcs::KeyValue& kv = read->kvs.front();
    if (key == keys_.leader && kv.value != me.str()) continue;  // not ours
    if (kv.lease != old_id) continue;  // already moved (or on a lease that is not ours)
    compares.push_back(dcs::Compare::ModRevisionEquals(key, kv.mod_revision));
    puts.push_back(dcs::PutOp{key, kv.value, successor->id});
  }
  if (!puts.empty()) {
    auto txn = dcs_->Txn(compares, puts);
    if (!txn) {
      // Unknown outcome: the next turn reads the keys again and sees where they are.
      spdlog::warn("moving our keys to lease {:x}: {}", successor->id, txn.error().ToString());
      return;
    }
    if (!txn->succeeded) {
      if (++lease_move_conflicts_ >= kMaxLeaseMoveConflicts) {
        spdlog::warn("moving our keys to lease {:x}: they kept changing; giving it up",
                     successor->id);
        keeper_->Abandon(successor->id);
        lease_move_conflicts_ = 0;
      }
      Wake();
      return;
    }
  }
  lease_move_conflicts_ = 0;
  keeper_->Adopt(successor->id);
  spdlog::info("our keys are on lease {:x} (ttl {}s) now; lease {:x} is revoked", successor->id,
               successor->ttl.count(), old_id);
}

}  // namespace pgwarden::agent
