// Scheduled restarts' pure pieces (api/restart_schedule.h): the conditions, the due check, the
// published JSON, and the one-at-a-time slot.
#include "api/restart_schedule.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pgwarden::api {
namespace {

using std::chrono::seconds;

SystemTime At(int64_t unix_seconds) { return SystemTime(seconds(unix_seconds)); }

TEST(RestartSchedule, PostgresVersionNumbersAsPatroni) {
  EXPECT_EQ(PostgresVersionNumber("15.4"), 150004);
  EXPECT_EQ(PostgresVersionNumber("15"), 150000);
  EXPECT_EQ(PostgresVersionNumber("9.6.24"), 90624);
  EXPECT_EQ(PostgresVersionNumber("15.x"), 0);
  EXPECT_EQ(PostgresVersionNumber(""), 0);
}

TEST(RestartSchedule, ConditionsAreCheckedEachOneGiven) {
  RestartRequest none;
  EXPECT_EQ(RestartConditionsUnmet(none, PgRole::kReplica, 150004, false), std::nullopt);

  RestartRequest role;
  role.role = PgRole::kPrimary;
  EXPECT_EQ(RestartConditionsUnmet(role, PgRole::kReplica, 150004, false), "host role mismatch");
  EXPECT_EQ(RestartConditionsUnmet(role, PgRole::kPrimary, 150004, false), std::nullopt);

  // Restart only while ours is lower than the version given.
  RestartRequest version;
  version.postgres_version = "15.5";
  EXPECT_EQ(RestartConditionsUnmet(version, PgRole::kPrimary, 150004, false), std::nullopt);
  EXPECT_EQ(RestartConditionsUnmet(version, PgRole::kPrimary, 150005, false),
            "postgres version mismatch");

  RestartRequest pending;
  pending.restart_pending = true;
  EXPECT_EQ(RestartConditionsUnmet(pending, PgRole::kPrimary, 150004, false),
            "pending restart flag is not set");
  EXPECT_EQ(RestartConditionsUnmet(pending, PgRole::kPrimary, 150004, true), std::nullopt);
}

TEST(RestartSchedule, DueAtItsTimeStaleAfterOneAndAHalfLoopWait) {
  const Duration loop_wait = seconds(10);
  const SystemTime at = At(1'800'000'000);
  EXPECT_EQ(JudgeSchedule(at, at - seconds(30), loop_wait), ScheduleVerdict::kWait);
  EXPECT_EQ(JudgeSchedule(at, at - std::chrono::milliseconds(1), loop_wait),
            ScheduleVerdict::kWait);
  EXPECT_EQ(JudgeSchedule(at, at, loop_wait), ScheduleVerdict::kRun);
  EXPECT_EQ(JudgeSchedule(at, at + seconds(15), loop_wait), ScheduleVerdict::kRun);
  EXPECT_EQ(JudgeSchedule(at, at + seconds(16), loop_wait), ScheduleVerdict::kStale);
}

TEST(RestartSchedule, JsonForTheApiAndTheMemberKey) {
  EXPECT_EQ(FormatIsoUtc(At(1'764'144'900)), "2025-11-26T08:15:00+00:00");
  EXPECT_EQ(FormatIsoUtc(At(1'764'144'900) + std::chrono::microseconds(250)),
            "2025-11-26T08:15:00.000250+00:00");
  ScheduledRestart s;
  s.request.schedule = At(1'764'144'900);
  s.request.role = PgRole::kReplica;
  s.request.postgres_version = "15.6";
  s.request.restart_pending = true;
  s.request.timeout = seconds(120);
  s.postmaster_start_time = At(1'764'140'000);
  auto api = nlohmann::json::parse(ScheduledRestartJson(s, false));
  EXPECT_EQ(api, nlohmann::json({{"schedule", "2025-11-26T08:15:00+00:00"},
                                 {"role", "replica"},
                                 {"postgres_version", "15.6"},
                                 {"restart_pending", true},
                                 {"timeout", 120}}));
  auto key = nlohmann::json::parse(ScheduledRestartJson(s, true));
  EXPECT_EQ(key["postmaster_start_time"], "2025-11-26 06:53:20.000000+00:00");
  s.request = RestartRequest{};
  s.request.schedule = At(1'764'144'900);
  EXPECT_EQ(nlohmann::json::parse(ScheduledRestartJson(s, false)),
            nlohmann::json({{"schedule", "2025-11-26T08:15:00+00:00"}}));
}

TEST(RestartSchedule, OneAtATimeCancelAndTake) {
  RestartSchedule slot;
  ScheduledRestart s;
  s.request.schedule = At(1'764'144'900);
  uint64_t v0 = 0;
  EXPECT_FALSE(slot.Get(&v0).has_value());
  EXPECT_FALSE(slot.Cancel());
  EXPECT_TRUE(slot.Schedule(s));
  EXPECT_FALSE(slot.Schedule(s)) << "a second schedule must be refused";
  uint64_t v1 = 0;
  ASSERT_TRUE(slot.Get(&v1).has_value());
  EXPECT_NE(v1, v0);
  EXPECT_TRUE(slot.Cancel());
  EXPECT_FALSE(slot.Get().has_value());
  EXPECT_FALSE(slot.Take(v1)) << "cancelled: nothing to take";

  // A schedule replaced after it was read is not taken with the old version.
  EXPECT_TRUE(slot.Schedule(s));
  uint64_t v2 = 0;
  slot.Get(&v2);
  EXPECT_TRUE(slot.Cancel());
  EXPECT_TRUE(slot.Schedule(s));
  EXPECT_FALSE(slot.Take(v2));
  uint64_t v3 = 0;
  slot.Get(&v3);
  EXPECT_TRUE(slot.Take(v3));
  EXPECT_FALSE(slot.Get().has_value());
}

}  // namespace
}  // namespace pgwarden::api
