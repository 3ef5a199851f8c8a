// Internal pieces of the agent shared by its .cc files: the Agent class itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/lease_keeper.h"
#include "agent/pg_worker.h"
#include "api/http_server.h"
#include "api/patroni_api.h"
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
  AgentControl(Agent& agent, std::unique_ptr<dcs::Dcs> dcs, cluster::Keys keys,
               Duration switchover_timeout);
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
};

class Agent {
 public:
  explicit Agent(config::Config node);
  ~Agent();
  // Starts the threads and runs the control loop until RequestStop(). Returns the exit status.
  int Run();
  void RequestStop();
  void Wake();

 private:
  Result<void> StartThreads();
  void ControlTurn();
  void Execute(const core::Decision& decision, const core::Observation& obs);
  PgTask MakeTask(const core::Action& action) const;
  void ApplyDynamicConfig(const core::ClusterView& view);
  void FenceLoop();
  void WatchLoop();
  void Publish(const core::Decision& decision);
  void Shutdown();
  bool MayAcceptWrites() const;

  config::Config node_;
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
  std::optional<SteadyTime> wake_at_floor_;
  std::optional<SteadyTime> not_streaming_since_;  // running replica without a WAL receiver    // a
                                                   // retry pause: the next turn is not earlier

  // Cross-thread.
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool woken_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> leader_flag_{false};  // the last decision's `leader`
  std::atomic<bool> fence_now_{false};    // the lease was lost: fence at once
  std::atomic<bool> threads_stop_{false};
  std::thread fence_thread_;
  std::thread watch_thread_;
  std::unique_ptr<dcs::Watch> watch_;
  std::mutex watch_mu_;
};

}  // namespace pgwarden::agent
