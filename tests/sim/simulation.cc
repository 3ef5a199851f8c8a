#include "sim/simulation.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "cluster/codec.h"

namespace pgwarden::sim {
namespace {

using core::ProcessState;
using std::chrono::milliseconds;
using std::chrono::seconds;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

// One member: its PostgreSQL, its faults, and the shell state of its agent.
struct Shell {
  MemberName name;
  core::HaConfig cfg;
  std::unique_ptr<dcs::FaultyDcs> dcs;
  std::unique_ptr<cluster::ClusterStore> store;
  std::unique_ptr<dcs::Watch> watch;
  FakePostgres pg;

  // Faults.
  bool alive = true;
  SteadyTime restart_at;
  bool frozen = false;
  bool freeze_after_decide = false;  // freeze between deciding and acting
  SteadyTime frozen_at, resume_at;
  bool partitioned = false;  // cut from etcd
  bool isolated = false;     // and from the other members (no streaming, no probes)
  SteadyTime heal_at;
  SteadyTime slow_until;
  SteadyTime lagging_until;  // streaming slows to a trickle until then
  bool fail_next_rewind = false;
  bool just_resumed = false;

  // The agent shell.
  core::AgentMemory memory;
  core::LeaseFacts lease;
  SteadyTime next_keepalive;
  std::deque<core::Action> queue;  // actions of the last decision not carried out yet
  SteadyTime queue_valid_until;
  std::vector<core::Outcome> outcomes;
  std::optional<core::PeerProbe> probes;
  SteadyTime wake_at;
  bool event = true;
  std::deque<uint64_t> pending;  // commits waiting for their acknowledgement (positions)

  bool Impaired() const { return !alive || frozen || freeze_after_decide || partitioned; }
  bool Up() const { return alive && !frozen; }
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& o)
      : o_(o),
        rng_(o.seed),
        dcs_(clock_, dcs::MemoryDcsOptions{100000, seconds(1), false}),
        keys_("service", "sim"),
        truth_(dcs_, keys_) {
    start_ = Now();
    for (int i = 0; i < o.members; ++i) {
      auto m = std::make_unique<Shell>();
      m->name = MemberName("m" + std::to_string(i + 1));
      core::HaConfig& c = m->cfg;
      c.name = m->name;
      c.api_url = "http://" + m->name.str() + ":8008/patroni";
      c.conn_url = "postgres://" + m->name.str() + ":5432/postgres";
      c.ttl = o.ttl;
      c.fence_margin = o.ttl >= seconds(3) ? milliseconds(1000) : milliseconds(500);
      c.loop_wait = milliseconds(500);
      c.retry_timeout = milliseconds(1000);
      c.maximum_lag_on_failover = 1 << 20;
      c.primary_start_timeout = seconds(5);
      c.switchover_timeout = seconds(5);
      c.use_pg_rewind = true;
      c.remove_data_directory_on_rewind_failure = true;
      c.synchronous_mode = o.synchronous_mode;
      c.synchronous_mode_strict = o.synchronous_mode_strict;
      c.synchronous_node_count = o.synchronous_node_count;
      c.synchronous_quorum = o.synchronous_quorum;
      c.maximum_lag_on_syncnode = o.maximum_lag_on_syncnode;
      c.tags.failover_priority = 1 + i % 2;
      if (o.members >= 5 && i == o.members - 1) c.tags.nofailover = true;
      m->dcs = std::make_unique<dcs::FaultyDcs>(dcs_, [](Duration) {});
      m->store = std::make_unique<cluster::ClusterStore>(*m->dcs, keys_);
      m->watch = m->dcs->WatchPrefix(keys_.prefix);
      m->next_keepalive = Now();
      m->wake_at = Now();
      members_.push_back(std::move(m));
    }
  }

  SimResult Run() {
    bool faults_over = false;
    while (result_.ok) {
      clock_.Advance(o_.step);
      if (o_.paused && !paused_at_) {
        // Bootstrap unpaused; pause at the first convergence (no faults before).
        if (Now() - start_ > o_.settle_bound) {
          Violation("no convergence before pausing");
          break;
        }
        if (Converged()) {
          paused_at_ = Now();
          SetPause(true);
        }
      }
      const Duration t = Now() - (o_.paused ? paused_at_.value_or(Now()) : start_);
      if (o_.paused && !paused_at_) {
        // waiting for the first convergence
      } else if (t < o_.fault_phase) {
        InjectFaults();
      } else if (!faults_over) {
        faults_over = true;
        Trace("--- faults stop");
        if (o_.paused) SetPause(false);
      }
      EndFaults(faults_over);
      std::vector<Shell*> order;
      for (auto& m : members_) order.push_back(m.get());
      std::shuffle(order.begin(), order.end(), rng_);
      for (Shell* m : order) {
        if (result_.ok) StepMember(*m);
      }
      Replicate();
      if (paused_at_ && members_[0]->cfg.pause) {
        const bool leaderless = !TruthLeader();
        if (leaderless && !paused_leaderless_)
          ++result_.counts["paused with the leader key expired"];
        paused_leaderless_ = leaderless;
      }
      if (result_.ok) CheckInvariants();
      if (!result_.ok) break;
      if (faults_over && Converged()) break;
      if (t > o_.fault_phase + o_.settle_bound) {
        Violation("no convergence within " +
                  std::to_string(std::chrono::duration_cast<seconds>(o_.settle_bound).count()) +
                  " s after the faults stopped: " + StateLine());
      }
    }
    return result_;
  }

 private:
  SteadyTime Now() const { return clock_.SteadyNow(); }

  void SetPause(bool pause) {
    if (!pause && !TruthLeader()) ++result_.counts["resumed without a leader"];
    for (auto& m : members_) {
      m->cfg.pause = pause;
      m->event = true;
    }
    Trace(pause ? "--- every member paused" : "--- every member resumed");
  }

  std::string Stamp() const {
    const auto ms = std::chrono::duration_cast<milliseconds>(Now() - start_).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%7.2fs ", static_cast<double>(ms) / 1000.0);
    return buf;
  }

  void Trace(const std::string& line) {
    trace_.push_back(Stamp() + line);
    while (trace_.size() > o_.trace_lines) trace_.pop_front();
  }

  void Violation(const std::string& what) {
    if (!result_.ok) return;
    result_.ok = false;
    result_.violation = Stamp() + what;
    Trace("VIOLATION: " + what);
    Trace("state: " + StateLine());
    std::string out;
    for (const std::string& line : trace_) out += "  " + line + "\n";
    result_.trace = out;
  }

  std::string StateLine() {
    std::string s;
    auto leader = truth_.Read();
    if (leader && leader->view.leader) {
      s += "leader=" + leader->view.leader->holder.str() + " ";
    } else {
      s += "leader=none ";
    }
    for (auto& m : members_) {
      s += "| " + m->name.str() + (m->alive ? "" : " DEAD") + (m->frozen ? " FROZEN" : "") +
           (m->partitioned ? " CUT" : "") + " " + m->pg.Describe() + " ";
    }
    return s;
  }

  double Uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }
  Duration Between(Duration lo, Duration hi) {
    return lo + Duration(static_cast<Duration::rep>(Uniform() * (hi - lo).count()));
  }
  Shell* Pick() { return members_[rng_() % members_.size()].get(); }
  Shell* Find(const MemberName& name) {
    for (auto& m : members_) {
      if (m->name == name) return m.get();
    }
    return nullptr;
  }
  std::optional<core::LeaderKey> TruthLeader() {
    auto r = dcs_.Get(keys_.leader);
    if (!r || r->kvs.empty()) return std::nullopt;
    const dcs::KeyValue& kv = r->kvs[0];
    return core::LeaderKey{MemberName(kv.value), kv.lease, kv.mod_revision, kv.create_revision};
  }

  // --- Faults -----------------------------------------------------------------------------------

  void InjectFaults() {
    const double p = o_.fault_rate_per_second * std::chrono::duration<double>(o_.step).count();
    if (Uniform() >= p) return;
    int impaired = 0;
    for (auto& m : members_) impaired += m->Impaired() ? 1 : 0;
    const bool may_impair = impaired < std::max(1, (o_.members - 1) / 2);
    Shell& m = *Pick();
    const int kind = static_cast<int>(rng_() % (o_.lagging_replicas ? 9 : 8));
    switch (kind) {
      case 0:
      case 1:
        if (!may_impair || m.Impaired()) return;
        Crash(m);
        return;
      case 2:
      case 3:
        if (!may_impair || m.Impaired()) return;
        m.resume_at = Now() + (Uniform() < 0.7 ? Between(o_.ttl, 3 * o_.ttl)
                                               : Between(milliseconds(200), o_.ttl));
        if (Uniform() < 0.5) {
          m.freeze_after_decide = true;
          Trace(m.name.str() + " will freeze after its next decision");
        } else {
          Freeze(m);
        }
        return;
      case 4:
        if (!may_impair || m.Impaired()) return;
        m.partitioned = true;
        m.isolated = Uniform() < 0.5;
        m.heal_at = Now() + Between(milliseconds(500), 3 * o_.ttl);
        m.dcs->SetPolicy(dcs::FaultPolicy{true, false, Duration::zero()});
        Trace(m.name.str() + (m.isolated ? " is isolated from etcd and its peers" : " loses etcd"));
        return;
      case 5:
        m.slow_until = Now() + Between(seconds(2), seconds(10));
        Trace(m.name.str() + " PostgreSQL operations become slow");
        return;
      case 6: {
        if (!o_.switchovers) return;
        auto leader = TruthLeader();
        core::FailoverRequest req;
        if (leader && Uniform() < 0.7) {
          req.leader = leader->holder;
          if (Uniform() < 0.7) req.candidate = Pick()->name;
        } else {
          req.candidate = Pick()->name;
        }
        if (truth_.RequestFailover(req)) {
          Trace(std::string("request: ") +
                (req.leader ? "switchover from " + req.leader->str() : "failover") +
                (req.candidate ? " to " + req.candidate->str() : ""));
        }
        return;
      }
      case 7:
        m.fail_next_rewind = true;
        return;
      case 8:
        m.lagging_until = Now() + Between(seconds(2), seconds(10));
        Trace(m.name.str() + " streaming slows to a trickle");
        return;
    }
  }

  void Crash(Shell& m) {
    if (m.pg.AcceptsWrites()) primary_lost_at_ = Now();
    m.alive = false;
    m.restart_at = Now() + Between(seconds(1), seconds(8));
    if (m.pg.op && (std::holds_alternative<core::InitDb>(m.pg.op->action) ||
                    std::holds_alternative<core::CloneFrom>(m.pg.op->action))) {
      m.pg = FakePostgres{};  // a partial data directory, wiped on restart
    }
    m.pg.op.reset();
    if (m.pg.state != ProcessState::kStopped) m.pg.state = ProcessState::kCrashed;
    m.queue.clear();
    m.outcomes.clear();
    m.probes.reset();
    m.memory = core::AgentMemory{};
    m.lease = core::LeaseFacts{};  // the old lease expires by itself in etcd
    m.watch.reset();
    Trace(m.name.str() + " CRASHES (agent and PostgreSQL)");
  }

  void Freeze(Shell& m) {
    m.frozen = true;
    m.freeze_after_decide = false;
    m.frozen_at = Now();
    Trace(m.name.str() + " FREEZES" + (m.queue.empty() ? "" : " with actions pending"));
  }

  void EndFaults(bool faults_over) {
    for (auto& mp : members_) {
      Shell& m = *mp;
      if (!m.alive && Now() >= m.restart_at) {
        m.alive = true;
        m.pg.state = ProcessState::kStopped;
        m.event = true;
        m.next_keepalive = Now();
        m.watch = m.dcs->WatchPrefix(keys_.prefix);
        Trace(m.name.str() + " restarts");
      }
      if (m.frozen && Now() >= m.resume_at) {
        m.frozen = false;
        if (m.pg.op) m.pg.op->done_at += Now() - m.frozen_at;
        m.event = true;
        m.just_resumed = true;
        Trace(
            m.name.str() + " resumes after " +
            std::to_string(std::chrono::duration_cast<milliseconds>(Now() - m.frozen_at).count()) +
            " ms");
      }
      if (m.partitioned && Now() >= m.heal_at) {
        m.partitioned = false;
        m.isolated = false;
        m.dcs->SetPolicy(dcs::FaultPolicy{});
        Trace(m.name.str() + " reaches etcd again");
      }
      if (faults_over) {
        m.fail_next_rewind = false;
        if (m.freeze_after_decide) m.freeze_after_decide = false;
      }
    }
  }

  // --- One member's turn
  // --------------------------------------------------------------------------

  void StepMember(Shell& m) {
    if (!m.alive || m.frozen) return;
    if (m.just_resumed) {
      // The host resumes: the agent's fence check comes before anything else, in particular
      // before a PostgreSQL operation that was in flight (a start as primary, a promotion) can
      // complete. Its old pending actions resume too, guarded by their valid_until.
      m.just_resumed = false;
      ExecuteQueue(m);
      if (MaybeDecide(m)) ExecuteQueue(m);
    }
    if (Now() >= m.next_keepalive) KeepAlive(m);
    if (m.pg.op && Now() >= m.pg.op->done_at) CompleteOp(m);
    if (!result_.ok) return;
    ExecuteQueue(m);  // what was left when the agent froze: it resumes, guarded by valid_until
    if (MaybeDecide(m)) {
      if (m.freeze_after_decide) {
        Freeze(m);
        return;
      }
      ExecuteQueue(m);
    }
  }

  void KeepAlive(Shell& m) {
    m.next_keepalive = Now() + milliseconds(500);
    const SteadyTime sent = Now();
    if (m.lease.id == 0 || m.lease.lost) {
      auto g = m.dcs->GrantLease(o_.ttl);
      if (g) {
        m.lease = core::LeaseFacts{g->id, sent, false};
        m.event = true;
        Trace(m.name.str() + " granted lease " + std::to_string(g->id));
      }
    } else {
      auto k = m.dcs->KeepAlive(m.lease.id);
      if (k) {
        m.lease.last_confirmed_send = sent;
      } else if (k.error().code == ErrorCode::kNotFound) {
        m.lease.lost = true;
        m.event = true;
        Trace(m.name.str() + " lease " + std::to_string(m.lease.id) + " is lost");
      }
    }
  }

  bool MaybeDecide(Shell& m) {
    if (!m.queue.empty()) return false;
    if (m.watch) {
      auto batch = m.watch->Next(Duration::zero());
      if (batch) {
        for (const dcs::WatchEvent& e : batch->events) {
          if (e.kv.key == keys_.leader || e.kv.key == keys_.failover) m.event = true;
        }
      } else if (batch.error().code != ErrorCode::kUnavailable) {
        m.watch = m.dcs->WatchPrefix(keys_.prefix);
        m.event = true;
      }
    }
    if (!m.event && Now() < m.wake_at) return false;
    m.event = false;

    core::Observation obs;
    obs.now = Now();
    obs.wall_now = clock_.SystemNow();
    auto read = m.store->Read();
    if (read) {
      for (const Error& e : read->problems) Trace(m.name.str() + " read problem: " + e.ToString());
      obs.cluster = std::move(read->view);
      if (m.pg.bootstrap_pending && obs.cluster->initialize == m.pg.sysid) {
        m.pg.bootstrap_pending = false;  // the shell removes its "bootstrap pending" marker
      }
    }
    obs.pg = m.pg.Observe();
    if (m.pg.primary) {
      const std::vector<Shell*> chosen = SyncChosen(m);
      for (auto& r : members_) {
        if (!StreamsFrom(*r, m)) continue;
        const bool sync = std::find(chosen.begin(), chosen.end(), r.get()) != chosen.end();
        obs.pg.replication.push_back(core::StandbyReplication{r->name, true, sync, Lsn(r->pg.lsn)});
      }
    }
    if (obs.cluster && obs.cluster->leader && obs.cluster->leader->holder != m.name &&
        m.pg.has_data) {
      // The shell's divergence check against the leader (what pg_rewind would find).
      if (Shell* l = Find(obs.cluster->leader->holder); l && l->pg.has_data) {
        obs.pg.diverged = !m.pg.IsPrefixOf(l->pg);
      }
    }
    obs.lease = m.lease;
    if (m.pg.op) obs.in_flight = core::InFlight{m.pg.op->action, m.pg.op->started_at};
    obs.last = std::move(m.outcomes);
    m.outcomes.clear();
    obs.probes = m.probes;

    core::Decision d = core::Decide(m.memory, obs, m.cfg);
    m.memory = std::move(d.next);
    m.wake_at = d.wake_at;
    m.queue.assign(d.actions.begin(), d.actions.end());
    m.queue_valid_until = d.valid_until;
    std::string acts;
    for (const core::Action& a : d.actions) {
      if (std::holds_alternative<core::WriteMember>(a) ||
          std::holds_alternative<core::SyncSlots>(a) ||
          std::holds_alternative<core::UpdateLeaderStatus>(a)) {
        continue;
      }
      acts += " " + core::Describe(a);
    }
    if (!acts.empty() && d.reason.find("maximum_lag_on_syncnode") != std::string::npos) {
      ++result_.counts["lagging standby left out"];
    }
    if (!acts.empty() || d.reason != last_reason_[m.name]) {
      Trace(m.name.str() + ": " + d.reason + (acts.empty() ? "" : " ->" + acts));
      last_reason_[m.name] = d.reason;
    }
    return true;
  }

  void ExecuteQueue(Shell& m) {
    while (!m.queue.empty() && result_.ok) {
      core::Action a = std::move(m.queue.front());
      m.queue.pop_front();
      Result<void> r = Ok();
      if (Now() > m.queue_valid_until) {
        ++result_.counts["action refused: decision expired"];
        r = Fail(ErrorCode::kTimeout, "decision expired before " + core::ActionName(a));
      } else if (cluster::ClusterStore::IsEtcdAction(a)) {
        if (auto* ws = std::get_if<core::WriteSync>(&a); ws && o_.break_quorum && ws->quorum > 0) {
          --ws->quorum;  // BROKEN: claims every commit is on one more listed member
        }
        r = m.store->Execute(a, m.name, m.lease.id);
        if (auto* ws = std::get_if<core::WriteSync>(&a); ws && r && ws->quorum > 0) {
          ++result_.counts["sync written with quorum > 0"];
        }
      } else if (auto* probe = std::get_if<core::ProbePeers>(&a)) {
        Probe(m, *probe);
      } else if (std::holds_alternative<core::SyncSlots>(a)) {
        // Slots are not modelled.
      } else if (auto* ssn = std::get_if<core::SetSynchronousStandbys>(&a)) {
        r = SetSyncNames(m, *ssn);
      } else if (o_.break_fence && std::holds_alternative<core::StopPostgres>(a) &&
                 std::get<core::StopPostgres>(a).mode == core::StopMode::kImmediate) {
        // BROKEN: the fence is disabled; the shell reports the stop done and does nothing.
      } else {
        if (m.cfg.pause &&
            (std::holds_alternative<core::StartPostgres>(a) ||
             std::holds_alternative<core::Promote>(a) || std::holds_alternative<core::Rewind>(a) ||
             std::holds_alternative<core::CloneFrom>(a) ||
             std::holds_alternative<core::InitDb>(a))) {
          Violation(m.name.str() + " is paused but decided " + core::Describe(a));
          return;
        }
        r = StartOp(m, a);
      }
      const bool quiet = std::holds_alternative<core::WriteMember>(a) ||
                         std::holds_alternative<core::SyncSlots>(a) ||
                         std::holds_alternative<core::UpdateLeaderStatus>(a) ||
                         std::holds_alternative<core::ProbePeers>(a);
      if (!r || !quiet) {
        Trace(m.name.str() + "   " + core::Describe(a) + ": " +
              (r ? std::string("ok") : r.error().ToString()));
      }
      if (!r) {
        ++result_.counts[core::ActionName(a) + " failed"];
        m.queue.clear();
        m.event = true;
      } else if (std::holds_alternative<core::ReleaseLeader>(a)) {
        ++result_.counts["ReleaseLeader"];
      }
      m.outcomes.push_back(core::Outcome{std::move(a), std::move(r)});
    }
  }

  void Probe(Shell& m, const core::ProbePeers& probe) {
    core::PeerProbe answer;
    answer.started_at = Now();
    for (const MemberName& name : probe.peers) {
      core::PeerStatus p;
      Shell* peer = Find(name);
      if (peer && peer->Up() && !peer->isolated && !m.isolated) {
        p.reachable = true;
        p.running = peer->pg.state == ProcessState::kRunning;
        p.role = peer->pg.primary ? core::PgRole::kPrimary : core::PgRole::kReplica;
        p.timeline = Timeline(peer->pg.Timeline());
        p.received_lsn = Lsn(peer->pg.lsn);
        p.replayed_lsn = Lsn(peer->pg.lsn);
        p.tags = peer->cfg.tags;
      }
      answer.peers[name] = p;
    }
    m.probes = std::move(answer);
    m.event = true;  // the answers come back: decide again
  }

  Duration OpTime(Shell& m, Duration lo, Duration hi) {
    Duration d = Between(lo, hi);
    return Now() < m.slow_until ? d * 8 : d;
  }

  Result<void> StartOp(Shell& m, const core::Action& a) {
    FakePostgres& pg = m.pg;
    auto begin = [&](Duration d, std::optional<MemberName> source = std::nullopt) {
      pg.op = FakePostgres::Op{a, Now(), Now() + d, std::move(source)};
      return Ok();
    };
    if (auto* stop = std::get_if<core::StopPostgres>(&a)) {
      if (pg.op) {
        m.outcomes.push_back(core::Outcome{pg.op->action, Fail(ErrorCode::kCancelled, "stopped")});
        pg.op.reset();
      }
      if (pg.state == ProcessState::kStopped || pg.state == ProcessState::kCrashed) return Ok();
      const bool was_primary_running = pg.AcceptsWrites();
      if (was_primary_running) {
        ++result_.counts[stop->mode == core::StopMode::kFast ? "primary stopped fast"
                                                             : "primary stopped immediately"];
      }
      pg.state = ProcessState::kStopping;  // writes stop now, whatever the mode
      if (stop->mode == core::StopMode::kFast) {
        if (was_primary_running) pg.lsn += 100;  // the shutdown checkpoint
        return begin(OpTime(m, milliseconds(100), milliseconds(500)));
      }
      return begin(OpTime(m, milliseconds(20), milliseconds(60)));
    }
    if (pg.op) return Fail(ErrorCode::kFailed, "busy with " + core::ActionName(pg.op->action));
    return std::visit(
        Overloaded{
            [&](const core::InitDb&) -> Result<void> {
              if (pg.has_data) return Fail(ErrorCode::kFailed, "initdb: data directory exists");
              return begin(OpTime(m, milliseconds(800), milliseconds(2000)));
            },
            [&](const core::CloneFrom& c) -> Result<void> {
              if (pg.has_data && !c.remove_existing) {
                return Fail(ErrorCode::kFailed, "clone: data directory exists");
              }
              if (pg.state != ProcessState::kStopped && pg.state != ProcessState::kCrashed) {
                return Fail(ErrorCode::kFailed, "clone: PostgreSQL is running");
              }
              pg = FakePostgres{};
              return begin(OpTime(m, milliseconds(800), milliseconds(3000)), c.from);
            },
            [&](const core::StartPostgres& s) -> Result<void> {
              if (!pg.has_data) return Fail(ErrorCode::kFailed, "start: no data directory");
              const bool as_primary = s.role == core::StartRole::kPrimary;
              if (pg.state == ProcessState::kRunning) {
                return pg.primary == as_primary
                           ? Ok()
                           : Result<void>(Fail(ErrorCode::kFailed, "start: running as other role"));
              }
              if (as_primary && !pg.primary) {
                return Fail(ErrorCode::kFailed, "start: a standby cannot start as primary");
              }
              pg.state = ProcessState::kStarting;
              pg.primary = as_primary;
              pg.upstream = s.upstream;
              return begin(OpTime(m, milliseconds(200), milliseconds(1000)));
            },
            [&](const core::Promote&) -> Result<void> {
              if (pg.state != ProcessState::kRunning || pg.primary) {
                return Fail(ErrorCode::kFailed, "promote: not a running standby");
              }
              return begin(OpTime(m, milliseconds(100), milliseconds(600)));
            },
            [&](const core::Follow& f) -> Result<void> {
              if (pg.state != ProcessState::kRunning || pg.primary) {
                return Fail(ErrorCode::kFailed, "follow: not a running standby");
              }
              return begin(OpTime(m, milliseconds(50), milliseconds(300)), f.leader);
            },
            [&](const core::Rewind& r) -> Result<void> {
              if (pg.state != ProcessState::kStopped && pg.state != ProcessState::kCrashed) {
                return Fail(ErrorCode::kFailed, "rewind: PostgreSQL is running");
              }
              return begin(OpTime(m, milliseconds(300), milliseconds(1500)), r.from);
            },
            [&](const auto&) -> Result<void> {
              return Fail(ErrorCode::kInvalidArgument, "not a PostgreSQL operation");
            },
        },
        a);
  }

  // The shell's check that the leader key is ours, right when PostgreSQL becomes primary.
  void CheckHoldsKey(Shell& m, const char* what) {
    auto leader = TruthLeader();
    if (!leader || leader->holder != m.name || leader->lease != m.lease.id) {
      Violation(m.name.str() + " " + what + " without holding the leader key (leader=" +
                (leader ? leader->holder.str() : "none") + ")");
    }
  }

  void BecamePrimary(Shell& m, bool promotion) {
    ++result_.counts["became primary"];
    if (dcs_.Get(keys_.failover) && !dcs_.Get(keys_.failover)->kvs.empty()) {
      ++result_.counts["became primary with a failover request pending"];
    }
    if (primary_lost_at_) {
      result_.failover_times.push_back(Now() - *primary_lost_at_);
      primary_lost_at_.reset();
    }
    if (promotion) {  // not a (re)start as primary: its replicas may still be cloning
      promoted_at_ = Now();
      promoted_ = m.name;
    } else {
      promoted_at_.reset();
    }
  }

  void CompleteOp(Shell& m) {
    FakePostgres& pg = m.pg;
    FakePostgres::Op op = std::move(*pg.op);
    pg.op.reset();
    Result<void> r = Ok();
    auto source_pg = [&]() -> FakePostgres* {
      Shell* s = op.source ? Find(*op.source) : nullptr;
      if (!s || !s->Up() || s->isolated || m.isolated || !s->pg.has_data ||
          s->pg.state != ProcessState::kRunning) {
        return nullptr;
      }
      return &s->pg;
    };
    std::visit(Overloaded{
                   [&](const core::InitDb&) {
                     pg.has_data = true;
                     pg.bootstrap_pending = true;
                     pg.sysid = std::to_string(next_sysid_++);
                     pg.lineage = {Segment{next_branch_++, 1, 0}};
                     pg.lsn = 1000;
                     pg.primary = true;
                     pg.state = ProcessState::kStopped;
                   },
                   [&](const core::CloneFrom&) {
                     FakePostgres* src = source_pg();
                     if (!src) {
                       r = Fail(ErrorCode::kFailed, "pg_basebackup: source unavailable");
                       return;
                     }
                     pg.CopyWalFrom(*src, src->lsn);
                     pg.bootstrap_pending = false;
                     pg.primary = false;
                     pg.state = ProcessState::kStopped;
                     pg.upstream.reset();
                   },
                   [&](const core::StartPostgres& s) {
                     pg.state = ProcessState::kRunning;
                     pg.sync_names = core::SyncStandbyNames{};  // the managed config is rewritten
                     if (s.role == core::StartRole::kPrimary) {
                       CheckHoldsKey(m, "started as primary");
                       BecamePrimary(m, false);
                     }
                   },
                   [&](const core::StopPostgres&) { pg.state = ProcessState::kStopped; },
                   [&](const core::Promote&) {
                     if (pg.state != ProcessState::kRunning || pg.primary) {
                       r = Fail(ErrorCode::kFailed, "promote: not a running standby");
                       return;
                     }
                     CheckHoldsKey(m, "promoted");
                     pg.lineage.push_back(Segment{next_branch_++, pg.Timeline() + 1, pg.lsn});
                     pg.primary = true;
                     pg.upstream.reset();
                     BecamePrimary(m, true);
                   },
                   [&](const core::Follow& f) { pg.upstream = f.leader; },
                   [&](const core::Rewind&) {
                     FakePostgres* src = source_pg();
                     if (m.fail_next_rewind) {
                       m.fail_next_rewind = false;
                       r = Fail(ErrorCode::kFailed, "pg_rewind: could not find required WAL");
                       return;
                     }
                     if (!src) {
                       r = Fail(ErrorCode::kFailed, "pg_rewind: source unavailable");
                       return;
                     }
                     pg.CopyWalFrom(*src, src->lsn);
                     pg.primary = false;
                     pg.state = ProcessState::kStopped;
                   },
                   [&](const auto&) {},
               },
               op.action);
    ++result_.counts[core::ActionName(op.action) + (r ? " done" : " failed")];
    Trace(m.name.str() + "   done " + core::Describe(op.action) + ": " +
          (r ? std::string("ok") : r.error().ToString()));
    m.outcomes.push_back(core::Outcome{op.action, std::move(r)});
    m.event = true;
  }

  // --- WAL
  // ----------------------------------------------------------------------------------------

  // A running replica streams from `p` (and so counts for synchronous replication).
  bool StreamsFrom(const Shell& r, const Shell& p) const {
    return &r != &p && r.Up() && p.Up() && !r.isolated && !p.isolated &&
           r.pg.state == ProcessState::kRunning && !r.pg.primary && r.pg.upstream == p.name &&
           (p.pg.state == ProcessState::kRunning || p.pg.state == ProcessState::kStopping) &&
           r.pg.IsPrefixOf(p.pg);
  }

  // The standbys PostgreSQL treats as synchronous under p's synchronous_standby_names
  // ('FIRST n (list)': the first n connected in list order; 'ANY n (list)': every connected
  // listed one, a commit waits for n of them; '*': any one connected).
  std::vector<Shell*> SyncChosen(const Shell& p) {
    std::vector<Shell*> out;
    const core::SyncStandbyNames& n = p.pg.sync_names;
    if (n.names.empty()) {
      if (!n.strict) return out;
      for (auto& r : members_) {
        if (StreamsFrom(*r, p)) return {r.get()};
      }
      return out;
    }
    for (const MemberName& name : n.names) {
      Shell* r = Find(name);
      if (r && StreamsFrom(*r, p) && (n.quorum || out.size() < static_cast<size_t>(n.count))) {
        out.push_back(r);
      }
    }
    return out;
  }

  Result<void> SetSyncNames(Shell& m, const core::SetSynchronousStandbys& a) {
    if (m.pg.state != ProcessState::kRunning || !m.pg.primary) {
      return Fail(ErrorCode::kFailed, "synchronous_standby_names: not a running primary");
    }
    m.pg.sync_names = core::AppliedBy(a);
    ++result_.counts["synchronous_standby_names changed"];
    if (o_.break_sync_order && !a.names.empty()) {
      // BROKEN: record the new standbys in `sync` before they are synchronous and caught up.
      auto v = m.store->Read();
      if (v)
        (void)m.store->WriteSync(m.name, a.names, v->view.sync ? v->view.sync->mod_revision : 0);
    }
    return Ok();
  }

  // Holds the commit at `lsn` of `branch`.
  static bool Holds(const FakePostgres& pg, uint64_t branch, uint64_t lsn) {
    return pg.has_data && pg.lsn >= lsn && pg.BranchAt(lsn) == branch;
  }

  // Commits: every write is a commit; it is acknowledged at once without synchronous
  // standbys, else once every standby PostgreSQL treats as synchronous (and enough of them)
  // has flushed it; '*' with no standby connected and a missing listed standby block.
  void AcknowledgeCommits() {
    for (auto& mp : members_) {
      Shell& p = *mp;
      if (!p.Up()) continue;  // a frozen server acknowledges nothing (and keeps its waiters)
      if (!p.pg.AcceptsWrites()) {
        p.pending.clear();  // the sessions are gone: never acknowledged
        continue;
      }
      if (p.pending.empty()) continue;
      uint64_t upto = p.pg.lsn;
      const core::SyncStandbyNames& n = p.pg.sync_names;
      if (!n.names.empty() || n.strict) {
        const std::vector<Shell*> chosen = SyncChosen(p);
        const size_t need = n.names.empty() ? 1 : static_cast<size_t>(n.count);
        if (chosen.size() < need) continue;
        // The need-th highest flushed position among the chosen ('FIRST': all of them).
        std::vector<uint64_t> flushed;
        for (Shell* r : chosen) flushed.push_back(r->pg.lsn);
        std::sort(flushed.begin(), flushed.end(), std::greater<>());
        upto = std::min(upto, n.quorum ? flushed[need - 1] : flushed.back());
      }
      const uint64_t branch = p.pg.lineage.back().branch;
      while (!p.pending.empty() && p.pending.front() <= upto) {
        uint64_t& top = acked_[branch];
        top = std::max(top, p.pending.front());
        ++result_.acked_commits;
        p.pending.pop_front();
      }
    }
  }

  void Replicate() {
    for (auto& m : members_) {
      if (m->Up() && m->pg.AcceptsWrites() && Uniform() < 0.5) {
        m->pg.lsn += 1 + rng_() % 400;
        m->pending.push_back(m->pg.lsn);
      }
    }
    for (auto& r : members_) {
      FakePostgres& pg = r->pg;
      if (!r->Up() || pg.state != ProcessState::kRunning || pg.primary || !pg.upstream) continue;
      Shell* src = Find(*pg.upstream);
      if (!src || src == r.get() || !src->Up() || src->isolated || r->isolated) continue;
      const FakePostgres& up = src->pg;
      if (up.state != ProcessState::kRunning && up.state != ProcessState::kStopping) continue;
      if (up.lsn <= pg.lsn || !pg.IsPrefixOf(up)) continue;
      pg.CopyWalFrom(up, std::min(up.lsn, pg.lsn + (Now() < r->lagging_until ? 20 : 5000)));
    }
    AcknowledgeCommits();
  }

  // --- Invariants
  // ---------------------------------------------------------------------------------

  // Synchronous mode: every acknowledged commit is on the primary and on every member listed
  // in `sync`. Asynchronous mode: count the acknowledged commits a new primary lacks.
  void CheckCommits() {
    std::vector<std::pair<Shell*, std::string>> must;
    for (auto& m : members_) {
      if (m->pg.AcceptsWrites() && m->Up()) must.emplace_back(m.get(), "primary");
    }
    std::optional<core::SyncState> sync;
    if (auto r = dcs_.Get(keys_.sync); r && !r->kvs.empty()) {
      if (auto d = cluster::DecodeSync(keys_.sync, r->kvs[0].value)) sync = *d;
    }
    if (o_.synchronous_mode && sync && sync->quorum == 0) {
      for (const MemberName& n : sync->sync_standby) {
        if (Shell* s = Find(n))
          must.emplace_back(s, "listed in sync (leader " + sync->leader.str() + ")");
      }
    }
    if (o_.synchronous_mode && sync && sync->quorum > 0) {
      // Quorum: every acknowledged commit is on |set| - quorum listed members.
      const size_t need =
          sync->sync_standby.size() - std::min<size_t>(sync->sync_standby.size(), sync->quorum);
      for (const auto& [branch, lsn] : acked_) {
        size_t holders = 0;
        for (const MemberName& n : sync->sync_standby) {
          if (Shell* s = Find(n); s && Holds(s->pg, branch, lsn)) ++holders;
        }
        if (holders < need) {
          Violation("the acknowledged commit at " + std::to_string(lsn) + " of branch " +
                    std::to_string(branch) + " is on " + std::to_string(holders) + " of the " +
                    std::to_string(sync->sync_standby.size()) + " members listed in sync (leader " +
                    sync->leader.str() + ", quorum " + std::to_string(sync->quorum) +
                    "), fewer than " + std::to_string(need));
          return;
        }
      }
    }
    for (auto& [m, why] : must) {
      for (const auto& [branch, lsn] : acked_) {
        if (Holds(m->pg, branch, lsn)) continue;
        if (!o_.synchronous_mode) {
          if (lost_.insert({branch, lsn}).second) ++result_.lost_acked_commits;
          continue;
        }
        Violation(m->name.str() + " (" + why + ") lacks the acknowledged commit at " +
                  std::to_string(lsn) + " of branch " + std::to_string(branch) + ": " +
                  m->pg.Describe());
        return;
      }
    }
    // How soon a new leader has a synchronous standby recorded.
    if (o_.synchronous_mode && promoted_at_ && sync && sync->leader == promoted_ &&
        !sync->sync_standby.empty()) {
      result_.sync_after_promotion.push_back(Now() - *promoted_at_);
      promoted_at_.reset();
    }
  }

  void CheckInvariants() {
    CheckCommits();
    if (!result_.ok) return;
    std::vector<Shell*> writers;
    for (auto& m : members_) {
      if (m->Up() && m->pg.AcceptsWrites()) writers.push_back(m.get());
    }
    if (writers.size() > 1) {
      std::string names;
      for (Shell* w : writers) names += " " + w->name.str();
      Violation("two members accept writes:" + names);
      return;
    }
    if (writers.size() == 1) {
      auto leader = TruthLeader();
      Shell& w = *writers[0];
      if (!leader || leader->holder != w.name) {
        Violation(w.name.str() + " accepts writes but the leader key is " +
                  (leader ? "held by " + leader->holder.str() : "absent") +
                  " (its lease may be gone: it must have fenced itself)");
      }
    }
  }

  bool Converged() {
    auto leader = TruthLeader();
    if (!leader) return false;
    Shell* l = Find(leader->holder);
    if (!l || !l->Up() || !l->pg.AcceptsWrites()) return false;
    for (auto& m : members_) {
      if (m->Impaired()) return false;
      if (m.get() == l) continue;
      const FakePostgres& pg = m->pg;
      if (pg.state != ProcessState::kRunning || pg.primary || pg.upstream != l->name ||
          !pg.IsPrefixOf(l->pg)) {
        return false;
      }
    }
    if (o_.synchronous_mode) {
      auto r = dcs_.Get(keys_.sync);
      if (!r || r->kvs.empty()) return false;
      auto sync = cluster::DecodeSync(keys_.sync, r->kvs[0].value);
      if (!sync || sync->leader != l->name || sync->sync_standby.empty()) return false;
    }
    Trace("converged: " + l->name.str() + " is the primary, every member follows it");
    return true;
  }

  SimOptions o_;
  std::mt19937_64 rng_;
  FakeClock clock_;
  dcs::MemoryDcs dcs_;
  cluster::Keys keys_;
  cluster::ClusterStore truth_;  // unfaulted, for the invariant checks and fault injection
  std::vector<std::unique_ptr<Shell>> members_;
  std::deque<std::string> trace_;
  std::map<MemberName, std::string> last_reason_;
  SimResult result_;
  SteadyTime start_;
  uint64_t next_branch_ = 1;
  uint64_t next_sysid_ = 7000;
  std::optional<SteadyTime> primary_lost_at_;
  std::optional<SteadyTime> promoted_at_;
  std::optional<SteadyTime> paused_at_;
  bool paused_leaderless_ = false;
  MemberName promoted_;
  std::map<uint64_t, uint64_t> acked_;  // branch -> highest acknowledged commit position
  std::set<std::pair<uint64_t, uint64_t>> lost_;
};

}  // namespace

SimResult RunSimulation(const SimOptions& options) { return Simulation(options).Run(); }

}  // namespace pgwarden::sim
