#include "cluster/codec.h"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace pgwarden::cluster {
namespace {

using core::MemberRole;
using core::PgState;
using nlohmann::json;

const char* RoleName(MemberRole r) {
  switch (r) {
    case MemberRole::kPrimary:
      return "primary";
    case MemberRole::kReplica:
      return "replica";
    case MemberRole::kDemoted:
      return "demoted";
    case MemberRole::kUninitialized:
      return "uninitialized";
  }
  return "uninitialized";
}

std::optional<MemberRole> ParseRole(const std::string& s) {
  if (s == "primary" || s == "master" || s == "standby_leader") return MemberRole::kPrimary;
  if (s == "replica") return MemberRole::kReplica;
  if (s == "demoted") return MemberRole::kDemoted;
  if (s == "uninitialized") return MemberRole::kUninitialized;
  return std::nullopt;
}

const char* StateName(PgState s) {
  switch (s) {
    case PgState::kStopped:
      return "stopped";
    case PgState::kStarting:
      return "starting";
    case PgState::kRunning:
      return "running";
    case PgState::kStopping:
      return "stopping";
    case PgState::kCrashed:
      return "crashed";
  }
  return "stopped";
}

PgState ParseState(const std::string& s) {
  // Patroni has more states ("running custom bootstrap script", "restarting after failure",
  // "creating replica", ...): anything that is not running is not running.
  if (s == "running") return PgState::kRunning;
  if (s == "starting" || s.starts_with("restarting")) return PgState::kStarting;
  if (s == "stopping") return PgState::kStopping;
  if (s == "crashed" || s.starts_with("start failed")) return PgState::kCrashed;
  return PgState::kStopped;
}

// Reads an unsigned LSN given as a JSON integer (Patroni) or as "X/Y" text.
Lsn LsnField(const json& j, const char* name) {
  if (!j.contains(name) || j.at(name).is_null()) return Lsn();
  const json& v = j.at(name);
  if (v.is_string()) {
    auto lsn = Lsn::Parse(v.get<std::string>());
    if (!lsn) throw std::invalid_argument(std::string(name) + " is not an LSN");
    return *lsn;
  }
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    throw std::invalid_argument(std::string(name) + " is not a non-negative integer");
  }
  return Lsn(v.get<uint64_t>());
}

bool BoolTag(const json& tags, const char* name) {
  if (!tags.contains(name)) return false;
  const json& v = tags.at(name);
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) return v.get<std::string>() == "true";
  return false;
}

template <typename Fn>
auto Guard(const std::string& key, std::string_view text, Fn&& fn)
    -> Result<decltype(fn(std::declval<const json&>()))> {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Fail(ErrorCode::kCorrupt, key + ": not valid JSON");
  try {
    return fn(j);
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kCorrupt, key + ": " + e.what());
  }
}

std::string OptString(const json& j, const char* name) {
  if (!j.contains(name) || j.at(name).is_null()) return "";
  return j.at(name).get<std::string>();
}

}  // namespace

std::string EncodeMember(const core::Member& m,
                         const std::optional<std::string>& scheduled_restart) {
  json tags = json::object();
  if (m.tags.nofailover) tags["nofailover"] = true;
  if (m.tags.nosync) tags["nosync"] = true;
  if (m.tags.noloadbalance) tags["noloadbalance"] = true;
  if (m.tags.failover_priority != 1) tags["failover_priority"] = m.tags.failover_priority;
  const Lsn xlog =
      m.role == MemberRole::kPrimary ? m.current_lsn : std::max(m.received_lsn, m.replayed_lsn);
  json j = {
      {"conn_url", m.conn_url},
      {"api_url", m.api_url},
      {"state", StateName(m.state)},
      {"role", RoleName(m.role)},
      {"timeline", m.timeline.value()},
      {"xlog_location", xlog.value()},
      {"received_lsn", m.received_lsn.value()},
      {"replayed_lsn", m.replayed_lsn.value()},
      {"current_lsn", m.current_lsn.value()},
      {"tags", tags},
  };
  if (m.pending_restart) j["pending_restart"] = true;  // as Patroni: only when set
  if (scheduled_restart) {
    json scheduled = json::parse(*scheduled_restart, nullptr, false);
    if (scheduled.is_object()) j["scheduled_restart"] = std::move(scheduled);
  }
  return j.dump();
}

std::optional<std::string> ScheduledRestartOfMember(std::string_view text) {
  if (text.find("\"scheduled_restart\"") == std::string_view::npos) return std::nullopt;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto it = j.find("scheduled_restart");
  if (it == j.end() || !it->is_object()) return std::nullopt;
  return it->dump();
}

Result<core::Member> DecodeMember(const std::string& key, std::string_view name,
                                  std::string_view text) {
  return Guard(key, text, [&](const json& j) {
    if (!j.is_object()) throw std::invalid_argument("not a JSON object");
    core::Member m;
    m.name = MemberName(std::string(name));
    m.conn_url = OptString(j, "conn_url");
    m.api_url = OptString(j, "api_url");
    m.state = ParseState(OptString(j, "state"));
    const std::string role = OptString(j, "role");
    auto r = ParseRole(role.empty() ? "uninitialized" : role);
    if (!r) throw std::invalid_argument("unknown role '" + role + "'");
    m.role = *r;
    if (j.contains("timeline") && !j.at("timeline").is_null()) {
      const int64_t tl = j.at("timeline").get<int64_t>();
      if (tl < 0 || tl > UINT32_MAX) throw std::invalid_argument("timeline out of range");
      m.timeline = Timeline(static_cast<uint32_t>(tl));
    }
    const Lsn xlog = LsnField(j, "xlog_location");
    m.received_lsn = j.contains("received_lsn") ? LsnField(j, "received_lsn") : xlog;
    m.replayed_lsn = j.contains("replayed_lsn") ? LsnField(j, "replayed_lsn") : xlog;
    m.current_lsn = j.contains("current_lsn") ? LsnField(j, "current_lsn") : xlog;
    m.pending_restart = BoolTag(j, "pending_restart");  // display only: lenient (true/"true")
    if (j.contains("tags")) {
      const json& t = j.at("tags");
      if (!t.is_object()) throw std::invalid_argument("tags is not an object");
      m.tags.nofailover = BoolTag(t, "nofailover");
      m.tags.nosync = BoolTag(t, "nosync");
      m.tags.noloadbalance = BoolTag(t, "noloadbalance");
      if (t.contains("failover_priority")) {
        m.tags.failover_priority = t.at("failover_priority").get<int>();
      }
    }
    return m;
  });
}

std::string EncodeStatus(const core::LeaderStatus& s) {
  return json{{"optime", s.optime.value()}, {"slots", json::object()}}.dump();
}

Result<core::LeaderStatus> DecodeStatus(const std::string& key, std::string_view text) {
  return Guard(key, text, [&](const json& j) {
    if (!j.is_object()) throw std::invalid_argument("not a JSON object");
    return core::LeaderStatus{LsnField(j, "optime")};
  });
}

std::string EncodeHistory(const std::vector<core::HistoryEntry>& history) {
  json list = json::array();
  for (const core::HistoryEntry& e : history) {
    json line = {e.timeline.value(), e.switch_lsn.value(), e.reason, e.time, e.new_leader.str()};
    if (!e.old_leader.empty()) line.push_back(e.old_leader.str());
    list.push_back(line);
  }
  return list.dump();
}

Result<std::vector<core::HistoryEntry>> DecodeHistory(const std::string& key,
                                                      std::string_view text) {
  return Guard(key, text, [&](const json& j) {
    if (!j.is_array()) throw std::invalid_argument("not a JSON list");
    std::vector<core::HistoryEntry> out;
    for (const json& line : j) {
      if (!line.is_array() || line.size() < 2) {
        throw std::invalid_argument("entry " + std::to_string(out.size()) +
                                    " is not [timeline, lsn, ...]");
      }
      core::HistoryEntry e;
      const int64_t tl = line.at(0).get<int64_t>();
      if (tl < 1 || tl > UINT32_MAX) throw std::invalid_argument("timeline out of range");
      e.timeline = Timeline(static_cast<uint32_t>(tl));
      json holder = {{"lsn", line.at(1)}};
      e.switch_lsn = LsnField(holder, "lsn");
      if (line.size() > 2 && line.at(2).is_string()) e.reason = line.at(2).get<std::string>();
      if (line.size() > 3 && line.at(3).is_string()) e.time = line.at(3).get<std::string>();
      if (line.size() > 4 && line.at(4).is_string()) {
        e.new_leader = MemberName(line.at(4).get<std::string>());
      }
      if (line.size() > 5 && line.at(5).is_string()) {
        e.old_leader = MemberName(line.at(5).get<std::string>());
      }
      out.push_back(std::move(e));
    }
    return out;
  });
}

std::string EncodeFailover(const core::FailoverRequest& r) {
  json j = json::object();
  if (r.leader) j["leader"] = r.leader->str();
  if (r.candidate) j["member"] = r.candidate->str();
  if (r.scheduled_at) j["scheduled_at"] = core::FormatIso8601(*r.scheduled_at);
  return j.dump();
}

Result<core::FailoverRequest> DecodeFailover(const std::string& key, std::string_view text) {
  json probe = json::parse(text, nullptr, false);
  if (probe.is_discarded() && !text.empty()) {
    // Legacy "leader:candidate" form.
    const std::string s(text);
    const auto colon = s.find(':');
    core::FailoverRequest r;
    if (colon == std::string::npos) return Fail(ErrorCode::kCorrupt, key + ": not valid JSON");
    if (colon > 0) r.leader = MemberName(s.substr(0, colon));
    if (colon + 1 < s.size()) r.candidate = MemberName(s.substr(colon + 1));
    return r;
  }
  return Guard(key, text, [&](const json& j) {
    if (!j.is_object()) throw std::invalid_argument("not a JSON object");
    core::FailoverRequest r;
    if (const std::string l = OptString(j, "leader"); !l.empty()) r.leader = MemberName(l);
    if (const std::string c = OptString(j, "member"); !c.empty()) r.candidate = MemberName(c);
    if (const std::string at = OptString(j, "scheduled_at"); !at.empty()) {
      r.scheduled_at = ParseIso8601(at);
      if (!r.scheduled_at) {
        throw std::invalid_argument("scheduled_at '" + at + "' is not an ISO 8601 time");
      }
    }
    if (!r.leader && !r.candidate) throw std::invalid_argument("neither leader nor member");
    return r;
  });
}

std::string EncodeSync(const core::SyncState& s) {
  std::string standbys;
  for (const MemberName& n : s.sync_standby) {
    if (!standbys.empty()) standbys += ",";
    standbys += n.str();
  }
  json j = {{"leader", s.leader.str()}};
  j["sync_standby"] = standbys.empty() ? json(nullptr) : json(standbys);
  if (s.quorum > 0) j["quorum"] = s.quorum;  // Patroni 4's quorum mode
  return j.dump();
}

Result<core::SyncState> DecodeSync(const std::string& key, std::string_view text) {
  return Guard(key, text, [&](const json& j) {
    if (!j.is_object()) throw std::invalid_argument("not a JSON object");
    core::SyncState s;
    s.leader = MemberName(OptString(j, "leader"));
    const std::string standbys = OptString(j, "sync_standby");
    size_t start = 0;
    while (start < standbys.size()) {
      size_t comma = standbys.find(',', start);
      if (comma == std::string::npos) comma = standbys.size();
      if (comma > start) s.sync_standby.emplace_back(standbys.substr(start, comma - start));
      start = comma + 1;
    }
    if (auto q = j.find("quorum"); q != j.end() && !q->is_null()) {
      if (!q->is_number_integer() || q->get<int64_t>() < 0 || q->get<int64_t>() > 1000) {
        throw std::invalid_argument("quorum: not an integer in 0..1000");
      }
      s.quorum = static_cast<int>(q->get<int64_t>());
    }
    return s;
  });
}

std::optional<SystemTime> ParseIso8601(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff...][Z|+HH:MM|-HH:MM|+HHMM]
  auto num = [&](size_t pos, size_t len, int& out) {
    if (pos + len > s.size()) return false;
    auto [p, ec] = std::from_chars(s.data() + pos, s.data() + pos + len, out);
    return ec == std::errc() && p == s.data() + pos + len;
  };
  int y, mo, d, h, mi, sec;
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, sec)) {
    return std::nullopt;
  }
  using namespace std::chrono;
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)),
                           day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  size_t pos = 19;
  nanoseconds frac{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100'000'000;
    size_t digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac += nanoseconds((s[pos] - '0') * scale);
      scale /= 10;
      ++pos;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
  }
  minutes offset{0};
  if (pos == s.size()) return std::nullopt;  // a time without an offset is ambiguous
  if (s[pos] == 'Z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    const int sign = s[pos] == '-' ? -1 : 1;
    int oh, om;
    if (!num(pos + 1, 2, oh)) return std::nullopt;
    size_t mpos = pos + 3;
    if (mpos < s.size() && s[mpos] == ':') ++mpos;
    if (!num(mpos, 2, om)) return std::nullopt;
    offset = minutes(sign * (oh * 60 + om));
    pos = mpos + 2;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const sys_days days_point(ymd);
  auto t = days_point + hours(h) + minutes(mi) + seconds(sec) + frac - offset;
  return SystemTime(duration_cast<SystemTime::duration>(t.time_since_epoch()));
}

}  // namespace pgwarden::cluster
