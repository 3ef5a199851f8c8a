#include "common/types.h"

#include <charconv>
#include <cstdio>

namespace pgwarden {

std::optional<Lsn> Lsn::Parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size()) return std::nullopt;
  auto half = [](std::string_view part) -> std::optional<uint32_t> {
    if (part.size() > 8) return std::nullopt;
    uint32_t v = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v, 16);
    if (ec != std::errc() || ptr != part.data() + part.size()) return std::nullopt;
    return v;
  };
  auto hi = half(text.substr(0, slash));
  auto lo = half(text.substr(slash + 1));
  if (!hi || !lo) return std::nullopt;
  return Lsn((uint64_t{*hi} << 32) | *lo);
}

std::string Lsn::ToString() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(value_ >> 32),
                static_cast<unsigned>(value_ & 0xffffffffu));
  return buf;
}

std::ostream& operator<<(std::ostream& out, Lsn lsn) { return out << lsn.ToString(); }
std::ostream& operator<<(std::ostream& out, Timeline tl) { return out << tl.value(); }
std::ostream& operator<<(std::ostream& out, const MemberName& name) { return out << name.str(); }

}  // namespace pgwarden
