// Routing, health decisions and control-request validation of the Patroni-compatible API.
#include "api/patroni_api.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/patroni_control.h"
#include "api/patroni_status.h"

namespace pgwarden::api {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Model helpers.

std::string_view ToString(PgState state) {
  switch (state) {
    case PgState::kInitdb:
      return "initializing new cluster";
    case PgState::kInitdbFailed:
      return "initdb failed";
    case PgState::kCustomBootstrap:
      return "running custom bootstrap script";
    case PgState::kCustomBootstrapFailed:
      return "custom bootstrap failed";
    case PgState::kCreatingReplica:
      return "creating replica";
    case PgState::kRunning:
      return "running";
    case PgState::kStarting:
      return "starting";
    case PgState::kBootstrapStarting:
      return "starting after custom bootstrap";
    case PgState::kStartFailed:
      return "start failed";
    case PgState::kRestarting:
      return "restarting";
    case PgState::kRestartFailed:
      return "restart failed";
    case PgState::kStopping:
      return "stopping";
    case PgState::kStopped:
      return "stopped";
    case PgState::kStopFailed:
      return "stop failed";
    case PgState::kCrashed:
      return "crashed";
    case PgState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::string_view ToString(PgRole role) {
  switch (role) {
    case PgRole::kUninitialized:
      return "uninitialized";
    case PgRole::kPrimary:
      return "primary";
    case PgRole::kReplica:
      return "replica";
    case PgRole::kStandbyLeader:
      return "standby_leader";
    case PgRole::kDemoted:
      return "demoted";
  }
  return "uninitialized";
}

std::optional<std::string> MemberTags::Lookup(const std::string& key) const {
  if (key == "nofailover") return nofailover ? "true" : "false";
  if (key == "noloadbalance") return noloadbalance ? "true" : "false";
  if (key == "nosync") return nosync ? "true" : "false";
  if (key == "failover_priority") {
    if (!failover_priority) return std::nullopt;
    return std::to_string(*failover_priority);
  }
  auto it = user.find(key);
  if (it == user.end()) return std::nullopt;
  return it->second;
}

bool ApiSnapshot::IsSyncStandby() const {
  if (!cluster || !cluster->synchronous_mode || self.role != PgRole::kReplica) return false;
  const auto& names = cluster->sync_standbys;
  return std::find(names.begin(), names.end(), self.name) != names.end();
}

bool ApiSnapshot::IsQuorumStandby() const { return IsSyncStandby() && cluster->sync_quorum > 0; }

bool ApiSnapshot::ClusterUnlocked() const { return !cluster || !cluster->leader; }

std::optional<uint64_t> ParseByteSize(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  std::string_view unit(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
  uint64_t multiplier = 0;
  if (unit.empty() || unit == "B") {
    multiplier = 1;
  } else if (unit == "kB") {
    multiplier = uint64_t{1} << 10;
  } else if (unit == "MB") {
    multiplier = uint64_t{1} << 20;
  } else if (unit == "GB") {
    multiplier = uint64_t{1} << 30;
  } else if (unit == "TB") {
    multiplier = uint64_t{1} << 40;
  } else {
    return std::nullopt;
  }
  if (value > UINT64_MAX / multiplier) return std::nullopt;
  return value * multiplier;
}

namespace {

// Reads exactly `n` digits at `pos`.
std::optional<int> Digits(std::string_view s, size_t& pos, size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  pos += n;
  return v;
}

}  // namespace

Result<SystemTime> ParseTimestamp(std::string_view s) {
  auto bad = [&] {
    return Fail(ErrorCode::kCorrupt, "cannot parse timestamp \"" + std::string(s) + "\"");
  };
  size_t pos = 0;
  auto year = Digits(s, pos, 4);
  if (!year || pos >= s.size() || s[pos++] != '-') return bad();
  auto month = Digits(s, pos, 2);
  if (!month || pos >= s.size() || s[pos++] != '-') return bad();
  auto day = Digits(s, pos, 2);
  if (!day || pos >= s.size() || (s[pos] != 'T' && s[pos] != ' ' && s[pos] != 't')) return bad();
  ++pos;
  auto hour = Digits(s, pos, 2);
  if (!hour || pos >= s.size() || s[pos++] != ':') return bad();
  auto minute = Digits(s, pos, 2);
  if (!minute) return bad();
  int second = 0;
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    auto sec = Digits(s, pos, 2);
    if (!sec) return bad();
    second = *sec;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      size_t start = pos;
      int64_t scale = 100000;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (scale > 0) micros += (s[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == start) return bad();
    }
  }
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year(*year), std::chrono::month(static_cast<unsigned>(*month)),
                     std::chrono::day(static_cast<unsigned>(*day))};
  if (!ymd.ok() || *hour > 23 || *minute > 59 || second > 59) return bad();
  if (pos == s.size()) {
    return Fail(ErrorCode::kInvalidArgument,
                "timestamp \"" + std::string(s) + "\" has no time zone");
  }
  int offset_minutes = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    auto oh = Digits(s, pos, 2);
    if (!oh) return bad();
    int om = 0;
    if (pos < s.size()) {
      if (s[pos] == ':') ++pos;
      auto m = Digits(s, pos, 2);
      if (!m) return bad();
      om = *m;
    }
    if (*oh > 23 || om > 59) return bad();
    offset_minutes = sign * (*oh * 60 + om);
  } else {
    return bad();
  }
  if (pos != s.size()) return bad();
  auto t = sys_days(ymd) + hours(*hour) + minutes(*minute) + seconds(second) +
           microseconds(micros) - minutes(offset_minutes);
  return time_point_cast<SystemTime::duration>(t);
}

std::string FormatTimestamp(SystemTime t) {
  using namespace std::chrono;
  auto us = time_point_cast<microseconds>(t);
  auto day = floor<days>(us);
  year_month_day ymd(day);
  hh_mm_ss hms(us - day);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02ld:%02ld:%02ld.%06ld+00:00",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<long>(hms.hours().count()),
                static_cast<long>(hms.minutes().count()), static_cast<long>(hms.seconds().count()),
                static_cast<long>(hms.subseconds().count()));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The control worker: one thread, a short queue. A control call may block for a while (a
// switchover waits for its outcome); the HTTP thread must not.

class PatroniApi::Worker {
 public:
  static constexpr size_t kMaxQueued = 8;
  // A task gets `true` when it is cancelled by shutdown instead of run.
  using Task = std::function<void(bool cancelled)>;

  Worker() : thread_([this] { Run(); }) {}
  ~Worker() {
    std::deque<Task> dropped;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      dropped.swap(queue_);
    }
    cv_.notify_all();
    thread_.join();
    for (auto& task : dropped) task(true);
  }

  // False when the queue is full.
  bool Submit(Task task) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || queue_.size() >= kMaxQueued) return false;
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }

 private:
  void Run() {
    for (;;) {
      Task task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task(false);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// Read endpoints.

namespace {

enum class Endpoint {
  kPrimary,
  kLeader,
  kStandbyLeader,
  kReplica,
  kReadOnly,
  kSync,
  kAsync,
  kReadOnlySync,
  kQuorum,
  kReadOnlyQuorum,
  kHealth,
  kLiveness,
  kReadiness,
  kPatroni,
  kCluster,
  kHistory,
  kConfig,
  kMetrics,
  kSwitchover,
  kFailover,
  kRestart,
  kReload,
  kReinitialize,
  kUnknown,
};

Endpoint Classify(const std::string& path) {
  static const std::map<std::string, Endpoint, std::less<>> kPaths = {
      {"/", Endpoint::kPrimary},
      {"/primary", Endpoint::kPrimary},
      {"/master", Endpoint::kPrimary},
      {"/read-write", Endpoint::kPrimary},
      {"/leader", Endpoint::kLeader},
      {"/standby-leader", Endpoint::kStandbyLeader},
      {"/standby_leader", Endpoint::kStandbyLeader},
      {"/replica", Endpoint::kReplica},
      {"/read-only", Endpoint::kReadOnly},
      {"/sync", Endpoint::kSync},
      {"/synchronous", Endpoint::kSync},
      {"/async", Endpoint::kAsync},
      {"/asynchronous", Endpoint::kAsync},
      {"/read-only-sync", Endpoint::kReadOnlySync},
      {"/read-only-synchronous", Endpoint::kReadOnlySync},
      {"/quorum", Endpoint::kQuorum},
      {"/read-only-quorum", Endpoint::kReadOnlyQuorum},
      {"/health", Endpoint::kHealth},
      {"/liveness", Endpoint::kLiveness},
      {"/readiness", Endpoint::kReadiness},
      {"/patroni", Endpoint::kPatroni},
      {"/cluster", Endpoint::kCluster},
      {"/history", Endpoint::kHistory},
      {"/config", Endpoint::kConfig},
      {"/metrics", Endpoint::kMetrics},
      {"/switchover", Endpoint::kSwitchover},
      {"/failover", Endpoint::kFailover},
      {"/restart", Endpoint::kRestart},
      {"/reload", Endpoint::kReload},
      {"/reinitialize", Endpoint::kReinitialize},
  };
  auto it = kPaths.find(path);
  return it == kPaths.end() ? Endpoint::kUnknown : it->second;
}

bool IsReadMethod(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS";
}

// The methods each endpoint accepts besides GET/HEAD/OPTIONS.
std::string AllowedMethods(Endpoint e) {
  switch (e) {
    case Endpoint::kSwitchover:
      return "POST, DELETE";
    case Endpoint::kFailover:
      return "POST";
    case Endpoint::kConfig:
      return "GET, HEAD, OPTIONS, PATCH, PUT";
    case Endpoint::kRestart:
      return "POST, DELETE";
    case Endpoint::kReload:
      return "POST";
    case Endpoint::kReinitialize:
      return "POST";
    default:
      return "GET, HEAD, OPTIONS";
  }
}

bool AcceptsReads(Endpoint e) {
  return e != Endpoint::kSwitchover && e != Endpoint::kFailover && e != Endpoint::kRestart &&
         e != Endpoint::kReload && e != Endpoint::kReinitialize;
}

bool ControlAllowed(Endpoint e, const std::string& method) {
  switch (e) {
    case Endpoint::kSwitchover:
    case Endpoint::kRestart:
      return method == "POST" || method == "DELETE";
    case Endpoint::kFailover:
    case Endpoint::kReload:
    case Endpoint::kReinitialize:
      return method == "POST";
    case Endpoint::kConfig:
      return method == "PATCH" || method == "PUT";
    default:
      return false;
  }
}

HttpResponse MethodNotAllowed(Endpoint e, const std::string& method) {
  auto res = HttpResponse::Text(405, "method " + method + " is not allowed here\n");
  res.headers.emplace_back("Allow", AllowedMethods(e));
  return res;
}

// The health decision of Patroni's do_GET, for one endpoint. `error` is set for a bad query.
int HealthStatus(Endpoint e, const ApiSnapshot& s, const HttpRequest& req, std::string& error) {
  const LocalStatus& self = s.self;
  const bool running = self.state == PgState::kRunning;

  uint64_t max_lag = UINT64_MAX;
  if (const std::string* lag = req.Query("lag")) {
    auto parsed = ParseByteSize(*lag);
    if (!parsed) {
      error = "bad lag \"" + *lag + "\": expected bytes or a size such as 16kB, 10MB, 1GB";
      return 400;
    }
    max_lag = *parsed;
  }
  const uint64_t leader_lsn =
      s.cluster && s.cluster->leader_lsn ? s.cluster->leader_lsn->value() : 0;
  const uint64_t replayed = self.replayed_location ? self.replayed_location->value() : 0;
  const bool lagging = leader_lsn != 0 && leader_lsn > replayed && leader_lsn - replayed > max_lag;
  bool state_matches = true;
  if (const std::string* wanted = req.Query("replication_state")) {
    state_matches = self.replication_state == *wanted;
  }
  const int replica = !self.tags.noloadbalance && !lagging && self.role == PgRole::kReplica &&
                              running && state_matches
                          ? 200
                          : 503;

  int leader = 503;
  int primary = 503;
  int standby_leader = 503;
  if (!s.cluster && s.pause) {
    // Maintenance mode without a DCS view: trust PostgreSQL's role (as Patroni does).
    leader = self.role == PgRole::kPrimary || self.role == PgRole::kStandbyLeader ? 200 : 503;
    primary = self.role == PgRole::kPrimary ? 200 : 503;
    standby_leader = self.role == PgRole::kStandbyLeader ? 200 : 503;
  } else if (self.holds_leader_lock) {
    leader = 200;
    const bool standby_cluster =
        (s.cluster && s.cluster->standby_cluster) || self.role == PgRole::kStandbyLeader;
    if (standby_cluster) {
      standby_leader =
          self.role == PgRole::kReplica || self.role == PgRole::kStandbyLeader ? 200 : 503;
    } else {
      primary = self.role == PgRole::kPrimary ? 200 : 503;
    }
  }

  int status = 503;
  bool ignore_tags = false;
  const bool sync = s.IsSyncStandby();
  const bool quorum = s.IsQuorumStandby();
  switch (e) {
    case Endpoint::kStandbyLeader:
      status = standby_leader;
      ignore_tags = true;
      break;
    case Endpoint::kLeader:
      status = leader;
      ignore_tags = true;
      break;
    case Endpoint::kPrimary:
      status = primary;
      ignore_tags = true;
      break;
    case Endpoint::kReplica:
      status = replica;
      break;
    case Endpoint::kReadOnly:
      status = primary == 200 || standby_leader == 200 ? 200 : replica;
      break;
    case Endpoint::kHealth:
      status = running ? 200 : 503;
      break;
    case Endpoint::kSync:
      status = s.cluster && sync ? replica : 503;
      break;
    case Endpoint::kAsync:
      status = s.cluster && !sync ? replica : 503;
      break;
    case Endpoint::kReadOnlySync:
      if (primary == 200 || standby_leader == 200) {
        status = 200;
      } else if (s.cluster && sync) {
        status = replica;
      }
      break;
    case Endpoint::kQuorum:
      status = s.cluster && quorum ? replica : 503;
      break;
    case Endpoint::kReadOnlyQuorum:
      if (primary == 200 || standby_leader == 200) {
        status = 200;
      } else if (s.cluster && quorum) {
        status = replica;
      }
      break;
    default:
      break;
  }

  if (!ignore_tags && status == 200) {
    for (const auto& [key, value] : req.query) {
      if (key.rfind("tag_", 0) != 0) continue;
      auto have = self.tags.Lookup(key.substr(4));
      if (!have || *have != value) {
        status = 503;
        break;
      }
    }
  }
  return status;
}

// Patroni's _readiness(): empty when ready, else the reason.
std::string NotReadyReason(const ApiSnapshot& s, const HttpRequest& req, int& status) {
  status = 503;
  const LocalStatus& self = s.self;
  if (self.holds_leader_lock) {
    status = 200;
    return "";
  }
  if (self.state != PgState::kRunning) return "PostgreSQL is not running";
  if (self.replication_state != "streaming") {
    return "PostgreSQL replication state is not streaming";
  }
  if (!s.cluster) return "DCS is not accessible";
  uint64_t max_lag = s.maximum_lag_on_failover;
  if (const std::string* lag = req.Query("lag")) {
    auto parsed = ParseByteSize(*lag);
    if (!parsed) {
      status = 400;
      return "bad lag \"" + *lag + "\": expected bytes or a size such as 16kB, 10MB, 1GB";
    }
    max_lag = *parsed;
  }
  const std::string* mode_param = req.Query("mode");
  std::string mode = mode_param && *mode_param == "write" ? "write" : "apply";
  const std::optional<Lsn>& position =
      mode == "write" ? self.received_location : self.replayed_location;
  uint64_t leader_lsn = s.cluster->leader_lsn ? s.cluster->leader_lsn->value() : 0;
  uint64_t have = position ? position->value() : 0;
  uint64_t lag = leader_lsn > have ? leader_lsn - have : 0;
  if (lag > max_lag) {
    return "Replication " + mode + " lag " + std::to_string(lag) + " exceeds maximum allowable " +
           std::to_string(max_lag);
  }
  status = 200;
  return "";
}

}  // namespace

PatroniApi::PatroniApi(ControlPlane* control, const Clock& clock)
    : control_(control), clock_(clock), worker_(std::make_unique<Worker>()) {}

PatroniApi::~PatroniApi() = default;

void PatroniApi::SetSnapshot(std::shared_ptr<const ApiSnapshot> snapshot) {
  std::lock_guard lock(mu_);
  snapshot_ = std::move(snapshot);
}

std::shared_ptr<const ApiSnapshot> PatroniApi::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

AsyncHttpHandler PatroniApi::Handler() {
  return [this](HttpRequest request, HttpResponder respond) {
    Handle(std::move(request), std::move(respond));
  };
}

void PatroniApi::Handle(HttpRequest request, HttpResponder respond) {
  if (IsReadMethod(request.method)) {
    respond(HandleRead(request));
    return;
  }
  HandleControl(std::move(request), std::move(respond));
}

HttpResponse PatroniApi::HandleRead(const HttpRequest& req) const {
  const Endpoint e = Classify(req.path);
  if (e == Endpoint::kUnknown)
    return HttpResponse::Text(404, "no such endpoint: " + req.path + "\n");
  if (!IsReadMethod(req.method) || !AcceptsReads(e)) return MethodNotAllowed(e, req.method);
  const auto s = snapshot();
  if (!s) return HttpResponse::Text(503, "no status yet: the agent is starting\n");

  switch (e) {
    case Endpoint::kPatroni:
      return HttpResponse::Json(200, StatusJson(*s));
    case Endpoint::kCluster:
      if (!s->cluster)
        return HttpResponse::Text(503, "cluster view unavailable: DCS is not accessible\n");
      return HttpResponse::Json(200, ClusterJson(*s));
    case Endpoint::kHistory:
      if (!s->cluster)
        return HttpResponse::Text(503, "cluster view unavailable: DCS is not accessible\n");
      return HttpResponse::Json(200, HistoryJson(*s->cluster));
    case Endpoint::kConfig:
      if (!s->cluster || !s->cluster->config_json) {
        return HttpResponse::Text(502, "no dynamic configuration in the DCS\n");
      }
      return HttpResponse::Json(200, *s->cluster->config_json);
    case Endpoint::kMetrics: {
      HttpResponse res = HttpResponse::Text(200, MetricsText(*s));
      res.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return res;
    }
    case Endpoint::kLiveness: {
      const LocalStatus& self = s->self;
      const bool primary = self.role == PgRole::kPrimary && self.state == PgState::kRunning;
      const Duration limit = s->ttl * (primary ? 1 : 2);
      if (s->pause) return HttpResponse::Text(200, "");
      if (!s->last_ha_loop) return HttpResponse::Text(503, "the HA loop has not run yet\n");
      const Duration since = clock_.SteadyNow() - *s->last_ha_loop;
      if (since < limit) return HttpResponse::Text(200, "");
      return HttpResponse::Text(
          503, "the HA loop last ran " +
                   std::to_string(std::chrono::duration_cast<milliseconds>(since).count()) +
                   " ms ago (limit " +
                   std::to_string(std::chrono::duration_cast<milliseconds>(limit).count()) +
                   " ms)\n");
    }
    case Endpoint::kReadiness: {
      int status = 503;
      std::string reason = NotReadyReason(*s, req, status);
      return HttpResponse::Text(status, reason.empty() ? "" : reason + "\n");
    }
    default: {
      std::string error;
      int status = HealthStatus(e, *s, req, error);
      if (status == 400) return HttpResponse::Text(400, error + "\n");
      return HttpResponse::Json(status, StatusJson(*s));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Control endpoints.

void PatroniApi::HandleControl(HttpRequest req, HttpResponder respond) {
  const Endpoint e = Classify(req.path);
  if (e == Endpoint::kUnknown) {
    respond(HttpResponse::Text(404, "no such endpoint: " + req.path + "\n"));
    return;
  }
  if (!ControlAllowed(e, req.method)) {
    respond(MethodNotAllowed(e, req.method));
    return;
  }
  const auto s = snapshot();
  ControlPlan plan = PlanControl(req, s.get(), clock_.SystemNow());
  if (plan.immediate) {
    respond(std::move(*plan.immediate));
    return;
  }
  if (control_ == nullptr) {
    respond(HttpResponse::Text(503, "control requests are not available on this node"));
    return;
  }
  auto shared_respond = std::make_shared<HttpResponder>(std::move(respond));
  ControlPlane* control = control_;
  bool queued =
      worker_->Submit([control, run = std::move(plan.run), shared_respond](bool cancelled) {
        if (cancelled) {
          (*shared_respond)(HttpResponse::Text(503, "shutting down"));
          return;
        }
        HttpResponse res;
        try {
          res = run(*control);
        } catch (const std::exception& ex) {
          res = HttpResponse::Text(500, std::string("internal error: ") + ex.what());
        } catch (...) {
          res = HttpResponse::Text(500, "internal error");
        }
        (*shared_respond)(std::move(res));
      });
  if (!queued) {
    (*shared_respond)(
        HttpResponse::Text(503, "too many control requests in progress, retry later"));
  }
}

}  // namespace pgwarden::api
