#include "config/units.h"

#include <cctype>
#include <limits>
#include <optional>

#include "common/strings.h"

namespace pgwarden::config {
namespace {

using std::chrono::milliseconds;

// A non-negative decimal number kept exact: value = integer + fraction / 10^fraction_digits.
struct Decimal {
  uint64_t integer = 0;
  uint64_t fraction = 0;
  int fraction_digits = 0;
};

constexpr uint64_t kMaxInteger = uint64_t{1} << 52;  // far beyond any sane setting

// Reads digits[.digits] at text[*pos]; advances *pos. nullopt when no digit is there or it is
// too large.
std::optional<Decimal> ReadDecimal(std::string_view text, size_t* pos) {
  Decimal d;
  size_t i = *pos;
  bool any = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    d.integer = d.integer * 10 + static_cast<uint64_t>(text[i] - '0');
    if (d.integer > kMaxInteger) return std::nullopt;
    any = true;
    ++i;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (d.fraction_digits < 15) {
        d.fraction = d.fraction * 10 + static_cast<uint64_t>(text[i] - '0');
        ++d.fraction_digits;
      } else if (text[i] != '0') {
        return std::nullopt;
      }
      any = true;
      ++i;
    }
  }
  if (!any) return std::nullopt;
  *pos = i;
  return d;
}

uint64_t Pow10(int n) {
  uint64_t r = 1;
  while (n-- > 0) r *= 10;
  return r;
}

// Multiplies an exact decimal by an integer scale; nullopt when the result is not a whole
// number (in the target unit) or overflows.
std::optional<uint64_t> Scale(const Decimal& d, uint64_t scale) {
  if (d.integer > std::numeric_limits<uint64_t>::max() / scale) return std::nullopt;
  uint64_t whole = d.integer * scale;
  uint64_t denom = Pow10(d.fraction_digits);
  // fraction * scale / denom must be whole. fraction < 10^15 and scale <= 2^40 could overflow a
  // 64-bit product, so use 128-bit arithmetic.
  unsigned __int128 num = static_cast<unsigned __int128>(d.fraction) * scale;
  if (num % denom != 0) return std::nullopt;
  uint64_t part = static_cast<uint64_t>(num / denom);
  if (whole > std::numeric_limits<uint64_t>::max() - part) return std::nullopt;
  return whole + part;
}

std::optional<uint64_t> DurationUnitMs(std::string_view unit) {
  if (unit.empty() || unit == "s" || unit == "sec" || unit == "secs" || unit == "second" ||
      unit == "seconds") {
    return 1000;
  }
  if (unit == "ms" || unit == "msec" || unit == "millisecond" || unit == "milliseconds") return 1;
  if (unit == "m" || unit == "min" || unit == "mins" || unit == "minute" || unit == "minutes") {
    return 60'000;
  }
  if (unit == "h" || unit == "hour" || unit == "hours") return 3'600'000;
  if (unit == "d" || unit == "day" || unit == "days") return 86'400'000;
  return std::nullopt;
}

std::optional<uint64_t> ByteUnit(std::string_view unit) {
  if (unit.empty() || unit == "B" || unit == "bytes") return 1;
  if (unit == "kB" || unit == "KB" || unit == "KiB") return uint64_t{1} << 10;
  if (unit == "MB" || unit == "MiB") return uint64_t{1} << 20;
  if (unit == "GB" || unit == "GiB") return uint64_t{1} << 30;
  if (unit == "TB" || unit == "TiB") return uint64_t{1} << 40;
  return std::nullopt;
}

}  // namespace

Result<milliseconds> ParseDuration(std::string_view raw) {
  std::string_view text = TrimSpace(raw);
  if (text.empty()) return Fail(ErrorCode::kInvalidArgument, "expected a duration, got nothing");
  if (text.front() == '-') {
    return Fail(ErrorCode::kInvalidArgument,
                "must not be negative, got `" + std::string(text) + "`");
  }
  if (text.front() == '+') text.remove_prefix(1);
  const std::string hint =
      "expected a duration: a number of seconds or a number with a unit (ms, s, min, h), e.g. "
      "`500ms`, `5s`, `1min`; got `" +
      std::string(text) + "`";
  uint64_t total = 0;
  size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    std::optional<Decimal> number = ReadDecimal(text, &pos);
    if (!number) return Fail(ErrorCode::kInvalidArgument, hint);
    while (pos < text.size() && text[pos] == ' ') ++pos;
    size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos]))) ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    while (pos < text.size() && text[pos] == ' ') ++pos;
    if (unit.empty() && !(first && pos == text.size())) {
      // "1m30" is ambiguous: only a lone number may go without a unit.
      return Fail(ErrorCode::kInvalidArgument, hint);
    }
    std::optional<uint64_t> scale = DurationUnitMs(unit);
    if (!scale) {
      return Fail(ErrorCode::kInvalidArgument, "unknown duration unit `" + std::string(unit) +
                                                   "` in `" + std::string(text) +
                                                   "` (use ms, s, min or h)");
    }
    std::optional<uint64_t> ms = Scale(*number, *scale);
    if (!ms) {
      return Fail(ErrorCode::kInvalidArgument,
                  "`" + std::string(text) + "` is not a whole number of milliseconds or too large");
    }
    total += *ms;
    if (total > kMaxInteger) {
      return Fail(ErrorCode::kInvalidArgument, "`" + std::string(text) + "` is too large");
    }
    first = false;
  }
  return milliseconds(static_cast<milliseconds::rep>(total));
}

Result<uint64_t> ParseByteSize(std::string_view raw) {
  std::string_view text = TrimSpace(raw);
  const std::string hint =
      "expected a size in bytes: an integer, or a number with a unit (kB, MB, GB, TB; 1024-based), "
      "e.g. `1048576` or `16MB`; got `" +
      std::string(text) + "`";
  if (!text.empty() && text.front() == '-') {
    return Fail(ErrorCode::kInvalidArgument,
                "must not be negative, got `" + std::string(text) + "`");
  }
  size_t pos = 0;
  std::optional<Decimal> number = ReadDecimal(text, &pos);
  if (!number) return Fail(ErrorCode::kInvalidArgument, hint);
  while (pos < text.size() && text[pos] == ' ') ++pos;
  std::string_view unit = text.substr(pos);
  std::optional<uint64_t> scale = ByteUnit(unit);
  if (!scale) return Fail(ErrorCode::kInvalidArgument, hint);
  std::optional<uint64_t> bytes = Scale(*number, *scale);
  if (!bytes) {
    return Fail(ErrorCode::kInvalidArgument,
                "`" + std::string(text) + "` is not a whole number of bytes or too large");
  }
  return *bytes;
}

std::string FormatDuration(milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "min";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string FormatSeconds(milliseconds d) {
  int64_t ms = d.count();
  std::string out = std::to_string(ms / 1000);
  int64_t frac = ms % 1000;
  if (frac != 0) {
    std::string digits = std::to_string(frac);
    digits.insert(0, 3 - digits.size(), '0');
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    out += "." + digits;
  }
  return out;
}

}  // namespace pgwarden::config
