// The operator interface's pure pieces: the merge patch and validation behind PATCH/PUT
// /config (through the real PatroniApi, so the HTTP status and message are checked too), the
// compare-and-swap write with its retry, and the LeaseKeeper's ttl change (successor lease,
// adoption, revocation of the old lease) over the in-memory DCS.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/config_patch.h"
#include "agent/lease_keeper.h"
#include "api/patroni_api.h"
#include "dcs/memory/memory_dcs.h"

namespace pgwarden::agent {
namespace {

using Json = nlohmann::json;
constexpr char kKey[] = "/service/demo/config";
constexpr char kConfig[] =
    R"({"ttl":2,"loop_wait":0.5,"retry_timeout":1,"postgresql":{"parameters":{"work_mem":"4MB","max_connections":50}}})";

TEST(MergeConfigPatch, NullDeletesObjectsMergeOthersReplace) {
  auto merged = MergeConfigPatch(
      std::string(kConfig),
      R"({"ttl":5,"postgresql":{"parameters":{"work_mem":null,"shared_buffers":"32MB"}},"x":[1]})");
  ASSERT_TRUE(merged) << merged.error().ToString();
  Json j = Json::parse(*merged);
  EXPECT_EQ(j["ttl"], 5);
  EXPECT_EQ(j["loop_wait"], 0.5);
  EXPECT_FALSE(j["postgresql"]["parameters"].contains("work_mem"));
  EXPECT_EQ(j["postgresql"]["parameters"]["shared_buffers"], "32MB");
  EXPECT_EQ(j["postgresql"]["parameters"]["max_connections"], 50);
  EXPECT_EQ(j["x"], Json::parse("[1]"));
}

TEST(MergeConfigPatch, RejectsWhatIsNotAnObject) {
  auto bad_json = MergeConfigPatch(std::string(kConfig), "{\"ttl\": ");
  ASSERT_FALSE(bad_json);
  EXPECT_EQ(bad_json.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad_json.error().message.find("not valid JSON"), std::string::npos);
  auto array = MergeConfigPatch(std::string(kConfig), "[1,2]");
  ASSERT_FALSE(array);
  EXPECT_EQ(array.error().code, ErrorCode::kInvalidArgument);
  auto corrupt = MergeConfigPatch(std::string("\"text\""), "{}");
  ASSERT_FALSE(corrupt);
  EXPECT_EQ(corrupt.error().code, ErrorCode::kCorrupt);
}

TEST(ValidateConfigJson, NamesTheKeyThatIsWrong) {
  EXPECT_TRUE(ValidateConfigJson(kConfig));
  auto bad = ValidateConfigJson(R"({"ttl":"soon"})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("ttl"), std::string::npos) << bad.error().message;
  auto range = ValidateConfigJson(R"({"synchronous_node_count":-3})");
  ASSERT_FALSE(range);
  EXPECT_NE(range.error().message.find("synchronous_node_count"), std::string::npos)
      << range.error().message;
  auto extra = ValidateConfigJson(kConfig, [](const std::string&) {
    return std::optional<std::string>("config: ttl: too short for this node");
  });
  ASSERT_FALSE(extra);
  EXPECT_NE(extra.error().message.find("too short"), std::string::npos);
}

class ConfigKeyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dcs_.Put(kKey, kConfig)); }
  int64_t Revision() {
    auto r = dcs_.Get(kKey);
    return r && !r->kvs.empty() ? r->kvs.front().mod_revision : 0;
  }
  Json Value() {
    auto r = dcs_.Get(kKey);
    return Json::parse(r->kvs.front().value);
  }
  FakeClock clock_;
  dcs::MemoryDcs dcs_{clock_};
};

TEST_F(ConfigKeyTest, PatchWritesTheMergedConfig) {
  auto written = PatchConfigKey(dcs_, kKey, R"({"synchronous_mode":true})");
  ASSERT_TRUE(written) << written.error().ToString();
  EXPECT_EQ(Value()["synchronous_mode"], true);
  EXPECT_EQ(Value()["ttl"], 2);
  EXPECT_EQ(Json::parse(*written), Value());
}

TEST_F(ConfigKeyTest, InvalidPatchWritesNothing) {
  const int64_t before = Revision();
  for (const char* patch : {R"({"ttl":1})", R"({"loop_wait":"often"})",
                            R"({"postgresql":{"parameters":[1]}})", "{nope"}) {
    auto r = PatchConfigKey(dcs_, kKey, patch);
    ASSERT_FALSE(r) << patch;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << patch;
  }
  auto put = ReplaceConfigKey(dcs_, kKey, R"({"ttl":0})");
  ASSERT_FALSE(put);
  EXPECT_NE(put.error().message.find("ttl"), std::string::npos) << put.error().message;
  EXPECT_EQ(Revision(), before);
}

TEST_F(ConfigKeyTest, PatchWithoutAConfigKeyIsNotFound) {
  ASSERT_TRUE(dcs_.Delete(kKey));
  auto r = PatchConfigKey(dcs_, kKey, R"({"ttl":5})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  // PUT creates it.
  ASSERT_TRUE(ReplaceConfigKey(dcs_, kKey, R"({"ttl":5})"));
  EXPECT_EQ(Value()["ttl"], 5);
}

// A Dcs whose key changes between our read and our compare-and-swap, `races` times.
class RacingDcs final : public dcs::Dcs {
 public:
  RacingDcs(dcs::Dcs& inner, int races) : inner_(inner), races_(races) {}
  Result<dcs::RangeResult> Get(const std::string& key, bool prefix) override {
    return inner_.Get(key, prefix);
  }
  Result<dcs::Revision> Put(const std::string& key, const std::string& value,
                            dcs::LeaseId lease) override {
    return inner_.Put(key, value, lease);
  }
  Result<int64_t> Delete(const std::string& key, bool prefix) override {
    return inner_.Delete(key, prefix);
  }
  Result<dcs::TxnResult> Txn(const std::vector<dcs::Compare>& compares,
                             const std::vector<dcs::TxnOp>& success,
                             const std::vector<dcs::TxnOp>& failure) override {
    if (races_ > 0) {
      --races_;
      ++txns_raced_;
      // Someone else's edit lands first.
      auto r = inner_.Get(kKey);
      Json j = Json::parse(r->kvs.front().value);
      j["maximum_lag_on_failover"] = 1000 + txns_raced_;
      inner_.Put(kKey, j.dump());
    }
    return inner_.Txn(compares, success, failure);
  }
  Result<dcs::LeaseGrant> GrantLease(std::chrono::seconds ttl) override {
    return inner_.GrantLease(ttl);
  }
  Result<std::chrono::seconds> KeepAlive(dcs::LeaseId id) override { return inner_.KeepAlive(id); }
  Result<void> RevokeLease(dcs::LeaseId id) override { return inner_.RevokeLease(id); }
  Result<dcs::LeaseStatus> LeaseTimeToLive(dcs::LeaseId id) override {
    return inner_.LeaseTimeToLive(id);
  }
  std::unique_ptr<dcs::Watch> WatchPrefix(const std::string& prefix, dcs::Revision start) override {
    return inner_.WatchPrefix(prefix, start);
  }
  int txns_raced_ = 0;

 private:
  dcs::Dcs& inner_;
  int races_;
};

TEST_F(ConfigKeyTest, LostCompareAndSwapIsRetriedOnTheNewValue) {
  RacingDcs racing(dcs_, 2);
  auto written = PatchConfigKey(racing, kKey, R"({"synchronous_mode":true})");
  ASSERT_TRUE(written) << written.error().ToString();
  EXPECT_EQ(racing.txns_raced_, 2);
  // Both edits are there: ours was merged into the other writer's value, not over it.
  EXPECT_EQ(Value()["synchronous_mode"], true);
  EXPECT_EQ(Value()["maximum_lag_on_failover"], 1002);
}

TEST_F(ConfigKeyTest, CompareAndSwapGivesUpAfterItsAttempts) {
  RacingDcs racing(dcs_, 100);
  auto r = CompareAndSwapConfig(
      racing, kKey, [](const std::optional<std::string>& c) -> Result<std::string> { return *c; },
      3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ(racing.txns_raced_, 3);
}

// PATCH /config through the real API with a ControlPlane that uses the same functions as the
// agent: the status codes and messages a client sees.
class KeyControlPlane final : public api::ControlPlane {
 public:
  explicit KeyControlPlane(dcs::Dcs& dcs) : dcs_(dcs) {}
  Result<std::string> RequestSwitchover(const api::SwitchoverRequest&) override {
    return Fail(ErrorCode::kFailed, "no");
  }
  Result<std::string> RequestFailover(const std::string&) override {
    return Fail(ErrorCode::kFailed, "no");
  }
  Result<void> CancelScheduledSwitchover() override { return Fail(ErrorCode::kNotFound, "no"); }
  Result<std::string> PatchConfig(const std::string& patch) override {
    return PatchConfigKey(dcs_, kKey, patch);
  }
  Result<std::string> ReplaceConfig(const std::string& config) override {
    return ReplaceConfigKey(dcs_, kKey, config);
  }
  Result<std::string> Restart(const api::RestartRequest&) override {
    return Fail(ErrorCode::kFailed, "no");
  }
  Result<void> CancelScheduledRestart() override { return Fail(ErrorCode::kNotFound, "no"); }
  Result<void> Reload() override { return Fail(ErrorCode::kFailed, "no"); }
  Result<void> Reinitialize(bool, bool) override { return Fail(ErrorCode::kFailed, "no"); }

 private:
  dcs::Dcs& dcs_;
};

api::HttpResponse Call(api::PatroniApi& api, const std::string& method, const std::string& body) {
  api::HttpRequest req;
  req.method = method;
  req.target = req.path = "/config";
  req.body = body;
  std::promise<api::HttpResponse> answer;
  auto future = answer.get_future();
  api.Handle(req, [&answer](api::HttpResponse r) { answer.set_value(std::move(r)); });
  EXPECT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  return future.get();
}

TEST_F(ConfigKeyTest, RestApiAnswersLikePatroni) {
  KeyControlPlane control(dcs_);
  api::PatroniApi api(&control);
  api.SetSnapshot(std::make_shared<api::ApiSnapshot>());
  const int64_t before = Revision();

  auto bad = Call(api, "PATCH", R"({"loop_wait": "often"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("loop_wait"), std::string::npos) << bad.body;
  auto not_json = Call(api, "PATCH", "{");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(Revision(), before);

  auto ok = Call(api, "PATCH", R"({"postgresql":{"parameters":{"work_mem":"8MB"}}})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  Json answered = Json::parse(ok.body);
  EXPECT_EQ(answered["postgresql"]["parameters"]["work_mem"], "8MB");
  EXPECT_EQ(answered, Value());

  auto put = Call(api, "PUT", R"({"ttl":3})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(Value(), Json::parse(R"({"ttl":3})"));

  ASSERT_TRUE(dcs_.Delete(kKey));
  EXPECT_EQ(Call(api, "PATCH", R"({"ttl":3})").status, 503);
}

// LeaseKeeper over the in-memory DCS (leases on the real clock).
bool WaitUntil(const std::function<bool()>& done, Duration limit = std::chrono::seconds(5)) {
  const SteadyTime deadline = SteadyClock::now() + limit;
  while (SteadyClock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST(LeaseKeeper, TtlChangeGrantsASuccessorThatIsAdoptedAndTheOldLeaseRevoked) {
  dcs::MemoryDcs store(RealClock::Instance());
  auto* raw = &store;
  // The keeper owns its Dcs: give it a forwarding one.
  class Forward final : public dcs::Dcs {
   public:
    explicit Forward(dcs::Dcs& d) : d_(d) {}
    Result<dcs::RangeResult> Get(const std::string& k, bool p) override { return d_.Get(k, p); }
    Result<dcs::Revision> Put(const std::string& k, const std::string& v, dcs::LeaseId l) override {
      return d_.Put(k, v, l);
    }
    Result<int64_t> Delete(const std::string& k, bool p) override { return d_.Delete(k, p); }
    Result<dcs::TxnResult> Txn(const std::vector<dcs::Compare>& c, const std::vector<dcs::TxnOp>& s,
                               const std::vector<dcs::TxnOp>& f) override {
      return d_.Txn(c, s, f);
    }
    Result<dcs::LeaseGrant> GrantLease(std::chrono::seconds t) override { return d_.GrantLease(t); }
    Result<std::chrono::seconds> KeepAlive(dcs::LeaseId id) override { return d_.KeepAlive(id); }
    Result<void> RevokeLease(dcs::LeaseId id) override { return d_.RevokeLease(id); }
    Result<dcs::LeaseStatus> LeaseTimeToLive(dcs::LeaseId id) override {
      return d_.LeaseTimeToLive(id);
    }
    std::unique_ptr<dcs::Watch> WatchPrefix(const std::string& p, dcs::Revision r) override {
      return d_.WatchPrefix(p, r);
    }

   private:
    dcs::Dcs& d_;
  };
  LeaseKeeper keeper(
      std::make_unique<Forward>(*raw), std::chrono::seconds(2), std::chrono::milliseconds(50),
      [] {}, [] {});
  std::atomic<int64_t> reconnected_ms{0};
  keeper.SetReconnect(
      [&](Duration timeout) -> std::unique_ptr<dcs::Dcs> {
        reconnected_ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
        return std::make_unique<Forward>(*raw);
      },
      std::chrono::milliseconds(500));
  keeper.Start();
  ASSERT_TRUE(WaitUntil([&] { return keeper.Facts().id != 0; }));
  const int64_t first = keeper.Facts().id;
  std::chrono::seconds ttl{0};
  keeper.Facts(&ttl);
  EXPECT_EQ(ttl, std::chrono::seconds(2));
  const int64_t end_before = keeper.LeaseEndNs();
  EXPECT_GT(end_before, 0);

  // A longer request timeout for the longer ttl: not before the new lease is adopted.
  keeper.SetTiming(std::chrono::seconds(7), std::chrono::milliseconds(50),
                   std::chrono::milliseconds(900));
  ASSERT_TRUE(WaitUntil([&] { return keeper.PendingSuccessor().has_value(); }));
  auto successor = *keeper.PendingSuccessor();
  EXPECT_NE(successor.id, first);
  EXPECT_EQ(successor.ttl, std::chrono::seconds(7));
  // Both held: the fence counts the earlier end (the 2 s lease), never the 7 s one.
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_LT(keeper.LeaseEndNs(), SteadyClock::now().time_since_epoch().count() +
                                     std::chrono::nanoseconds(std::chrono::seconds(2)).count());
  EXPECT_EQ(keeper.Facts().id, first);

  EXPECT_EQ(reconnected_ms.load(), 0);
  keeper.Adopt(successor.id);
  EXPECT_TRUE(WaitUntil([&] { return reconnected_ms.load() == 900; }));
  EXPECT_EQ(keeper.Facts(&ttl).id, successor.id);
  EXPECT_EQ(ttl, std::chrono::seconds(7));
  EXPECT_GT(keeper.LeaseEndNs(), SteadyClock::now().time_since_epoch().count() +
                                     std::chrono::nanoseconds(std::chrono::seconds(5)).count());
  // The old lease is revoked at the next renewal; the new one is kept alive at its ttl.
  ASSERT_TRUE(WaitUntil([&] {
    auto s = store.LeaseTimeToLive(first);
    return !s || s->ttl.count() < 0;
  }));
  auto status = store.LeaseTimeToLive(successor.id);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->granted_ttl, std::chrono::seconds(7));
  EXPECT_FALSE(keeper.PendingSuccessor().has_value());
  keeper.StopAndRevoke();
}

}  // namespace
}  // namespace pgwarden::agent
