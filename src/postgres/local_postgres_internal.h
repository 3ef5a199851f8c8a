// Helpers shared by the local_postgres*.cc files. Not part of the module's API.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace pgwarden::postgres {

// 1-63 characters of [a-z0-9_] (what PostgreSQL accepts as a slot name).
Result<void> ValidateSlotName(const std::string& name);

namespace internal {

int CeilSeconds(Duration d);  // at least 1: pg_ctl -t takes whole seconds
std::string FormatDuration(Duration d);
Duration Remaining(SteadyTime deadline);
// Program output that says the source server could not be reached (libpq messages).
bool LooksLikeConnectionFailure(std::string_view output);

// A conninfo without its password, and the password (passed to programs as PGPASSWORD so
// that it never shows in argv, ps or error messages).
struct SplitConninfo {
  std::string conninfo;
  std::string password;
};
// A postgresql:// URI is passed through unchanged (no split).
Result<SplitConninfo> SplitPassword(const std::string& conninfo);
bool IsConninfoUri(std::string_view conninfo);
// The conninfo with password='***' (a URI's user info masked), for messages.
std::string RedactConninfo(const std::string& conninfo);

}  // namespace internal
}  // namespace pgwarden::postgres
