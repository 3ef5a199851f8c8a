// Shared set-up for the Patroni API tests: snapshots of typical members, a recording fake
// ControlPlane, and a fixture running PatroniApi behind a real HttpServer on a loopback port.
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/http_client.h"
#include "api/http_server.h"
#include "api/patroni_api.h"
#include "common/clock.h"

namespace pgwarden::api::testing {

// Cluster "demo": n1 leader at 0/3000000, n2 streaming replica, n3 replica tagged nofailover.
ClusterView ThreeMembers();
// n1: running primary holding the lock.
ApiSnapshot PrimarySnapshot();
// n2: running streaming replica, 0x1000 bytes behind the leader, tags {dc: east}.
ApiSnapshot ReplicaSnapshot();
// n2 as above, listed in /sync with synchronous mode on.
ApiSnapshot SyncReplicaSnapshot();
// n2 listed in a quorum set (synchronous_mode: quorum): sync key {n2, n3}, quorum 1.
ApiSnapshot QuorumReplicaSnapshot();
// n2 as above, tagged noloadbalance.
ApiSnapshot NoLoadBalanceSnapshot();
// n2 with PostgreSQL stopped.
ApiSnapshot StoppedSnapshot();

// Records every call; answers with the configured results. Thread-safe. Optionally holds each
// call until Release() (to test that slow control calls do not block reads).
class FakeControlPlane final : public ControlPlane {
 public:
  Result<std::string> RequestSwitchover(const SwitchoverRequest& request) override;
  Result<std::string> RequestFailover(const std::string& candidate) override;
  Result<void> CancelScheduledSwitchover() override;
  Result<std::string> PatchConfig(const std::string& patch_json) override;
  Result<std::string> ReplaceConfig(const std::string& config_json) override;
  Result<std::string> Restart(const RestartRequest& request) override;
  Result<void> CancelScheduledRestart() override;
  Result<void> Reload() override;
  Result<void> Reinitialize(bool force, bool from_leader) override;

  std::vector<std::string> calls() const;
  std::vector<SwitchoverRequest> switchovers() const;
  std::vector<RestartRequest> restarts() const;

  // The next calls fail with this error (nullopt: succeed).
  void FailWith(std::optional<Error> error);
  // While held, calls wait (bounded, 5 s) until Release().
  void Hold();
  void Release();
  int waiting() const;

 private:
  Result<std::string> Record(std::string call, std::string ok_message);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> calls_;
  std::vector<SwitchoverRequest> switchovers_;
  std::vector<RestartRequest> restarts_;
  std::optional<Error> error_;
  bool held_ = false;
  int waiting_ = 0;
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  void Publish(ApiSnapshot snapshot);
  std::string Url(const std::string& target) const;
  HttpResponse Get(const std::string& target);
  HttpResponse Send(const std::string& method, const std::string& target, const std::string& body);
  // The status of HEAD and OPTIONS on `target`, checked to carry no body.
  int HeadStatus(const std::string& target);
  int OptionsStatus(const std::string& target);

  FakeClock clock_;
  FakeControlPlane control_;
  std::unique_ptr<PatroniApi> api_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace pgwarden::api::testing
