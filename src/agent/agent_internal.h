// Internal pieces of the agent shared by its .cc files: the Agent class itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/config_patch.h"
#include "agent/lease_keeper.h"
#include "agent/pg_worker.h"
#include "agent/watchdog.h"
#include "api/http_server.h"
#include "api/patroni_api.h"
#include "api/restart_schedule.h"
#include "cluster/cluster_store.h"
#include "config/config.h"
#include "core/decide.h"
#include "dcs/etcd3/etcd_dcs.h"

namespace pgwarden::agent {

// Probes the peers' GET /patroni in parallel on its own thread.
class Prober {
 public:
  explicit Prober(std::function<void()> on_done) : on_done_(std::move(on_done)) {}
  ~Prober() { Stop(); }
  void Start();
  void Stop();
  // Replaces any pending request. `peers`: name -> API URL (empty: unreachable).
  void Request(std::vector<std::pair<MemberName, std::string>> peers, Duration timeout);
  std::optional<core::PeerProbe> Latest() const;

 private:
  void Run();
  std::function<void()> on_done_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::optional<std::pair<std::vector<std::pair<MemberName, std::string>>, Duration>> pending_;
  std::optional<core::PeerProbe> latest_;
  std::thread thread_;
};

// Parses a peer's GET /patroni answer. kCorrupt when it is not the expected JSON.
Result<core::PeerStatus> ParsePeerStatus(const std::string& json);

// The state the API snapshot is built from.
struct SnapshotInput {
  const config::Config* node = nullptr;
  const PgFacts* facts = nullptr;
  const std::optional<core::InFlight>* in_flight = nullptr;
  const std::optional<core::ClusterView>* view = nullptr;
  bool leader = false;
  Duration ttl{};
  uint64_t maximum_lag_on_failover = 0;
  bool pause = false;
  SystemTime dcs_last_seen{};
  bool synchronous_mode = false;  // `sync` names the synchronous standbys (GET /sync)
};
std::shared_ptr<const api::ApiSnapshot> BuildSnapshot(const SnapshotInput& in);

class Agent;

// The REST API's control endpoints: writes the `failover` key and waits for the outcome.
class AgentControl final : public api::ControlPlane {
 public:
  // `check`: the node's own checks of a new dynamic config (the keep-alive rule), after the
  // config module's parser.
  AgentControl(Agent& agent, std::unique_ptr<dcs::Dcs> dcs, cluster::Keys keys,
               Duration switchover_timeout, ConfigCheck check = {});
  Result<std::string> RequestSwitchover(const api::SwitchoverRequest& request) override;
  Result<std::string> RequestFailover(const std::string& candidate) override;
  Result<void> CancelScheduledSwitchover() override;
  Result<std::string> PatchConfig(const std::string& patch_json) override;
  Result<std::string> ReplaceConfig(const std::string& config_json) override;
  Result<std::string> Restart(const api::RestartRequest& request) override;
  Result<void> CancelScheduledRestart() override;
  Result<void> Reload() override;
  Result<void> Reinitialize(bool force, bool from_leader) override;

 private:
  // Polls the leader key until `done(view)` or the deadline.
  Result<std::string> WaitForLeader(const std::optional<std::string>& old_leader,
                                    const std::optional<std::string>& candidate, const char* what);
  Agent& agent_;
  std::unique_ptr<dcs::Dcs> dcs_;
  cluster::ClusterStore store_;
  Duration timeout_;
  ConfigCheck check_;
};

// An operator request (REST API / SIGHUP) handed to the control thread, which carries it out
// between two HA turns. `submitted` is set when it was handed to the PostgreSQL worker (or
// applied, or refused); `done` when the worker finished it.
struct OperatorRequest {
  enum class Kind { kRestart, kReinitialize, kReload };
  Kind kind = Kind::kRestart;
  std::optional<std::chrono::seconds> timeout;  // kRestart: start timeout
  std::optional<config::Config> reloaded;       // kReload: the file as read again
  std::promise<Result<void>> submitted;
  std::promise<Result<void>> done;
};

class Agent {
 public:
  // `config_path`: the file the node config was read from (re-read by Reload); may be empty.
  explicit Agent(config::Config node, std::string config_path = "");
  ~Agent();
  // Starts the threads and runs the control loop until RequestStop(). Returns the exit status.
  int Run();
  void RequestStop();
  void Wake();

  // Operator requests (any thread; each bounded in time). Restart: stop and start this member's
  // PostgreSQL in its role, through the worker; returns once it ran. Reinitialize: a replica
  // re-clones from the leader (returns once started). Reload: re-reads the config file and
  // applies what can change live (returns once read and queued).
  Result<std::string> OperatorRestart(const api::RestartRequest& request);
  Result<void> OperatorReinitialize(bool force);
  Result<void> OperatorReload();
  // DELETE /restart. kNotFound when no restart is scheduled.
  Result<void> OperatorCancelScheduledRestart();
  // The node's own checks of a dynamic config value (the keep-alive rule with this node's
  // keep-alive settings): nullopt when fine, else what is wrong.
  std::optional<std::string> CheckDynamicConfig(const std::string& config_json) const;

 private:
  Result<void> StartThreads();
  void ControlTurn();
  void Execute(const core::Decision& decision, const core::Observation& obs);
  PgTask MakeTask(const core::Action& action) const;
  void ApplyDynamicConfig(const core::ClusterView& view);
  void MoveKeysToSuccessorLease();
  void ApplyLocalConfig(const config::Config& reloaded);
  void RunOperatorRequest();
  // The scheduled restart (agent_operations.cc): runs it when due, publishes it in the member
  // key. Returns when the control thread must wake for it.
  std::optional<SteadyTime> CheckScheduledRestart();
  void ApplyParametersIfChanged();
  Result<void> QueueOperatorRequest(std::shared_ptr<OperatorRequest> request,
                                    Duration submit_timeout);
  void FenceLoop();
  // Arms / disarms the watchdog from the fence thread (docs/watchdog.md). Never blocks.
  void FeedWatchdog(int64_t lease_end_ns);
  Result<void> StartWatchdog();  // control thread, before any other thread starts
  std::optional<std::string> WatchdogLog() const;  // nullopt: the agent's stderr
  void WatchLoop();
  void Publish(const core::Decision& decision);
  void Shutdown();
  bool MayAcceptWrites() const;

  config::Config node_;
  const std::string config_path_;
  const config::PgwardenSettings pgwarden_settings_;  // fixed at start (keep-alive settings)
  config::DynamicConfig dynamic_;
  int64_t dynamic_revision_ = -1;
  core::HaConfig ha_;
  config::HaTiming timing_;
  cluster::Keys keys_;

  std::unique_ptr<dcs::EtcdDcs> dcs_;  // control thread's connection
  std::unique_ptr<cluster::ClusterStore> store_;
  std::unique_ptr<LeaseKeeper> keeper_;
  std::unique_ptr<PgWorker> worker_;
  std::unique_ptr<Prober> prober_;
  std::unique_ptr<AgentControl> control_;
  std::unique_ptr<api::PatroniApi> api_;
  std::unique_ptr<api::HttpServer> server_;

  // Control thread state.
  core::AgentMemory memory_;
  std::optional<core::ClusterView> view_;
  std::vector<core::Outcome> outcomes_;  // etcd / probe outcomes for the next turn
  std::string last_reason_;
  SteadyTime wake_at_{};
  SystemTime dcs_last_seen_{};
  bool leader_ = false;
  std::optional<SteadyTime> last_pg_failure_;  // the last PostgreSQL operation failed then
  // A retry pause: the next turn is not earlier.
  std::optional<SteadyTime> wake_at_floor_;
  // A running replica without a WAL receiver, since then.
  std::optional<SteadyTime> not_streaming_since_;
  int lease_move_conflicts_ = 0;  // failed moves of our keys to the successor lease
  // The managed PostgreSQL parameters as last handed to the worker (nullopt: not yet).
  std::optional<std::map<std::string, std::string>> applied_parameters_;
  bool publishing_stopping_ = false;  // a switchover stops PostgreSQL: member state "stopping"

  // Cross-thread.
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool woken_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> leader_flag_{false};  // the last decision's `leader`
  std::atomic<bool> fence_now_{false};    // the lease was lost: fence at once
  std::atomic<bool> threads_stop_{false};
  std::atomic<bool> apply_failed_{false};  // the last parameter reload failed: retry
  std::mutex op_mu_;
  std::shared_ptr<OperatorRequest> operator_request_;  // guarded by op_mu_
  api::RestartSchedule restart_schedule_;              // POST /restart with "schedule"
  uint64_t restart_schedule_published_ = 0;  // its version in the member key (control thread)
  std::map<MemberName, std::string> scheduled_restarts_;  // the members' keys show (/cluster)
  std::thread fence_thread_;
  std::unique_ptr<WatchdogClient> watchdog_;  // null: it could not start; fence thread only
  SteadyTime watchdog_complained_{};         // rate limit of its warnings (fence thread)
  std::string watchdog_exe_;
  std::thread watch_thread_;
  std::unique_ptr<dcs::Watch> watch_;
  std::mutex watch_mu_;
};

}  // namespace pgwarden::agent
