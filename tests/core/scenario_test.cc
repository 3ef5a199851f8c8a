// Scenario transcripts (etcd-io/raft's testdata style): tests/core/testdata/*.txt describe what a
// member observes, step by step, and the decisions expected. Memory carries from one `decide`
// to the next, as in the agent.
//
//   PGWARDEN_REWRITE=1 ./core_test --gtest_filter='Scenario*'   rewrites the expected blocks;
//   review the diff.
//
// Commands (one per line, `#` starts a comment):
//   config name=n2 ttl=5s loop_wait=1s retry_timeout=2s fence_margin=1s max_lag=1000
//          primary_start_timeout=10s switchover_timeout=10s rewind=on|off
//          reclone_on_rewind_failure=on|off nofailover=true priority=2
//   etcd   view=up|down initialize=7000|-|"" leader=n1:88|- status=5000|-
//          history=1:5000:n3[,2:6000:n1]|- failover=leader:candidate (- for none)|-
//   member n1 role=primary state=running lsn=5000 tl=1 lease=88 nofailover=true priority=1
//   member n1 -                  (removes it)
//   pg     data=empty|pending|initialized sysid=7000 state=running|stopped|starting|crashed
//          role=primary|replica tl=1 lsn=5000 start=4000 upstream=n1|- diverged=true|false|-
//   lease  id=77 sent=-200ms lost=true|false
//   tick   1s                    (moves now; `sent` stays where it was)
//   probe  n3 reachable=true running=true role=replica lsn=4990 nofailover=true priority=1
//   inflight promote|start-primary|start-replica|stop|rewind|clone|initdb|-
//   outcome <ActionName> ok|conflict|failed|timeout
//   decide                       then "----" and the expected output up to a blank line
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/decide.h"

namespace pgwarden::core {
namespace {

using std::chrono::milliseconds;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

Duration ParseDuration(const std::string& text) {
  bool neg = !text.empty() && text[0] == '-';
  std::string t = neg ? text.substr(1) : text;
  Duration d{};
  if (t.ends_with("ms")) {
    d = milliseconds(std::stoll(t.substr(0, t.size() - 2)));
  } else if (t.ends_with("s")) {
    d = milliseconds(static_cast<int64_t>(std::stod(t.substr(0, t.size() - 1)) * 1000));
  } else {
    throw std::invalid_argument("bad duration '" + text + "'");
  }
  return neg ? -d : d;
}

std::map<std::string, std::string> Args(std::istringstream& in) {
  std::map<std::string, std::string> out;
  std::string tok;
  while (in >> tok) {
    auto eq = tok.find('=');
    if (eq == std::string::npos) {
      out[tok] = "";
    } else {
      out[tok.substr(0, eq)] = tok.substr(eq + 1);
    }
  }
  return out;
}

bool On(const std::string& v) { return v == "true" || v == "on" || v == "yes"; }

// Runs one transcript; returns the file's text with the actual outputs in place.
class Transcript {
 public:
  Transcript() {
    obs_.now = SteadyTime(std::chrono::hours(100));
    obs_.wall_now = SystemTime(std::chrono::seconds(1'800'000'000));
    view_.initialize = "7000";
    cfg_.name = MemberName("n1");
    obs_.pg.data_dir = DataDirState::kInitialized;
    obs_.pg.system_identifier = "7000";
    obs_.pg.timeline = Timeline(1);
  }

  std::string Run(const std::string& text) {
    std::istringstream in(text);
    std::string out, line;
    bool skipping = false;
    while (std::getline(in, line)) {
      if (skipping) {
        if (Trim(line).empty()) {
          skipping = false;
          out += "\n";
        }
        continue;
      }
      out += line + "\n";
      const std::string cmd_line = Trim(line.substr(0, line.find('#')));
      if (cmd_line.empty()) continue;
      if (cmd_line == "decide") {
        std::string expected_sep;
        std::getline(in, expected_sep);
        out += "----\n" + Decide1();
        skipping = true;
        continue;
      }
      Apply(cmd_line);
    }
    return out;
  }

 private:
  void Apply(const std::string& cmd_line) {
    std::istringstream in(cmd_line);
    std::string cmd;
    in >> cmd;
    if (cmd == "tick") {
      std::string d;
      in >> d;
      obs_.now += ParseDuration(d);
      return;
    }
    if (cmd == "member") {
      std::string name;
      in >> name;
      auto a = Args(in);
      if (a.count("-")) {
        view_.members.erase(MemberName(name));
        return;
      }
      Member& m = view_.members[MemberName(name)];
      m.name = MemberName(name);
      if (a.count("role")) {
        m.role = a["role"] == "primary" ? MemberRole::kPrimary : MemberRole::kReplica;
      }
      m.state = a.count("state") && a["state"] != "running" ? PgState::kStopped : PgState::kRunning;
      if (a.count("lsn")) {
        m.received_lsn = m.replayed_lsn = m.current_lsn = Lsn(std::stoull(a["lsn"]));
      }
      m.timeline = Timeline(a.count("tl") ? std::stoul(a["tl"]) : 1);
      if (a.count("lease")) m.lease = std::stoll(a["lease"]);
      if (a.count("nofailover")) m.tags.nofailover = On(a["nofailover"]);
      if (a.count("priority")) m.tags.failover_priority = std::stoi(a["priority"]);
      return;
    }
    if (cmd == "probe") {
      std::string name;
      in >> name;
      auto a = Args(in);
      PeerStatus p;
      p.reachable = !a.count("reachable") || On(a["reachable"]);
      p.running = p.reachable && (!a.count("running") || On(a["running"]));
      p.role = a["role"] == "primary" ? PgRole::kPrimary : PgRole::kReplica;
      if (a.count("lsn")) p.received_lsn = p.replayed_lsn = Lsn(std::stoull(a["lsn"]));
      if (a.count("nofailover")) p.tags.nofailover = On(a["nofailover"]);
      if (a.count("priority")) p.tags.failover_priority = std::stoi(a["priority"]);
      peers_[MemberName(name)] = p;
      return;
    }
    auto a = Args(in);
    if (cmd == "config") {
      for (auto& [k, v] : a) {
        if (k == "name")
          cfg_.name = MemberName(v);
        else if (k == "ttl")
          cfg_.ttl = ParseDuration(v);
        else if (k == "loop_wait")
          cfg_.loop_wait = ParseDuration(v);
        else if (k == "retry_timeout")
          cfg_.retry_timeout = ParseDuration(v);
        else if (k == "fence_margin")
          cfg_.fence_margin = ParseDuration(v);
        else if (k == "max_lag")
          cfg_.maximum_lag_on_failover = std::stoull(v);
        else if (k == "primary_start_timeout")
          cfg_.primary_start_timeout = ParseDuration(v);
        else if (k == "switchover_timeout")
          cfg_.switchover_timeout = ParseDuration(v);
        else if (k == "rewind")
          cfg_.use_pg_rewind = On(v);
        else if (k == "reclone_on_rewind_failure")
          cfg_.remove_data_directory_on_rewind_failure = On(v);
        else if (k == "nofailover")
          cfg_.tags.nofailover = On(v);
        else if (k == "priority")
          cfg_.tags.failover_priority = std::stoi(v);
        else
          throw std::invalid_argument("config: unknown " + k);
      }
    } else if (cmd == "etcd") {
      for (auto& [k, v] : a) {
        if (k == "view") {
          view_down_ = v == "down";
        } else if (k == "initialize") {
          if (v == "-")
            view_.initialize.reset();
          else
            view_.initialize = v == "\"\"" ? "" : v;
        } else if (k == "leader") {
          if (v == "-") {
            view_.leader.reset();
          } else {
            auto colon = v.find(':');
            view_.leader = LeaderKey{MemberName(v.substr(0, colon)),
                                     std::stoll(v.substr(colon + 1)), ++revision_, revision_};
          }
        } else if (k == "status") {
          if (v == "-")
            view_.status.reset();
          else
            view_.status = LeaderStatus{Lsn(std::stoull(v))};
        } else if (k == "history") {
          view_.history.clear();
          view_.history_mod_revision = v == "-" ? 0 : ++revision_;
          std::istringstream hs(v == "-" ? "" : v);
          std::string e;
          while (std::getline(hs, e, ',')) {
            auto c1 = e.find(':'), c2 = e.find(':', c1 + 1);
            view_.history.push_back(HistoryEntry{Timeline(std::stoul(e.substr(0, c1))),
                                                 Lsn(std::stoull(e.substr(c1 + 1, c2 - c1 - 1))),
                                                 "",
                                                 "",
                                                 MemberName(e.substr(c2 + 1)),
                                                 {}});
          }
        } else if (k == "failover") {
          if (v == "-") {
            view_.failover.reset();
          } else {
            auto colon = v.find(':');
            FailoverRequest r;
            r.mod_revision = ++revision_;
            if (v.substr(0, colon) != "-") r.leader = MemberName(v.substr(0, colon));
            if (v.substr(colon + 1) != "-") r.candidate = MemberName(v.substr(colon + 1));
            view_.failover = r;
          }
        } else {
          throw std::invalid_argument("etcd: unknown " + k);
        }
      }
    } else if (cmd == "pg") {
      LocalPostgres& pg = obs_.pg;
      for (auto& [k, v] : a) {
        if (k == "data") {
          pg.data_dir = v == "empty"     ? DataDirState::kEmpty
                        : v == "pending" ? DataDirState::kBootstrapPending
                                         : DataDirState::kInitialized;
        } else if (k == "sysid") {
          pg.system_identifier = v;
        } else if (k == "state") {
          pg.state = v == "running"    ? ProcessState::kRunning
                     : v == "starting" ? ProcessState::kStarting
                     : v == "crashed"  ? ProcessState::kCrashed
                                       : ProcessState::kStopped;
        } else if (k == "role") {
          pg.role = v == "primary" ? PgRole::kPrimary : PgRole::kReplica;
        } else if (k == "tl") {
          pg.timeline = Timeline(std::stoul(v));
        } else if (k == "lsn") {
          pg.write_lsn = pg.received_lsn = pg.replayed_lsn = Lsn(std::stoull(v));
        } else if (k == "start") {
          pg.timeline_start_lsn = Lsn(std::stoull(v));
        } else if (k == "upstream") {
          if (v == "-")
            pg.upstream.reset();
          else
            pg.upstream = MemberName(v);
        } else if (k == "diverged") {
          if (v == "-")
            pg.diverged.reset();
          else
            pg.diverged = On(v);
        } else {
          throw std::invalid_argument("pg: unknown " + k);
        }
      }
    } else if (cmd == "lease") {
      for (auto& [k, v] : a) {
        if (k == "id")
          obs_.lease.id = std::stoll(v);
        else if (k == "sent")
          obs_.lease.last_confirmed_send = obs_.now + ParseDuration(v);
        else if (k == "lost")
          obs_.lease.lost = On(v);
        else
          throw std::invalid_argument("lease: unknown " + k);
      }
    } else if (cmd == "inflight") {
      const std::string op = a.begin() == a.end() ? "-" : a.begin()->first;
      static const std::map<std::string, Action> kOps = {
          {"promote", Promote{}},
          {"start-primary", StartPostgres{StartRole::kPrimary, {}}},
          {"start-replica", StartPostgres{StartRole::kReplica, {}}},
          {"stop", StopPostgres{StopMode::kFast}},
          {"rewind", Rewind{}},
          {"clone", CloneFrom{}},
          {"initdb", InitDb{}}};
      if (op == "-") {
        obs_.in_flight.reset();
      } else {
        obs_.in_flight = InFlight{kOps.at(op), obs_.now};
      }
    } else if (cmd == "outcome") {
      auto it = a.begin();
      const std::string name = it->first;
      const std::string result = std::next(it) != a.end() ? std::next(it)->first : "ok";
      static const std::map<std::string, Action> kActions = {
          {"AcquireLeader", AcquireLeader{}},
          {"UpdateLeaderStatus", UpdateLeaderStatus{}},
          {"Promote", Promote{}},
          {"Rewind", Rewind{}},
          {"StartPostgres", StartPostgres{}},
          {"ReleaseLeader", ReleaseLeader{}}};
      Result<void> r = Ok();
      if (result == "conflict") r = Fail(ErrorCode::kConflict, "compare failed");
      if (result == "failed") r = Fail(ErrorCode::kFailed, "failed");
      if (result == "timeout") r = Fail(ErrorCode::kTimeout, "timeout");
      obs_.last.push_back(Outcome{kActions.at(name), r});
    } else {
      throw std::invalid_argument("unknown command '" + cmd + "'");
    }
  }

  std::string Decide1() {
    Observation obs = obs_;
    if (!view_down_) obs.cluster = view_;
    if (!peers_.empty()) {
      obs.probes = PeerProbe{memory_.probe_requested_at.value_or(obs_.now), peers_};
    }
    Decision d = Decide(memory_, obs, cfg_);
    memory_ = d.next;
    obs_.last.clear();
    peers_.clear();
    std::string out = "reason: " + d.reason + "\n";
    if (d.leader) out += "leader: yes\n";
    for (const Action& a : d.actions) {
      if (!std::holds_alternative<WriteMember>(a)) out += Describe(a) + "\n";
    }
    return out;
  }

  HaConfig cfg_;
  Observation obs_;
  ClusterView view_;
  bool view_down_ = false;
  int64_t revision_ = 10;
  AgentMemory memory_;
  std::map<MemberName, PeerStatus> peers_;
};

std::filesystem::path TestData() {
  return std::filesystem::path(PGWARDEN_SOURCE_DIR) / "tests" / "core" / "testdata";
}

TEST(ScenarioTest, Transcripts) {
  const bool rewrite = std::getenv("PGWARDEN_REWRITE") != nullptr;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(TestData())) {
    if (entry.path().extension() != ".txt") continue;
    ++files;
    std::ifstream f(entry.path());
    std::stringstream buf;
    buf << f.rdbuf();
    const std::string want = buf.str();
    std::string got;
    try {
      got = Transcript().Run(want);
    } catch (const std::exception& e) {
      ADD_FAILURE() << entry.path() << ": " << e.what();
      continue;
    }
    if (rewrite) {
      std::ofstream(entry.path()) << got;
    } else {
      EXPECT_EQ(got, want) << entry.path().filename()
                           << " differs (PGWARDEN_REWRITE=1 rewrites it; review the diff)";
    }
  }
  EXPECT_GT(files, 0);
}

}  // namespace
}  // namespace pgwarden::core
