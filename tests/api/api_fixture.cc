#include "api/api_fixture.h"

#include "api/raw_client.h"

namespace pgwarden::api::testing {

using std::chrono::milliseconds;

ClusterView ThreeMembers() {
  ClusterView c;
  c.leader = "n1";
  c.leader_lsn = Lsn(0x3000000);
  ClusterMember n1;
  n1.name = "n1";
  n1.state = "running";
  n1.host = "10.0.0.1";
  n1.port = 5432;
  n1.api_url = "http://10.0.0.1:8008/patroni";
  n1.timeline = Timeline(3);
  n1.lsn = Lsn(0x3000000);
  ClusterMember n2;
  n2.name = "n2";
  n2.state = "running";
  n2.replication_state = "streaming";
  n2.host = "10.0.0.2";
  n2.port = 5433;
  n2.api_url = "http://10.0.0.2:8008/patroni";
  n2.timeline = Timeline(3);
  n2.lsn = Lsn(0x3000000 - 0x1000);
  n2.receive_lsn = Lsn(0x3000000 - 0x800);
  n2.replay_lsn = Lsn(0x3000000 - 0x1000);
  n2.tags.user["dc"] = "east";
  ClusterMember n3;
  n3.name = "n3";
  n3.state = "running";
  n3.api_url = "http://10.0.0.3:8008/patroni";
  n3.tags.nofailover = true;
  // Listed out of order: /cluster sorts by name.
  c.members = {n3, n1, n2};
  c.history.push_back(
      HistoryEntry{1, 25623960, "no recovery target specified", "2024-01-02T03:04:05+00:00", "n1"});
  c.history.push_back(HistoryEntry{2, 50331856, "no recovery target specified", "", ""});
  c.config_json = R"({"ttl":30,"loop_wait":10})";
  return c;
}

ApiSnapshot PrimarySnapshot() {
  ApiSnapshot s;
  s.self.name = "n1";
  s.self.scope = "demo";
  s.self.state = PgState::kRunning;
  s.self.role = PgRole::kPrimary;
  s.self.holds_leader_lock = true;
  s.self.server_version = 150004;
  s.self.postmaster_start_time =
      SystemTime(std::chrono::seconds(1724873966)) + std::chrono::microseconds(352526);
  s.self.timeline = Timeline(3);
  s.self.xlog_location = Lsn(0x3000000);
  s.self.replication.push_back(
      ReplicationRow{"replicator", "n2", "10.0.0.2", "streaming", "async", 0});
  s.self.database_system_identifier = "7268616322854375442";
  s.self.dcs_last_seen = 1724874235;
  s.cluster = ThreeMembers();
  return s;
}

ApiSnapshot ReplicaSnapshot() {
  ApiSnapshot s = PrimarySnapshot();
  s.self.name = "n2";
  s.self.role = PgRole::kReplica;
  s.self.holds_leader_lock = false;
  s.self.xlog_location.reset();
  s.self.received_location = Lsn(0x3000000 - 0x800);
  s.self.replayed_location = Lsn(0x3000000 - 0x1000);
  s.self.replication_state = "streaming";
  s.self.replication.clear();
  s.self.tags.user["dc"] = "east";
  return s;
}

ApiSnapshot SyncReplicaSnapshot() {
  ApiSnapshot s = ReplicaSnapshot();
  s.cluster->synchronous_mode = true;
  s.cluster->sync_standbys = {"n2"};
  return s;
}

ApiSnapshot QuorumReplicaSnapshot() {
  ApiSnapshot s = SyncReplicaSnapshot();
  s.cluster->sync_standbys = {"n2", "n3"};
  s.cluster->sync_quorum = 1;
  return s;
}

ApiSnapshot NoLoadBalanceSnapshot() {
  ApiSnapshot s = ReplicaSnapshot();
  s.self.tags.noloadbalance = true;
  return s;
}

ApiSnapshot StoppedSnapshot() {
  ApiSnapshot s = ReplicaSnapshot();
  s.self.state = PgState::kStopped;
  s.self.replication_state.clear();
  return s;
}

// ---------------------------------------------------------------------------------------------

Result<std::string> FakeControlPlane::Record(std::string call, std::string ok_message) {
  std::unique_lock lock(mu_);
  calls_.push_back(std::move(call));
  if (held_) {
    ++waiting_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(5), [this] { return !held_; });
    --waiting_;
  }
  if (error_) return Fail(*error_);
  return ok_message;
}

Result<std::string> FakeControlPlane::RequestSwitchover(const SwitchoverRequest& request) {
  {
    std::lock_guard lock(mu_);
    switchovers_.push_back(request);
  }
  return Record("switchover " + request.leader + " -> " + request.candidate.value_or("*"),
                request.scheduled_at ? "" : "Successfully switched over to \"n2\"");
}

Result<std::string> FakeControlPlane::RequestFailover(const std::string& candidate) {
  return Record("failover -> " + candidate, "");
}

Result<void> FakeControlPlane::CancelScheduledSwitchover() {
  auto r = Record("cancel switchover", "");
  if (!r) return Fail(r.error());
  return Ok();
}

Result<std::string> FakeControlPlane::PatchConfig(const std::string& patch_json) {
  return Record("patch " + patch_json, R"({"ttl":20,"loop_wait":10})");
}

Result<std::string> FakeControlPlane::ReplaceConfig(const std::string& config_json) {
  return Record("replace " + config_json, config_json);
}

Result<std::string> FakeControlPlane::Restart(const RestartRequest& request) {
  {
    std::lock_guard lock(mu_);
    restarts_.push_back(request);
  }
  return Record("restart", "");
}

Result<void> FakeControlPlane::CancelScheduledRestart() {
  auto r = Record("cancel restart", "");
  if (!r) return Fail(r.error());
  return Ok();
}

Result<void> FakeControlPlane::Reload() {
  auto r = Record("reload", "");
  if (!r) return Fail(r.error());
  return Ok();
}

Result<void> FakeControlPlane::Reinitialize(bool force, bool from_leader) {
  auto r = Record(std::string("reinitialize force=") + (force ? "1" : "0") +
                      " from_leader=" + (from_leader ? "1" : "0"),
                  "");
  if (!r) return Fail(r.error());
  return Ok();
}

std::vector<std::string> FakeControlPlane::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

std::vector<SwitchoverRequest> FakeControlPlane::switchovers() const {
  std::lock_guard lock(mu_);
  return switchovers_;
}

std::vector<RestartRequest> FakeControlPlane::restarts() const {
  std::lock_guard lock(mu_);
  return restarts_;
}

void FakeControlPlane::FailWith(std::optional<Error> error) {
  std::lock_guard lock(mu_);
  error_ = std::move(error);
}

void FakeControlPlane::Hold() {
  std::lock_guard lock(mu_);
  held_ = true;
}

void FakeControlPlane::Release() {
  {
    std::lock_guard lock(mu_);
    held_ = false;
  }
  cv_.notify_all();
}

int FakeControlPlane::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_;
}

// ---------------------------------------------------------------------------------------------

void ApiTest::SetUp() {
  api_ = std::make_unique<PatroniApi>(&control_, clock_);
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  options.read_timeout = milliseconds(2000);
  server_ = std::make_unique<HttpServer>(options, api_->Handler());
  auto started = server_->Start();
  ASSERT_TRUE(started) << started.error().ToString();
}

void ApiTest::TearDown() {
  control_.Release();
  server_.reset();  // stop serving before the API goes away
  api_.reset();
}

void ApiTest::Publish(ApiSnapshot snapshot) {
  api_->SetSnapshot(std::make_shared<const ApiSnapshot>(std::move(snapshot)));
}

std::string ApiTest::Url(const std::string& target) const {
  return "http://127.0.0.1:" + std::to_string(server_->port()) + target;
}

HttpResponse ApiTest::Get(const std::string& target) {
  auto res = HttpGet(Url(target), milliseconds(3000));
  EXPECT_TRUE(res) << target << ": " << res.error().ToString();
  return res ? *res : HttpResponse{};
}

HttpResponse ApiTest::Send(const std::string& method, const std::string& target,
                           const std::string& body) {
  HttpClientRequest req;
  req.method = method;
  req.url = Url(target);
  req.body = body;
  req.timeout = milliseconds(6000);
  auto res = HttpCall(req);
  EXPECT_TRUE(res) << method << " " << target << ": " << res.error().ToString();
  return res ? *res : HttpResponse{};
}

namespace {

int BodylessStatus(uint16_t port, const std::string& method, const std::string& target) {
  RawClient c(port);
  EXPECT_TRUE(c.Send(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string res = c.ReadResponse(/*no_body=*/true);
  EXPECT_EQ(BodyOf(res), "") << method << " " << target;
  // Nothing else follows on the connection: the next answer starts with a status line.
  EXPECT_TRUE(c.Send("OPTIONS /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse(true).substr(0, 9), "HTTP/1.1 ") << method << " " << target;
  return StatusOf(res);
}

}  // namespace

int ApiTest::HeadStatus(const std::string& target) {
  return BodylessStatus(server_->port(), "HEAD", target);
}

int ApiTest::OptionsStatus(const std::string& target) {
  return BodylessStatus(server_->port(), "OPTIONS", target);
}

}  // namespace pgwarden::api::testing
