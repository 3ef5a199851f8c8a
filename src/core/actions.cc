#include "core/actions.h"

#include <type_traits>

namespace pgwarden::core {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

std::string JoinNames(const std::vector<MemberName>& names) {
  std::string out;
  for (const MemberName& n : names) {
    if (!out.empty()) out += ",";
    out += n.str();
  }
  return out;
}

}  // namespace

std::string ActionName(const Action& action) {
  return std::visit(Overloaded{
                        [](const ClaimBootstrap&) { return "ClaimBootstrap"; },
                        [](const WriteInitialize&) { return "WriteInitialize"; },
                        [](const AcquireLeader&) { return "AcquireLeader"; },
                        [](const ReleaseLeader&) { return "ReleaseLeader"; },
                        [](const UpdateLeaderStatus&) { return "UpdateLeaderStatus"; },
                        [](const WriteMember&) { return "WriteMember"; },
                        [](const AppendHistory&) { return "AppendHistory"; },
                        [](const ClearFailoverRequest&) { return "ClearFailoverRequest"; },
                        [](const WriteSync&) { return "WriteSync"; },
                        [](const SetSynchronousStandbys&) { return "SetSynchronousStandbys"; },
                        [](const InitDb&) { return "InitDb"; },
                        [](const CloneFrom&) { return "CloneFrom"; },
                        [](const StartPostgres&) { return "StartPostgres"; },
                        [](const StopPostgres&) { return "StopPostgres"; },
                        [](const Promote&) { return "Promote"; },
                        [](const Follow&) { return "Follow"; },
                        [](const Rewind&) { return "Rewind"; },
                        [](const ProbePeers&) { return "ProbePeers"; },
                        [](const SyncSlots&) { return "SyncSlots"; },
                    },
                    action);
}

std::string Describe(const Action& action) {
  return std::visit(
      Overloaded{
          [](const WriteInitialize& a) { return "WriteInitialize(" + a.system_identifier + ")"; },
          [](const UpdateLeaderStatus& a) {
            return "UpdateLeaderStatus(optime=" + a.optime.ToString() + ")";
          },
          [](const WriteMember& a) { return "WriteMember(" + a.member.name.str() + ")"; },
          [](const AppendHistory& a) {
            return "AppendHistory(timeline " + std::to_string(a.entry.timeline.value()) +
                   " ended at " + a.entry.switch_lsn.ToString() + ")";
          },
          [](const CloneFrom& a) {
            return std::string(a.remove_existing ? "CloneFrom(" : "CloneFrom(") + a.from.str() +
                   (a.remove_existing ? ", removing the data directory)" : ")");
          },
          [](const StartPostgres& a) {
            if (a.role == StartRole::kPrimary) return std::string("StartPostgres(primary)");
            return "StartPostgres(replica" + (a.upstream ? " of " + a.upstream->str() : "") + ")";
          },
          [](const StopPostgres& a) {
            return std::string(a.mode == StopMode::kFast ? "StopPostgres(fast)"
                                                         : "StopPostgres(immediate)");
          },
          [](const Follow& a) { return "Follow(" + a.leader.str() + ")"; },
          [](const Rewind& a) { return "Rewind(from " + a.from.str() + ")"; },
          [](const ProbePeers& a) { return "ProbePeers(" + JoinNames(a.peers) + ")"; },
          [](const WriteSync& a) {
            return "WriteSync([" + JoinNames(a.sync_standby) + "]" +
                   (a.quorum > 0 ? " quorum " + std::to_string(a.quorum) : "") + ")";
          },
          [](const SetSynchronousStandbys& a) {
            return "SetSynchronousStandbys(" + SynchronousStandbyNamesValue(a) + ")";
          },
          [](const SyncSlots& a) { return "SyncSlots(" + std::to_string(a.slots.size()) + ")"; },
          [&action](const auto&) { return ActionName(action); },
      },
      action);
}

std::string SynchronousStandbyNamesValue(const SetSynchronousStandbys& s) {
  if (s.names.empty()) return s.strict ? "*" : "";
  std::string out = (s.quorum ? "ANY " : "FIRST ") + std::to_string(s.count) + " (";
  for (size_t i = 0; i < s.names.size(); ++i) {
    if (i) out += ",";
    out += '"';
    for (char c : s.names[i].str()) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  }
  return out + ")";
}

SyncStandbyNames AppliedBy(const SetSynchronousStandbys& s) {
  return SyncStandbyNames{s.names, s.count, s.strict, s.quorum && !s.names.empty()};
}

bool IsPostgresOperation(const Action& action) {
  return std::holds_alternative<InitDb>(action) || std::holds_alternative<CloneFrom>(action) ||
         std::holds_alternative<StartPostgres>(action) ||
         std::holds_alternative<StopPostgres>(action) || std::holds_alternative<Promote>(action) ||
         std::holds_alternative<Follow>(action) || std::holds_alternative<Rewind>(action);
}

}  // namespace pgwarden::core
