#include "support/etcd_server.h"

#include <algorithm>

#include "common/clock.h"
#include "support/ports.h"

namespace pgwarden::testing {
namespace {

launch::EtcdSpec Spec(std::string name, std::string data_dir, uint16_t client_port,
                      uint16_t peer_port, std::string initial_cluster) {
  launch::EtcdSpec spec;
  spec.name = std::move(name);
  spec.data_dir = std::move(data_dir);
  spec.client_port = client_port;
  spec.peer_port = peer_port;
  spec.initial_cluster = std::move(initial_cluster);
  spec.cluster_token = "pgwarden-test";
  spec.die_with_parent = true;
  return spec;
}

}  // namespace

EtcdServer::EtcdServer() : own_dir_(std::make_unique<TempDir>("etcd")) {
  auto spec = Spec("etcd1", own_dir_->Sub("data"), FreeLoopbackPort(), FreeLoopbackPort(), "");
  spec.log_path = own_dir_->Sub("etcd.log");
  process_ = std::make_unique<launch::EtcdProcess>(std::move(spec));
}

EtcdServer::EtcdServer(std::string name, std::string data_dir, uint16_t client_port,
                       uint16_t peer_port, std::string initial_cluster)
    : process_(std::make_unique<launch::EtcdProcess>(Spec(std::move(name), std::move(data_dir),
                                                          client_port, peer_port,
                                                          std::move(initial_cluster)))) {}

EtcdServer::~EtcdServer() = default;  // EtcdProcess thaws and kills it

Result<void> EtcdServer::Start(std::chrono::milliseconds wait) { return process_->Start(wait); }
Result<void> EtcdServer::WaitReady(std::chrono::milliseconds wait) {
  return process_->WaitReady(wait);
}
void EtcdServer::Stop() { process_->Stop(); }
void EtcdServer::Kill() { process_->Kill(); }
void EtcdServer::Freeze() { process_->Freeze(); }
void EtcdServer::Thaw() { process_->Thaw(); }
bool EtcdServer::Running() { return process_->Running(); }

EtcdCluster::EtcdCluster(int members) : dir_("etcd-cluster") {
  std::vector<uint16_t> client_ports, peer_ports;
  std::string initial;
  for (int i = 0; i < members; ++i) {
    client_ports.push_back(FreeLoopbackPort());
    peer_ports.push_back(FreeLoopbackPort());
    if (!initial.empty()) initial += ",";
    initial += "m" + std::to_string(i + 1) + "=" + launch::LoopbackUrl(peer_ports.back());
  }
  for (int i = 0; i < members; ++i) {
    const std::string name = "m" + std::to_string(i + 1);
    members_.push_back(std::make_unique<EtcdServer>(name, dir_.Sub(name), client_ports[i],
                                                    peer_ports[i], initial));
  }
}

Result<void> EtcdCluster::Start(std::chrono::milliseconds wait) {
  for (auto& m : members_) {
    auto started = m->Start(std::chrono::milliseconds(0));
    if (!started) return started;
  }
  const auto deadline = SteadyClock::now() + wait;
  for (auto& m : members_) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    auto ready = m->WaitReady(std::max(left, std::chrono::milliseconds(1)));
    if (!ready) return ready;
  }
  return Ok();
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(m->endpoint());
  return out;
}

}  // namespace pgwarden::testing
