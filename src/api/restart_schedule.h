// Scheduled restarts (POST /restart with "schedule"), as Patroni 3 does them: one per member,
// kept in the agent's memory only (an agent restart forgets it, as Patroni's does), published
// in GET /patroni and in the member key as `scheduled_restart`, carried out by the HA loop when
// its time comes if the request's conditions still hold. The pieces here are pure (conditions,
// the due check, the JSON) except RestartSchedule, the thread-safe slot the agent keeps.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "api/patroni_api.h"
#include "common/clock.h"

namespace pgwarden::api {

// Patroni's postgres_version_to_int: "15.4" -> 150004, "9.6.24" -> 90624; 0 when malformed.
int PostgresVersionNumber(const std::string& text);

// Patroni's restart_matches(): why this member does not match the request's conditions (role,
// postgres_version: restart only when ours is lower, restart_pending), or nullopt when every
// condition given holds. `server_version` as PostgreSQL's server_version_num.
std::optional<std::string> RestartConditionsUnmet(const RestartRequest& request, PgRole role,
                                                  int server_version, bool pending_restart);

// A restart scheduled on this member: the request (with `schedule` set) and the postmaster
// start time when it was scheduled (Patroni drops the schedule when PostgreSQL was restarted
// in between).
struct ScheduledRestart {
  RestartRequest request;
  std::optional<SystemTime> postmaster_start_time;  // as published (may lag a fresh restart)
  // When the schedule was accepted: only a postmaster started after this cancels it (the
  // published start time above can still be the one before a restart that just finished).
  SystemTime scheduled_at{};
};

// What the HA loop does with a schedule now (Patroni's should_run_scheduled_action, without its
// sleep: the agent wakes at the time instead).
enum class ScheduleVerdict {
  kWait,   // in the future
  kRun,    // due: restart now
  kStale,  // more than 1.5 loop_wait late (the agent was stuck or paused): dropped, not run
};
ScheduleVerdict JudgeSchedule(SystemTime at, SystemTime now, Duration loop_wait);

// "2026-11-26T08:15:00+00:00" (Python's isoformat of an aware UTC datetime; microseconds only
// when not zero).
std::string FormatIsoUtc(SystemTime t);

// The `scheduled_restart` object: {"schedule": ISO 8601, "role"?, "postgres_version"?,
// "restart_pending"?, "timeout"?}; with `postmaster_start_time` too for the member key
// (Patroni's touch_member), without it for GET /patroni. A JSON object as text.
std::string ScheduledRestartJson(const ScheduledRestart& s, bool with_postmaster_start_time);

// The slot for this member's one scheduled restart. Thread-safe: the API's worker schedules and
// cancels, the control thread reads, runs and clears. Every change bumps a version so that the
// control thread can tell that the member key needs rewriting.
class RestartSchedule {
 public:
  // false (and nothing changes) when a restart is already scheduled.
  bool Schedule(ScheduledRestart s);
  // false when none was scheduled.
  bool Cancel();
  // Clears the schedule only if it is still the one of `version` (not cancelled or replaced
  // since it was read): the control thread takes a due schedule this way before running it.
  bool Take(uint64_t version);
  std::optional<ScheduledRestart> Get() const;
  // The current schedule with its version (0 before any change).
  std::optional<ScheduledRestart> Get(uint64_t* version) const;

 private:
  mutable std::mutex mu_;
  std::optional<ScheduledRestart> scheduled_;
  uint64_t version_ = 0;
};

}  // namespace pgwarden::api
