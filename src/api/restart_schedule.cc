#include "api/restart_schedule.h"

#include <nlohmann/json.hpp>
#include <vector>

namespace pgwarden::api {

int PostgresVersionNumber(const std::string& text) {
  std::vector<int> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t dot = text.find('.', start);
    std::string part = text.substr(start, dot == std::string::npos ? dot : dot - start);
    if (part.empty() || part.size() > 4) return 0;
    for (char c : part) {
      if (c < '0' || c > '9') return 0;
    }
    parts.push_back(std::stoi(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (parts.empty()) return 0;
  if (parts[0] >= 10) return parts[0] * 10000 + (parts.size() > 1 ? parts[1] : 0);
  return parts[0] * 10000 + (parts.size() > 1 ? parts[1] * 100 : 0) +
         (parts.size() > 2 ? parts[2] : 0);
}

std::optional<std::string> RestartConditionsUnmet(const RestartRequest& request, PgRole role,
                                                  int server_version, bool pending_restart) {
  if (request.role && role != *request.role) return "host role mismatch";
  if (request.postgres_version &&
      PostgresVersionNumber(*request.postgres_version) <= server_version) {
    return "postgres version mismatch";
  }
  if (request.restart_pending && !pending_restart) return "pending restart flag is not set";
  return std::nullopt;
}

ScheduleVerdict JudgeSchedule(SystemTime at, SystemTime now, Duration loop_wait) {
  if (now < at) return ScheduleVerdict::kWait;
  if (now - at > loop_wait + loop_wait / 2) return ScheduleVerdict::kStale;
  return ScheduleVerdict::kRun;
}

std::string FormatIsoUtc(SystemTime t) {
  std::string text = FormatTimestamp(t);  // "2024-08-28 19:39:26.352526+00:00"
  text[10] = 'T';
  if (auto dot = text.find(".000000"); dot != std::string::npos) text.erase(dot, 7);
  return text;
}

std::string ScheduledRestartJson(const ScheduledRestart& s, bool with_postmaster_start_time) {
  const RestartRequest& r = s.request;
  nlohmann::json out = nlohmann::json::object();
  if (r.schedule) out["schedule"] = FormatIsoUtc(*r.schedule);
  if (r.role) out["role"] = std::string(ToString(*r.role));
  if (r.postgres_version) out["postgres_version"] = *r.postgres_version;
  if (r.restart_pending) out["restart_pending"] = true;
  if (r.timeout) out["timeout"] = r.timeout->count();
  if (with_postmaster_start_time) {
    out["postmaster_start_time"] = s.postmaster_start_time
                                       ? nlohmann::json(FormatTimestamp(*s.postmaster_start_time))
                                       : nlohmann::json(nullptr);
  }
  return out.dump();
}

bool RestartSchedule::Schedule(ScheduledRestart s) {
  std::lock_guard lock(mu_);
  if (scheduled_) return false;
  scheduled_ = std::move(s);
  ++version_;
  return true;
}

bool RestartSchedule::Cancel() {
  std::lock_guard lock(mu_);
  if (!scheduled_) return false;
  scheduled_.reset();
  ++version_;
  return true;
}

bool RestartSchedule::Take(uint64_t version) {
  std::lock_guard lock(mu_);
  if (!scheduled_ || version != version_) return false;
  scheduled_.reset();
  ++version_;
  return true;
}

std::optional<ScheduledRestart> RestartSchedule::Get() const {
  std::lock_guard lock(mu_);
  return scheduled_;
}

std::optional<ScheduledRestart> RestartSchedule::Get(uint64_t* version) const {
  std::lock_guard lock(mu_);
  *version = version_;
  return scheduled_;
}

}  // namespace pgwarden::api
