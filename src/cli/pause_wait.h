// `pgwarden pause --wait` / `resume --wait`: which members have recognized the new mode, from
// their GET /patroni answers (pure; commands.cc polls). A member whose REST API cannot be
// reached is neither confirmed nor pending: it is reported apart, never counted as done.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pgwarden::cli {

// One member's answer to GET /patroni in one round.
struct PauseAnswer {
  std::string member;
  std::optional<std::string> body;  // nullopt: not reached (no address, refused, timed out)
  std::string error;                // why not reached
};

struct PauseProgress {
  std::vector<std::string> confirmed;    // reports the wanted mode
  std::vector<std::string> pending;      // answers, but not (yet) in the wanted mode
  std::vector<std::string> unreachable;  // "n3 (connection refused)"
  // Every member that answered is in the wanted mode (the unreachable ones are not known).
  bool ReachableDone() const { return pending.empty(); }
};

// `pause`: the wanted mode (GET /patroni "pause": true; absent or false is resumed).
PauseProgress JudgePauseAnswers(const std::vector<PauseAnswer>& answers, bool pause);

// The final message: success when everyone confirmed; else who is not yet, and who could not
// be reached. `timed_out`: the wait ended at its deadline.
std::string PauseWaitMessage(const PauseProgress& progress, bool pause, bool timed_out,
                             int timeout_s);

}  // namespace pgwarden::cli
