#include "common/result.h"

namespace pgwarden {

std::string_view ToString(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kCompacted: return "compacted";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kCorrupt: return "corrupt";
    case ErrorCode::kFailed: return "failed";
    case ErrorCode::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::string Error::ToString() const {
  std::string out(pgwarden::ToString(code));
  out += ": ";
  out += message;
  return out;
}

}  // namespace pgwarden
