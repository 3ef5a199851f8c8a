#include "cli/pause_wait.h"

#include <nlohmann/json.hpp>

namespace pgwarden::cli {
namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

PauseProgress JudgePauseAnswers(const std::vector<PauseAnswer>& answers, bool pause) {
  PauseProgress out;
  for (const PauseAnswer& a : answers) {
    if (!a.body) {
      out.unreachable.push_back(a.member + (a.error.empty() ? "" : " (" + a.error + ")"));
      continue;
    }
    auto j = nlohmann::json::parse(*a.body, nullptr, false);
    if (!j.is_object()) {
      out.unreachable.push_back(a.member + " (GET /patroni did not answer JSON)");
      continue;
    }
    const bool paused = j.contains("pause") && j["pause"].is_boolean() && j["pause"].get<bool>();
    (paused == pause ? out.confirmed : out.pending).push_back(a.member);
  }
  return out;
}

std::string PauseWaitMessage(const PauseProgress& progress, bool pause, bool timed_out,
                             int timeout_s) {
  const std::string done = pause ? "paused" : "resumed";
  if (progress.pending.empty() && progress.unreachable.empty()) {
    return "Success: cluster management is " + done + "\n";
  }
  std::string out;
  if (timed_out && !progress.pending.empty()) {
    out += "Timed out after " + std::to_string(timeout_s) + " s: not yet " + done + " on " +
           Join(progress.pending) + "\n";
  }
  if (!progress.confirmed.empty())
    out += "Cluster management is " + done + " on " + Join(progress.confirmed) + "\n";
  if (!progress.unreachable.empty()) {
    out += "Could not reach " + Join(progress.unreachable) +
           ": not confirmed (such a member takes the change from etcd once it is back)\n";
  }
  return out;
}

}  // namespace pgwarden::cli
