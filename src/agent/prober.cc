// Prober and the parsing of a peer's GET /patroni answer.
#include <future>
#include <nlohmann/json.hpp>

#include "agent/agent_internal.h"
#include "api/http_client.h"

namespace pgwarden::agent {

void Prober::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Prober::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Prober::Request(std::vector<std::pair<MemberName, std::string>> peers, Duration timeout) {
  {
    std::lock_guard lock(mu_);
    pending_ = std::make_pair(std::move(peers), timeout);
  }
  cv_.notify_all();
}

std::optional<core::PeerProbe> Prober::Latest() const {
  std::lock_guard lock(mu_);
  return latest_;
}

void Prober::Run() {
  while (true) {
    std::pair<std::vector<std::pair<MemberName, std::string>>, Duration> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || pending_.has_value(); });
      if (stop_) return;
      job = std::move(*pending_);
      pending_.reset();
    }
    core::PeerProbe probe;
    probe.started_at = SteadyClock::now();
    const auto timeout = std::chrono::duration_cast<milliseconds>(job.second);
    std::vector<std::pair<MemberName, std::future<core::PeerStatus>>> calls;
    for (auto& [name, url] : job.first) {
      calls.emplace_back(name, std::async(std::launch::async, [url, timeout] {
                           core::PeerStatus s;
                           if (url.empty()) return s;
                           auto r = api::HttpGet(url, timeout);
                           if (!r) return s;
                           auto parsed = ParsePeerStatus(r->body);
                           return parsed ? *parsed : s;
                         }));
    }
    for (auto& [name, f] : calls) probe.peers[name] = f.get();
    {
      std::lock_guard lock(mu_);
      latest_ = std::move(probe);
    }
    on_done_();
  }
}

Result<core::PeerStatus> ParsePeerStatus(const std::string& text) {
  using nlohmann::json;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Fail(ErrorCode::kCorrupt, "peer status: not a JSON object");
  try {
    core::PeerStatus s;
    s.reachable = true;
    s.running = j.value("state", "") == "running";
    const std::string role = j.value("role", "");
    s.role =
        (role == "primary" || role == "master") ? core::PgRole::kPrimary : core::PgRole::kReplica;
    if (j.contains("timeline") && j["timeline"].is_number_unsigned()) {
      s.timeline = Timeline(j["timeline"].get<uint32_t>());
    }
    auto lsn = [](const json& v) {
      return v.is_number_unsigned() ? Lsn(v.get<uint64_t>()) : Lsn();
    };
    if (j.contains("xlog") && j["xlog"].is_object()) {
      const json& x = j["xlog"];
      if (x.contains("location")) s.received_lsn = lsn(x["location"]);
      if (x.contains("received_location")) s.received_lsn = lsn(x["received_location"]);
      if (x.contains("replayed_location")) s.replayed_lsn = lsn(x["replayed_location"]);
    }
    if (j.contains("tags") && j["tags"].is_object()) {
      const json& t = j["tags"];
      s.tags.nofailover = t.value("nofailover", false);
      s.tags.nosync = t.value("nosync", false);
      s.tags.noloadbalance = t.value("noloadbalance", false);
      if (t.contains("failover_priority") && t["failover_priority"].is_number_integer()) {
        s.tags.failover_priority = t["failover_priority"].get<int>();
      }
    }
    return s;
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kCorrupt, std::string("peer status: ") + e.what());
  }
}

}  // namespace pgwarden::agent
