// Strong types for values whose mix-up is costly: a WAL position is not a byte count, a
// timeline is not a member index, a member name is not any string.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace pgwarden {

// A PostgreSQL WAL position (pg_lsn). Printed and parsed as PostgreSQL does: "16/B374D848".
class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  // Parses "X/Y" (hex halves, as pg_lsn prints). nullopt on anything else.
  static std::optional<Lsn> Parse(std::string_view text);

  constexpr uint64_t value() const { return value_; }
  std::string ToString() const;

  // Bytes from `older` to this position; 0 when `older` is ahead.
  constexpr uint64_t BytesSince(Lsn older) const {
    return value_ > older.value_ ? value_ - older.value_ : 0;
  }

  friend constexpr auto operator<=>(Lsn, Lsn) = default;

 private:
  uint64_t value_ = 0;
};

std::ostream& operator<<(std::ostream& out, Lsn lsn);

// A PostgreSQL timeline id. Starts at 1 and grows by one with each promotion.
class Timeline {
 public:
  constexpr Timeline() = default;
  constexpr explicit Timeline(uint32_t value) : value_(value) {}
  constexpr uint32_t value() const { return value_; }
  friend constexpr auto operator<=>(Timeline, Timeline) = default;

 private:
  uint32_t value_ = 0;
};

std::ostream& operator<<(std::ostream& out, Timeline tl);

// The name of a cluster member (Patroni's `name`): unique within a scope, used in etcd keys,
// slot names and the REST API.
class MemberName {
 public:
  MemberName() = default;
  explicit MemberName(std::string value) : value_(std::move(value)) {}
  const std::string& str() const { return value_; }
  bool empty() const { return value_.empty(); }
  friend auto operator<=>(const MemberName&, const MemberName&) = default;

 private:
  std::string value_;
};

std::ostream& operator<<(std::ostream& out, const MemberName& name);

}  // namespace pgwarden

template <>
struct std::hash<pgwarden::MemberName> {
  size_t operator()(const pgwarden::MemberName& n) const noexcept {
    return std::hash<std::string>()(n.str());
  }
};
