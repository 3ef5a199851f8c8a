// Result<T>: the value of an operation that can fail in an expected way.
//
// Expected failures (etcd unreachable, a compare-and-swap that lost, PostgreSQL not
// running, a bad config value) are values, not exceptions. The error set is small and
// closed on purpose: the HA logic branches on the code, so two failures that must be
// handled differently get two codes. The most important pair is kConflict (someone else
// holds or changed the key: etcd answered, the answer is "no") versus kUnavailable
// (we could not get an answer at all): a primary that loses a compare-and-swap must
// step down, a primary that cannot reach etcd must step down before its lease can end,
// and only the first tells us the other side's state.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace pgwarden {

enum class ErrorCode {
  kUnavailable,      // the peer (etcd, PostgreSQL, a REST API) could not be reached or answered 5xx
  kTimeout,          // the deadline passed before an answer arrived; the outcome is unknown
  kConflict,         // a compare failed: someone else holds or changed the key
  kNotFound,         // the key, lease, member or file does not exist
  kCompacted,        // a watch asked for a revision etcd has already compacted away
  kInvalidArgument,  // the caller's input is wrong (bad config value, bad request)
  kCorrupt,          // data from outside (etcd value, PostgreSQL output, file) is malformed
  kFailed,           // an operation ran and failed (pg_ctl exit status, SQL error)
  kCancelled,        // the operation was cancelled by shutdown
};

std::string_view ToString(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;  // what went wrong and where, for a human

  // "unavailable: etcd 127.0.0.1:2379: connection refused"
  std::string ToString() const;
};

template <typename T>
using Result = tl::expected<T, Error>;

// Builds the failure side of a Result: `return Fail(ErrorCode::kConflict, "leader held by n2");`
inline tl::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}
inline tl::unexpected<Error> Fail(Error error) { return tl::unexpected<Error>(std::move(error)); }

// Result<void> success value: `return Ok();`
inline Result<void> Ok() { return {}; }

}  // namespace pgwarden
