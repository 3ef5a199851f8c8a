#include "agent/agent.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "agent/agent_internal.h"
#include "agent/settings.h"
#include "config/logging.h"

namespace pgwarden::agent {
namespace {

constexpr Duration kFencePeriod = milliseconds(50);
constexpr Duration kRetryPause = milliseconds(500);
// How long a running replica may go without streaming before its timeline and position are
// compared with the cluster history (see ControlTurn).
constexpr Duration kStreamGrace = seconds(10);

template <typename A>
bool Is(const core::Action& a) {
  return std::holds_alternative<A>(a);
}

}  // namespace

Agent::Agent(config::Config node, std::string config_path)
    : node_(std::move(node)),
      config_path_(std::move(config_path)),
      pgwarden_settings_(node_.pgwarden),
      dynamic_(node_.bootstrap.dcs),
      keys_(node_.dcs_namespace, node_.scope) {
  std::string adjusted;
  ha_ = MakeHaConfig(node_, dynamic_, &adjusted);
  if (!adjusted.empty()) spdlog::warn("HA timing adjusted for the decision core: {}", adjusted);
  timing_ = node_.Timing();
}

Agent::~Agent() = default;

void Agent::Wake() {
  {
    std::lock_guard lock(wake_mu_);
    woken_ = true;
  }
  wake_cv_.notify_all();
}

void Agent::RequestStop() {
  stopping_ = true;
  Wake();
}

Result<void> Agent::StartThreads() {
  auto control_dcs = dcs::EtcdDcs::Create(MakeEtcdOptions(node_, ha_.retry_timeout));
  if (!control_dcs) return Fail(control_dcs.error());
  dcs_ = std::move(*control_dcs);
  store_ = std::make_unique<cluster::ClusterStore>(*dcs_, keys_);

  auto keep_dcs = dcs::EtcdDcs::Create(MakeEtcdOptions(node_, timing_.keepalive_timeout));
  if (!keep_dcs) return Fail(keep_dcs.error());
  keeper_ = std::make_unique<LeaseKeeper>(
      std::move(*keep_dcs), timing_.ttl, timing_.keepalive_interval, [this] { Wake(); },
      [this] {
        fence_now_ = true;
        Wake();
      });
  keeper_->SetReconnect(
      [options = MakeEtcdOptions(node_, timing_.keepalive_timeout)](
          Duration timeout) -> std::unique_ptr<dcs::Dcs> {
        dcs::EtcdOptions o = options;
        o.request_timeout = timeout;
        auto d = dcs::EtcdDcs::Create(o);
        if (!d) return nullptr;
        return std::move(*d);
      },
      timing_.keepalive_timeout);

  PgWorkerOptions wo;
  wo.pg = MakePostgresOptions(node_);
  wo.me = MemberName(node_.name);
  worker_ = std::make_unique<PgWorker>(wo, [this] { Wake(); });
  prober_ = std::make_unique<Prober>([this] { Wake(); });

  auto api_dcs = dcs::EtcdDcs::Create(MakeEtcdOptions(node_, ha_.retry_timeout));
  if (!api_dcs) return Fail(api_dcs.error());
  control_ = std::make_unique<AgentControl>(
      *this, std::move(*api_dcs), keys_, ha_.switchover_timeout + ha_.ttl * 2,
      [this](const std::string& json) { return CheckDynamicConfig(json); });
  api_ = std::make_unique<api::PatroniApi>(control_.get());
  api::HttpServerOptions so;
  so.listen = node_.restapi.listen.ToString();
  if (node_.restapi.authentication) {
    so.username = node_.restapi.authentication->username;
    so.password = node_.restapi.authentication->password;
  }
  server_ = std::make_unique<api::HttpServer>(so, api_->Handler());

  auto watch_dcs = dcs::EtcdDcs::Create(MakeEtcdOptions(node_, ha_.retry_timeout));
  if (!watch_dcs) return Fail(watch_dcs.error());

  if (auto r = StartWatchdog(); !r) return r;
  keeper_->Start();
  worker_->Start();
  prober_->Start();
  fence_thread_ = std::thread([this] { FenceLoop(); });
  watch_thread_ = std::thread([this, d = std::shared_ptr<dcs::Dcs>(std::move(*watch_dcs))] {
    {
      std::lock_guard lock(watch_mu_);
      if (threads_stop_) return;
      watch_ = d->WatchPrefix(keys_.prefix);
    }
    WatchLoop();
    std::lock_guard lock(watch_mu_);
    watch_.reset();
  });
  if (auto r = server_->Start(); !r) {
    return Fail(r.error().code, "REST API on " + so.listen + ": " + r.error().message);
  }
  spdlog::info("REST API listening on {}", so.listen);
  return Ok();
}

int Agent::Run() {
  spdlog::info("pgwarden agent {} starting (scope {}, etcd prefix {})", node_.name, node_.scope,
               keys_.prefix);
  if (auto r = StartThreads(); !r) {
    spdlog::critical("cannot start: {}", r.error().ToString());
    Shutdown();
    return 1;
  }
  wake_at_ = SteadyClock::now();
  while (!stopping_) {
    {
      std::unique_lock lock(wake_mu_);
      wake_cv_.wait_until(lock, wake_at_, [this] { return woken_ || stopping_.load(); });
      woken_ = false;
    }
    if (stopping_) break;
    ControlTurn();
  }
  Shutdown();
  return 0;
}

bool Agent::MayAcceptWrites() const {
  if (leader_flag_) return true;
  PgFacts f = worker_->Facts();
  if (f.local.MayAcceptWrites()) return true;
  auto in_flight = worker_->InFlight();
  if (in_flight &&
      (Is<core::Promote>(in_flight->action) ||
       (Is<core::StartPostgres>(in_flight->action) &&
        std::get<core::StartPostgres>(in_flight->action).role == core::StartRole::kPrimary))) {
    return true;
  }
  return false;
}

void Agent::FenceLoop() {
  // The lease end already accounts for a ttl change (the earlier of two leases while our keys
  // move from one to the other): the fence stops writes kFenceMargin before it.
  while (!threads_stop_) {
    std::this_thread::sleep_for(kFencePeriod);
    const int64_t end_ns = keeper_->LeaseEndNs();
    const bool lost = fence_now_.exchange(false);
    if (watchdog_) FeedWatchdog(end_ns);
    if (!lost && end_ns == 0) continue;  // no lease confirmed yet: the core decides at startup
    const SteadyTime now = SteadyClock::now();
    const SteadyTime fence_at =
        SteadyTime(std::chrono::nanoseconds(end_ns)) - config::HaTiming::kFenceMargin;
    const bool expired = lost || now >= fence_at;
    if (!expired || !MayAcceptWrites()) continue;
    if (worker_->StopImmediatelyNow(std::chrono::seconds(2))) {
      const auto late =
          end_ns == 0 ? 0 : std::chrono::duration_cast<milliseconds>(now - fence_at).count();
      spdlog::warn("FENCE: {}; PostgreSQL stopped immediately ({} ms past the fence deadline)",
                   lost ? "the lease is lost" : "no keep-alive confirmed within ttl - 500ms", late);
      leader_flag_ = false;
      Wake();
    }
  }
}

std::optional<std::string> Agent::WatchdogLog() const {
  if (node_.log.dir.empty()) return std::nullopt;  // the agent's own stderr
  return node_.log.dir + "/watchdog.log";
}

Result<void> Agent::StartWatchdog() {
  if (node_.watchdog == config::WatchdogMode::kOff) {
    spdlog::info("watchdog: off (watchdog.mode)");
    return Ok();
  }
  // The watchdog outlives a frozen or killed agent and fences PostgreSQL at its deadline
  // (docs/watchdog.md). This very binary: /proc/self/exe resolved (readable in ps), or the link
  // itself when the file was replaced meanwhile (a package upgrade).
  std::error_code ec;
  const std::string resolved = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  watchdog_exe_ = ec || resolved.ends_with(" (deleted)") ? "/proc/self/exe" : resolved;
  auto wd = std::make_unique<WatchdogClient>();
  if (auto r = wd->Start(watchdog_exe_, WatchdogLog()); !r) {
    if (node_.watchdog == config::WatchdogMode::kRequired) {
      return Fail(r.error().code, "watchdog.mode is required: " + r.error().message);
    }
    spdlog::warn("running without the watchdog: {}", r.error().ToString());
    return Ok();
  }
  spdlog::info("watchdog {} started", wd->pid());
  watchdog_ = std::move(wd);
  return Ok();
}

void Agent::FeedWatchdog(int64_t lease_end_ns) {
  Result<bool> sent = true;
  if (!MayAcceptWrites()) {
    sent = watchdog_->Disarm();
  } else if (const pid_t pm = worker_->CachedPostmasterPid(); pm > 0 && lease_end_ns != 0) {
    sent = watchdog_->Arm(WatchdogDeadline(SteadyTime(std::chrono::nanoseconds(lease_end_ns)),
                                           config::HaTiming::kFenceMargin),
                          pm, node_.postgresql.data_dir);
  }  // else no lease end (lost / not yet confirmed): the last arm stays in force
  if (sent && *sent) return;
  const SteadyTime now = SteadyClock::now();
  if (now - watchdog_complained_ < seconds(10)) return;
  watchdog_complained_ = now;
  spdlog::warn("watchdog: {}", sent ? std::string("its pipe is full (frozen?): command dropped")
                                    : sent.error().ToString());
  if (!sent && sent.error().code == ErrorCode::kUnavailable) {  // it died: start a new one
    watchdog_->Stop(milliseconds(100));
    if (auto r = watchdog_->Start(watchdog_exe_, WatchdogLog()); !r) {
      spdlog::warn("watchdog restart: {}", r.error().ToString());
    }
  }
}

void Agent::WatchLoop() {
  while (!threads_stop_) {
    dcs::Watch* w;
    {
      std::lock_guard lock(watch_mu_);
      w = watch_.get();
    }
    if (!w) return;
    auto batch = w->Next(milliseconds(500));
    if (threads_stop_) return;
    if (batch) {
      if (!batch->events.empty()) Wake();
      continue;
    }
    if (batch.error().code == ErrorCode::kCancelled) return;
    if (batch.error().code == ErrorCode::kCompacted) {
      Wake();
      continue;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

void Agent::ApplyDynamicConfig(const core::ClusterView& view) {
  if (!view.config_json || view.config_mod_revision == dynamic_revision_) return;
  dynamic_revision_ = view.config_mod_revision;
  auto loaded = config::DynamicConfigFromJson(*view.config_json, "etcd " + keys_.config);
  if (!loaded) {
    spdlog::error("ignoring the dynamic config: {}", loaded.error().message);
    return;
  }
  for (const auto& w : loaded->warnings) spdlog::warn("{}", w);
  if (loaded->config == dynamic_) return;
  dynamic_ = loaded->config;
  std::string adjusted;
  ha_ = MakeHaConfig(node_, dynamic_, &adjusted);
  if (!adjusted.empty()) spdlog::warn("HA timing adjusted for the decision core: {}", adjusted);
  spdlog::info("dynamic config applied (revision {})", dynamic_revision_);
  // The lease follows the new ttl (LeaseKeeper grants a successor; MoveKeysToSuccessorLease).
  auto timing = config::ResolveHaTiming(dynamic_, pgwarden_settings_);
  if (!timing) {
    spdlog::error("dynamic ttl {}s: {}; the lease keeps its ttl", dynamic_.ttl.count(),
                  timing.error().message);
    return;
  }
  if (keeper_) {
    keeper_->SetTiming(timing->ttl, timing->keepalive_interval, timing->keepalive_timeout);
  }
}

void Agent::ControlTurn() {
  // A ttl change: our keys move to the successor lease here, on the control thread, so that the
  // lease in this turn's observation and the one the view shows our keys on agree.
  MoveKeysToSuccessorLease();
  core::Observation obs;
  // The lease facts are read before the clock: the fence deadline must not look later than it is.
  std::chrono::seconds lease_ttl{0};
  obs.lease = keeper_->Facts(&lease_ttl);
  auto read = store_->Read();
  obs.now = SteadyClock::now();
  obs.wall_now = std::chrono::system_clock::now();
  if (read) {
    for (const Error& e : read->problems) spdlog::warn("etcd: {}", e.ToString());
    ApplyDynamicConfig(read->view);
    scheduled_restarts_ = std::move(read->scheduled_restarts);
    obs.cluster = std::move(read->view);
    dcs_last_seen_ = obs.wall_now;
  } else {
    spdlog::debug("reading the cluster: {}", read.error().ToString());
  }
  view_ = obs.cluster;
  // Before the decision: a due scheduled restart is queued for RunOperatorRequest below.
  const std::optional<SteadyTime> restart_wake = CheckScheduledRestart();
  PgFacts facts = worker_->Facts();
  obs.pg = facts.local;
  if (obs.cluster && obs.pg.data_dir == core::DataDirState::kBootstrapPending &&
      obs.cluster->initialize && *obs.cluster->initialize == obs.pg.system_identifier &&
      !obs.pg.system_identifier.empty()) {
    worker_->ConfirmBootstrap();
  }
  // Our own divergence check: a stopped former primary on a timeline the cluster has left
  // behind has diverged unless pg_rewind says otherwise (it answers "not needed" cheaply).
  if (obs.cluster && !obs.pg.Running() && obs.pg.state != core::ProcessState::kStarting &&
      obs.pg.data_dir == core::DataDirState::kInitialized &&
      obs.pg.role == core::PgRole::kPrimary && obs.pg.timeline < obs.cluster->ClusterTimeline()) {
    obs.pg.diverged = true;
  }
  // A running replica whose WAL receiver streams follows its upstream's history: PostgreSQL
  // itself refuses to stream a diverged one. Its reported timeline can lag (checkpoint timeline
  // until the receiver reports), which would make the history comparison see a divergence that
  // is not there; so only a replica that has not streamed for a while is judged by history.
  if (obs.pg.Running() && obs.pg.role == core::PgRole::kReplica) {
    const bool streaming =
        facts.status && facts.status->wal_receiver && facts.status->wal_receiver->streaming();
    if (streaming) {
      not_streaming_since_.reset();
      obs.pg.diverged = false;
    } else {
      if (!not_streaming_since_) not_streaming_since_ = obs.now;
      if (obs.now < *not_streaming_since_ + kStreamGrace) obs.pg.diverged = false;
    }
  } else {
    not_streaming_since_.reset();
  }
  obs.in_flight = worker_->InFlight();
  obs.last = std::move(outcomes_);
  outcomes_.clear();
  for (auto& o : worker_->TakeOutcomes()) {
    if (!o.result) {
      last_pg_failure_ = obs.now;
    } else {
      last_pg_failure_.reset();
    }
    obs.last.push_back(std::move(o));
  }
  obs.probes = prober_->Latest();

  // The core's fence deadline is computed with the ttl of the lease actually held, which lags a
  // change of the dynamic ttl until our keys moved to the successor lease.
  core::HaConfig turn_config = ha_;
  if (lease_ttl.count() > 0 && lease_ttl != ha_.ttl) {
    config::DynamicConfig held = dynamic_;
    held.ttl = lease_ttl;
    turn_config = MakeHaConfig(node_, held);
  }
  core::Decision d = core::Decide(memory_, obs, turn_config);
  memory_ = d.next;
  leader_ = d.leader;
  leader_flag_ = d.leader;
  if (d.reason != last_reason_) {
    spdlog::info("{}", d.reason);
    last_reason_ = d.reason;
  }
  wake_at_floor_.reset();
  if (publishing_stopping_ && !(obs.in_flight && Is<core::StopPostgres>(obs.in_flight->action))) {
    publishing_stopping_ = false;
  }
  Execute(d, obs);
  RunOperatorRequest();
  ApplyParametersIfChanged();
  wake_at_ = std::max(d.wake_at, SteadyClock::now() + milliseconds(5));
  if (wake_at_floor_) {
    wake_at_ = *wake_at_floor_;
  } else if (restart_wake) {
    wake_at_ = std::min(wake_at_, std::max(*restart_wake, SteadyClock::now() + milliseconds(5)));
  }
  Publish(d);
}

PgTask Agent::MakeTask(const core::Action& action) const {
  PgTask t;
  t.action = action;
  t.parameters = ManagedParameters(node_, dynamic_);
  std::vector<std::string> problems;
  t.hba = HbaEntries(node_, dynamic_, &problems);
  for (const auto& p : problems) spdlog::warn("{}", p);
  std::optional<MemberName> source;
  if (const auto* a = std::get_if<core::CloneFrom>(&action)) source = a->from;
  if (const auto* a = std::get_if<core::Rewind>(&action)) source = a->from;
  if (const auto* a = std::get_if<core::Follow>(&action)) source = a->leader;
  if (const auto* a = std::get_if<core::StartPostgres>(&action)) source = a->upstream;
  if (source && view_) {
    if (const core::Member* m = view_->FindMember(*source)) {
      if (auto hp = HostPortOfConnUrl(m->conn_url)) {
        t.source = SourceServer{*source, hp->first, hp->second};
      }
    }
  }
  if (Is<core::InitDb>(action)) {
    for (const auto& opt : node_.bootstrap.initdb) {
      if (opt.name == "encoding" && opt.value) {
        t.initdb.encoding = *opt.value;
      } else if ((opt.name == "locale") && opt.value) {
        t.initdb.locale = *opt.value;
      } else if (opt.name == "auth-local" && opt.value) {
        t.initdb.auth_local = *opt.value;
      } else if (opt.name == "auth-host" && opt.value) {
        t.initdb.auth_host = *opt.value;
      } else if (opt.name != "data-checksums" && opt.name != "k") {
        t.initdb.extra_args.push_back(opt.ToArgument());
      }
    }
    t.post_bootstrap = node_.bootstrap.post_bootstrap;
    t.connect_host = node_.postgresql.connect_address.host;
    t.connect_port = node_.postgresql.connect_address.port;
  }
  return t;
}

void Agent::Execute(const core::Decision& d, const core::Observation& obs) {
  const MemberName me(node_.name);
  // Every write of our member key carries the scheduled restart, if any (Patroni's
  // touch_member), so that the core's rewrites keep it.
  auto write_member = [&](const core::Member& m) {
    uint64_t version = 0;
    auto scheduled = restart_schedule_.Get(&version);
    std::optional<std::string> json;
    if (scheduled) json = api::ScheduledRestartJson(*scheduled, true);
    auto r = store_->WriteMember(m, obs.lease.id, json);
    if (r) restart_schedule_published_ = version;
    return r;
  };
  for (const core::Action& action : d.actions) {
    if (SteadyClock::now() > d.valid_until) {
      outcomes_.push_back({action, Fail(ErrorCode::kTimeout,
                                        "decision expired before " + core::ActionName(action))});
      spdlog::warn("decision expired: {} not started", core::Describe(action));
      return;
    }
    if (cluster::ClusterStore::IsEtcdAction(action)) {
      Result<void> r;
      if (const auto* wm = std::get_if<core::WriteMember>(&action)) {
        core::Member m = wm->member;
        // A switchover is stopping PostgreSQL: the member key says "stopping" until it is down.
        if (publishing_stopping_ && m.state == core::PgState::kRunning) {
          m.state = core::PgState::kStopping;
        }
        r = write_member(m);
      } else {
        r = store_->Execute(action, me, obs.lease.id);
      }
      if (r && Is<core::ClaimBootstrap>(action) && !obs.cluster->config_json) {
        // The member that creates the cluster publishes its bootstrap.dcs as `config`.
        auto put = dcs_->Txn({dcs::Compare::Absent(keys_.config)},
                             {dcs::PutOp{keys_.config, node_.bootstrap.dcs.ToJson(), 0}});
        if (!put) spdlog::warn("writing {}: {}", keys_.config, put.error().ToString());
      }
      if (!r) {
        spdlog::log(
            r.error().code == ErrorCode::kConflict ? spdlog::level::info : spdlog::level::warn,
            "{}: {}", core::Describe(action), r.error().ToString());
      } else if (!Is<core::WriteMember>(action) && !Is<core::UpdateLeaderStatus>(action)) {
        spdlog::info("{}: done", core::Describe(action));
      }
      const bool ok = r.has_value();
      outcomes_.push_back({action, std::move(r)});
      if (!ok) return;
      continue;
    }
    if (const auto* probe = std::get_if<core::ProbePeers>(&action)) {
      std::vector<std::pair<MemberName, std::string>> peers;
      for (const MemberName& p : probe->peers) {
        const core::Member* m = obs.cluster ? obs.cluster->FindMember(p) : nullptr;
        peers.emplace_back(p, m ? m->api_url : "");
      }
      prober_->Request(std::move(peers), std::min<Duration>(ha_.retry_timeout, seconds(1)));
      outcomes_.push_back({action, Ok()});
      continue;
    }
    if (const auto* slots = std::get_if<core::SyncSlots>(&action)) {
      worker_->SetSlots(slots->slots);
      outcomes_.push_back({action, Ok()});
      continue;
    }
    if (Is<core::SetSynchronousStandbys>(action)) {
      // Quick (managed config + reload) but it uses PostgreSQL: the worker runs it.
      if (worker_->InFlight()) {
        spdlog::info("{}: another PostgreSQL operation is running; later", core::Describe(action));
        return;
      }
      worker_->Submit(MakeTask(action));
      continue;
    }
    if (!core::IsPostgresOperation(action)) {
      spdlog::error("{}: not supported by this agent", core::Describe(action));
      outcomes_.push_back({action, Fail(ErrorCode::kInvalidArgument,
                                        core::ActionName(action) + ": not supported")});
      return;
    }
    // PostgreSQL operations.
    if (const auto* stop = std::get_if<core::StopPostgres>(&action);
        stop && stop->mode == core::StopMode::kFast && d.next.switchover && obs.cluster) {
      // A planned switchover: publish state "stopping" first, so that the proxies stop sending
      // new clients here before PostgreSQL starts refusing them.
      if (const core::Member* stored = obs.cluster->FindMember(me)) {
        core::Member m = *stored;
        m.state = core::PgState::kStopping;
        m.lease = obs.lease.id;
        if (auto r = write_member(m); !r) {
          spdlog::warn("publishing state stopping: {}", r.error().ToString());
        } else {
          spdlog::info("switchover: member state \"stopping\" published");
        }
      }
      publishing_stopping_ = true;
    }
    if (const auto* stop = std::get_if<core::StopPostgres>(&action)) {
      if (stop->mode == core::StopMode::kImmediate) {
        // Fencing: writes must stop now, not when the worker gets to it; the actions after it
        // (ReleaseLeader) may run only once the server is down.
        worker_->StopImmediatelyNow(std::chrono::seconds(2));
      }
      worker_->Submit(MakeTask(action));
      continue;
    }
    if (worker_->InFlight()) {
      spdlog::warn("{}: another PostgreSQL operation is running; skipped", core::Describe(action));
      return;
    }
    // A failing operation is retried, but not in a tight loop: at most every kRetryPause.
    if (last_pg_failure_ && SteadyClock::now() < *last_pg_failure_ + kRetryPause) {
      wake_at_floor_ = *last_pg_failure_ + kRetryPause;
      return;
    }
    worker_->Submit(MakeTask(action));
  }
  if (d.actions.empty()) return;
}

void Agent::Publish(const core::Decision& d) {
  PgFacts facts = worker_->Facts();
  auto in_flight = worker_->InFlight();
  SnapshotInput in;
  in.node = &node_;
  in.facts = &facts;
  in.in_flight = &in_flight;
  in.view = &view_;
  in.leader = d.leader;
  in.ttl = ha_.ttl;
  in.maximum_lag_on_failover = ha_.maximum_lag_on_failover;
  in.pause = dynamic_.pause;
  in.synchronous_mode = ha_.synchronous_mode;
  in.dcs_last_seen = dcs_last_seen_;
  if (api_) {
    auto snapshot = BuildSnapshot(in);
    auto scheduled = restart_schedule_.Get();
    if (scheduled || (snapshot->cluster && !scheduled_restarts_.empty())) {
      // Scheduled restarts: ours in GET /patroni (without the postmaster start time), the
      // members' keys' in /cluster.
      auto with = std::make_shared<api::ApiSnapshot>(*snapshot);
      if (scheduled) with->self.scheduled_restart = api::ScheduledRestartJson(*scheduled, false);
      if (with->cluster) {
        for (auto& m : with->cluster->members) {
          auto it = scheduled_restarts_.find(MemberName(m.name));
          if (it != scheduled_restarts_.end()) m.scheduled_restart = it->second;
        }
      }
      snapshot = std::move(with);
    }
    api_->SetSnapshot(std::move(snapshot));
  }
  // The leader keeps a slot for every other member (SyncSlots); others keep none.
  if (!d.leader) worker_->SetSlots(std::nullopt);
}

void Agent::Shutdown() {
  spdlog::info("shutting down");
  leader_flag_ = false;
  if (api_) {
    // /primary must stop answering 200 before the lock goes.
    core::Decision none;
    if (worker_) Publish(none);
  }
  if (worker_ && store_) {
    const bool held = view_ && view_->LeaderIs(MemberName(node_.name)) && keeper_ &&
                      view_->leader->lease == keeper_->Facts().id;
    worker_->Submit(MakeTask(core::StopPostgres{core::StopMode::kFast}));
    const SteadyTime deadline = SteadyClock::now() + seconds(40);
    while (SteadyClock::now() < deadline && (worker_->InFlight() || worker_->PostmasterPid())) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (worker_->PostmasterPid()) worker_->StopImmediatelyNow(seconds(5));
    if (held) {
      if (auto r = store_->ReleaseLeader(MemberName(node_.name)); !r) {
        spdlog::warn("releasing the leader key: {}", r.error().ToString());
      } else {
        spdlog::info("leader key released");
      }
    }
  }
  threads_stop_ = true;
  {
    std::lock_guard lock(watch_mu_);
    if (watch_) watch_->Cancel();
  }
  if (watch_thread_.joinable()) watch_thread_.join();
  if (fence_thread_.joinable()) fence_thread_.join();
  if (watchdog_) watchdog_->Stop();  // PostgreSQL is stopped by now: disarm, let it exit
  if (keeper_) keeper_->StopAndRevoke();
  if (server_) server_->Stop();
  if (prober_) prober_->Stop();
  if (worker_) worker_->Stop();
  spdlog::info("stopped");
}

namespace {

Agent* g_agent = nullptr;

}  // namespace

int RunAgent(const std::string& config_path) {
  auto loaded = config::LoadConfigFile(config_path);
  if (!loaded) {
    std::cerr << "pgwarden agent: bad configuration:\n" << loaded.error().message << "\n";
    return 2;
  }
  const config::Config& node = loaded->config;
  if (auto logging = config::StartLogging(node.log, node.name, "pgwarden.log"); !logging) {
    std::cerr << "pgwarden agent: " << logging.error().message << "\n";
    return 2;
  }
  for (const auto& w : loaded->warnings) spdlog::warn("{}", w);

  // Signals are taken by one thread with sigtimedwait; every other thread has them blocked.
  const sigset_t set = BlockStopSignals();

  Agent agent(node, config_path);
  g_agent = &agent;
  std::atomic<bool> done{false};
  std::thread signals([&] {
    timespec tick{0, 200'000'000};
    while (!done) {
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig == SIGTERM || sig == SIGINT) {
        spdlog::info("signal {}: stopping", sig);
        agent.RequestStop();
      } else if (sig == SIGHUP) {
        spdlog::info("SIGHUP: reloading {}", config_path);
        if (auto r = agent.OperatorReload(); !r) {
          spdlog::error("reload: {}", r.error().message);
        }
      }
    }
  });
  int status = agent.Run();
  done = true;
  signals.join();
  g_agent = nullptr;
  spdlog::default_logger()->flush();
  return status;
}

}  // namespace pgwarden::agent
