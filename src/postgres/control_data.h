// Parsing of PostgreSQL program output: pg_controldata, WAL file names, pg_rewind's verdict.
// Pure functions, unit-tested with captured output.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/types.h"
#include "postgres/postgres.h"

namespace pgwarden::postgres {

// Parses `pg_controldata` output (run with LC_ALL=C: the labels are translated otherwise).
// kCorrupt when a required field (system identifier, cluster state, checkpoint location,
// TimeLineID) is missing or malformed; the message names the field.
Result<ControlData> ParseControlData(std::string_view output);

// The timeline of a WAL segment file name "00000002000000000000000A" (its first 8 hex digits).
std::optional<Timeline> TimelineFromWalFileName(std::string_view name);

// What pg_rewind's output says. `succeeded` is its exit status == 0.
RewindResult ClassifyRewindOutput(bool succeeded, std::string_view output);

// The last `max_lines` non-empty lines of `text`, joined by "\n" (for error messages).
std::string LastLines(std::string_view text, int max_lines);

}  // namespace pgwarden::postgres
