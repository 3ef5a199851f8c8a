// Parsing and printing of the config's durations and byte sizes.
//
// Durations: a bare number is seconds, as in Patroni (`ttl: 30`, `loop_wait: 0.5`); a string may
// carry units: "500ms", "5s", "1.5s", "1min", "2m30s", "1h". Byte sizes: a bare integer is
// bytes (Patroni's maximum_lag_on_failover: 1048576); a string may carry PostgreSQL-style
// 1024-based units: "16MB", "512kB", "1GB".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace pgwarden::config {

// Parses a duration to whole milliseconds. Errors (kInvalidArgument) say what is wrong in a
// phrase that fits after "<key>: ": negative, unknown unit, finer than a millisecond, too big.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Parses a byte size. Negative values and unknown units are errors.
Result<uint64_t> ParseByteSize(std::string_view text);

// "500ms", "2s", "1.5s", "1min", "90s": the shortest exact form that ParseDuration reads back.
std::string FormatDuration(std::chrono::milliseconds d);

// Seconds as JSON would carry them (Patroni's dynamic config): "2", "0.5", "1.25".
std::string FormatSeconds(std::chrono::milliseconds d);

}  // namespace pgwarden::config
