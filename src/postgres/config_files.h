// The files pgwarden manages in a data directory, as pure text functions (rendering,
// parsing) plus an atomic file writer. No PostgreSQL needed: unit-tested directly.
//
//   postgresql.pgwarden.conf  every parameter pgwarden sets (one `name = 'value'` per line)
//   postgresql.conf           untouched except one `include 'postgresql.pgwarden.conf'` line
//   pg_hba.conf               fully rendered by pgwarden
//   standby.signal            present while the server should run as a standby
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "postgres/postgres.h"

namespace pgwarden::postgres {

inline constexpr std::string_view kManagedConfFile = "postgresql.pgwarden.conf";
inline constexpr std::string_view kIncludeLine = "include 'postgresql.pgwarden.conf'";

// A postgresql.conf string literal: 'value' with single quotes doubled and backslashes
// doubled (PostgreSQL reads \\ as one backslash inside quotes).
std::string QuoteConfValue(std::string_view value);

// Renders the managed file: a header comment, then `name = 'value'` lines sorted by name.
std::string RenderManagedConfig(const std::map<std::string, std::string>& parameters);

// Parses `name = 'value'` / `name = value` lines (comments and blank lines skipped) as
// written by RenderManagedConfig. kCorrupt names the line that is not of that form.
Result<std::map<std::string, std::string>> ParseManagedConfig(std::string_view text);

// postgresql.conf content with the include line appended unless an active (uncommented)
// include of the managed file is already there. Returns the input unchanged in that case.
std::string WithManagedInclude(std::string_view postgresql_conf);

// The names whose values differ between `before` and `after` (added, changed, removed), sorted.
std::vector<std::string> ChangedParameters(const std::map<std::string, std::string>& before,
                                           const std::map<std::string, std::string>& after);

// pg_hba.conf text: header, `local all <superuser> <local_method>` first (pgwarden's own
// access must survive any configuration), then `entries`.
std::string RenderHba(const std::string& superuser, const std::string& local_method,
                      const std::vector<HbaEntry>& entries);
// One hba field: bare when safe, else "double-quoted" (a quote inside becomes "").
std::string QuoteHbaField(std::string_view field);

// Whole-file helpers. WriteFileAtomically writes a temp file beside `path`, fsyncs it and
// renames it over `path`, so a crash leaves the old or the new content, never half of it.
Result<std::string> ReadFileToString(const std::string& path);
// When `uid` >= 0 the file is given that owner (root writing files the postgres user reads).
Result<void> WriteFileAtomically(const std::string& path, std::string_view content, int mode,
                                 int uid = -1, int gid = -1);

}  // namespace pgwarden::postgres
