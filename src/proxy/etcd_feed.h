// EtcdFeed: the control side of `pgwarden proxy`. Reads the cluster from etcd, turns it into a
// routing Topology (BuildTopology, pure) and hands it to a TopologySink (the ProxyServer),
// then watches the cluster prefix and rebuilds on every batch of events.
//
// Freshness: every successful read and every watch answer (events or an empty wait that etcd
// confirmed) is reported with ReportDcsContact(); besides the watch, a cheap read of the
// leader key runs every `contact_interval` so that a quiet but healthy etcd keeps the primary
// usable, while an unreachable etcd stops the reports and the data plane's freshness rule
// (dcs_ttl) makes the primary unusable. docs/proxy.md "Control side".
//
// One thread (Start/Stop); the feed owns its own EtcdDcs connections.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"
#include "core/model.h"
#include "dcs/dcs.h"
#include "proxy/topology.h"

namespace pgwarden::proxy {

// host:port of a Patroni-style conn_url ("postgres://user@10.0.0.1:5432/postgres"); nullopt
// when it has none.
std::optional<Endpoint> EndpointOfConnUrl(const std::string& conn_url);

// The routing snapshot of a cluster view. Rules (the data plane's contract, topology.h):
//  * primary: the member holding the leader key, only when its member key says role primary,
//    state running, and its conn_url has host:port;
//  * sync replicas: members named in the `sync` key (not the leader) that run as replicas;
//  * async replicas: every other running replica;
//  * lag: the leader's `status` optime minus the replica's received (else replayed) position,
//    0 when unknown or ahead; noloadbalance from the member's tags.
//  * with `hold_for_switchover` and SwitchoverPending(view): no primary either (the leader is
//    about to stop; primary-port clients are held instead of being sent to a server that is
//    shutting down, and are released to the new primary).
// `generation` is copied into the snapshot.
Topology BuildTopology(const core::ClusterView& view, uint64_t generation,
                       bool hold_for_switchover = false);

// An unscheduled `failover` request that will make the current leader step down: it names the
// leader, or names only a candidate other than the leader.
bool SwitchoverPending(const core::ClusterView& view);

// The dynamic config's ttl (etcd `config` key); nullopt when absent or invalid.
std::optional<std::chrono::seconds> TtlOfView(const core::ClusterView& view);

// Where the feed delivers (ProxyServer implements it through a small adapter; tests record).
struct TopologySink {
  std::function<void(std::shared_ptr<const Topology>)> set_topology;
  std::function<void()> report_contact;
};

struct EtcdFeedOptions {
  std::string name_space = "/service";
  std::string scope;
  // How often to read the leader key when the watch is quiet (keeps the view fresh).
  std::chrono::milliseconds contact_interval{500};
  // Pause after a failed read before the next try.
  std::chrono::milliseconds retry_interval{200};
  // How long a pending switchover request (SwitchoverPending) hides the primary at most; after
  // that the primary is routed again while the request lingers (a leader that refused it).
  // Zero: switchover requests are not looked at.
  std::chrono::milliseconds switchover_hold{5000};
};

class EtcdFeed {
 public:
  // `read_dcs` serves the cluster reads, `contact_dcs` the periodic leader-key read (its own
  // connection, so a slow full read does not delay it), `watch_dcs` opens the watch. All must
  // outlive the feed; they may be the same object.
  EtcdFeed(EtcdFeedOptions options, dcs::Dcs& read_dcs, dcs::Dcs& contact_dcs, dcs::Dcs& watch_dcs,
           TopologySink sink);
  ~EtcdFeed();  // Stop()s
  EtcdFeed(const EtcdFeed&) = delete;
  EtcdFeed& operator=(const EtcdFeed&) = delete;

  // Starts the watch thread and the contact thread.
  void Start();
  void Stop();

  // The dynamic config's ttl from the last read that had a valid `config` key.
  std::optional<std::chrono::seconds> LastTtl() const;
  uint64_t generation() const { return generation_.load(); }

 private:
  void WatchLoop();
  void ContactLoop();
  // Reads the prefix and publishes a snapshot; the read's revision (0 on failure).
  dcs::Revision ReadAndPublish();
  bool SleepFor(std::chrono::milliseconds d);  // false when stopping

  EtcdFeedOptions options_;
  dcs::Dcs& read_dcs_;
  dcs::Dcs& contact_dcs_;
  dcs::Dcs& watch_dcs_;
  TopologySink sink_;
  std::string prefix_;
  std::string leader_key_;

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> generation_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::chrono::seconds> ttl_;          // guarded by mu_
  std::mutex publish_mu_;                            // one read-and-publish at a time
  dcs::Revision published_revision_ = 0;             // guarded by publish_mu_
  std::optional<Topology> published_;                // guarded by publish_mu_ (generation 0)
  std::optional<core::LeaderKey> published_leader_;  // guarded by publish_mu_
  // The pending switchover request (its mod_revision) and when the feed first saw it.
  std::optional<std::pair<int64_t, std::chrono::steady_clock::time_point>> switchover_seen_;
  std::atomic<bool> hiding_for_switchover_{false};
  std::unique_ptr<dcs::Watch> watch_;  // guarded by mu_ (for Cancel)
  std::thread watch_thread_;
  std::thread contact_thread_;
};

}  // namespace pgwarden::proxy
