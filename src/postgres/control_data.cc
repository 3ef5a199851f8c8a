#include "postgres/control_data.h"

#include <cctype>
#include <charconv>
#include <vector>

#include "common/strings.h"

namespace pgwarden::postgres {
namespace {

template <typename T>
std::optional<T> ParseNumber(std::string_view s, int base = 10) {
  T v{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

Result<ControlData> ParseControlData(std::string_view output) {
  ControlData cd;
  std::string_view rest = output;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    cd.fields[std::string(TrimSpace(line.substr(0, colon)))] =
        std::string(TrimSpace(line.substr(colon + 1)));
  }
  auto field = [&](const char* name) -> Result<std::string> {
    auto it = cd.fields.find(name);
    if (it == cd.fields.end()) {
      return Fail(ErrorCode::kCorrupt,
                  std::string("pg_controldata output has no \"") + name + "\" line");
    }
    return it->second;
  };
  auto bad = [](const char* name, const std::string& value) {
    return Fail(ErrorCode::kCorrupt, std::string("pg_controldata: cannot parse \"") + name +
                                         "\" value \"" + value + "\"");
  };
  auto lsn_field = [&](const char* name) -> Result<Lsn> {
    auto v = field(name);
    if (!v) return Fail(v.error());
    auto lsn = Lsn::Parse(*v);
    if (!lsn) return bad(name, *v);
    return *lsn;
  };
  auto tli_field = [&](const char* name) -> Result<Timeline> {
    auto v = field(name);
    if (!v) return Fail(v.error());
    auto n = ParseNumber<uint32_t>(*v);
    if (!n) return bad(name, *v);
    return Timeline(*n);
  };

  auto sysid = field("Database system identifier");
  if (!sysid) return Fail(sysid.error());
  auto sysid_num = ParseNumber<uint64_t>(*sysid);
  if (!sysid_num) return bad("Database system identifier", *sysid);
  cd.system_identifier = *sysid_num;

  auto state = field("Database cluster state");
  if (!state) return Fail(state.error());
  cd.cluster_state = *state;

  auto checkpoint = lsn_field("Latest checkpoint location");
  if (!checkpoint) return Fail(checkpoint.error());
  cd.checkpoint_lsn = *checkpoint;
  auto tli = tli_field("Latest checkpoint's TimeLineID");
  if (!tli) return Fail(tli.error());
  cd.checkpoint_timeline = *tli;

  // Optional fields: older or newer versions may word them differently.
  if (auto redo = lsn_field("Latest checkpoint's REDO location")) cd.redo_lsn = *redo;
  if (auto min = lsn_field("Minimum recovery ending location")) cd.min_recovery_end_lsn = *min;
  if (auto min_tli = tli_field("Min recovery ending loc's timeline")) {
    cd.min_recovery_end_timeline = *min_tli;
  }
  if (auto it = cd.fields.find("Data page checksum version"); it != cd.fields.end()) {
    cd.data_checksum_version = ParseNumber<uint32_t>(it->second).value_or(0);
  }
  if (auto it = cd.fields.find("wal_log_hints setting"); it != cd.fields.end()) {
    cd.wal_log_hints = it->second == "on";
  }
  return cd;
}

std::optional<Timeline> TimelineFromWalFileName(std::string_view name) {
  name = TrimSpace(name);
  if (name.size() != 24) return std::nullopt;
  for (char c : name) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  auto tli = ParseNumber<uint32_t>(name.substr(0, 8), 16);
  if (!tli || *tli == 0) return std::nullopt;
  return Timeline(*tli);
}

RewindResult ClassifyRewindOutput(bool succeeded, std::string_view output) {
  RewindResult r;
  std::string tail = LastLines(output, 6);
  if (succeeded) {
    // "source and target cluster are on the same timeline" / "servers diverged at WAL
    // location X on timeline N" followed by "no rewind required".
    if (output.find("no rewind required") != std::string_view::npos) {
      r.outcome = RewindResult::Outcome::kNotNeeded;
    } else {
      r.outcome = RewindResult::Outcome::kDone;
    }
  } else {
    r.outcome = RewindResult::Outcome::kImpossible;
  }
  r.detail = tail;
  return r;
}

std::string LastLines(std::string_view text, int max_lines) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = TrimSpace(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty()) lines.push_back(line);
  }
  size_t start = lines.size() > static_cast<size_t>(max_lines) ? lines.size() - max_lines : 0;
  std::string out;
  for (size_t i = start; i < lines.size(); ++i) {
    if (!out.empty()) out += "\n";
    out += lines[i];
  }
  return out;
}

}  // namespace pgwarden::postgres
