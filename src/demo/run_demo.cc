#include "demo/run_demo.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>

#include "demo/demo_cluster.h"
#include "demo/summary.h"

namespace pgwarden::demo {

std::atomic<bool> g_stop_requested{false};

namespace {

void OnStopSignal(int) { g_stop_requested = true; }

// Progress lines, "[  4.2s] ..." relative to the start; shared by the orchestrator and the
// application thread.
class Printer {
 public:
  Printer() : start_(SteadyClock::now()) {}
  void operator()(const std::string& line) {
    const double s = std::chrono::duration<double>(SteadyClock::now() - start_).count();
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "[%6.1fs] ", s);
    std::lock_guard lock(mu_);
    std::cout << prefix << line << "\n" << std::flush;
  }
  void Raw(const std::string& text) {
    std::lock_guard lock(mu_);
    std::cout << text << std::flush;
  }
  SteadyTime start() const { return start_; }

 private:
  SteadyTime start_;
  std::mutex mu_;
};

std::string Secs(SteadyClock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

// Sleeps up to `d`; false when a stop was requested.
bool Pause(std::chrono::milliseconds d) {
  const SteadyTime until = SteadyClock::now() + d;
  while (SteadyClock::now() < until) {
    if (g_stop_requested) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !g_stop_requested;
}

// Polls the cluster until `done(health)`; prints what it waits for whenever that changes, and
// every 5 s. `down` members are expected to be dead; any other agent that exits is an error.
Result<Health> WaitFor(DemoCluster& c, Printer& print, const std::string& what,
                       const std::function<bool(const Health&)>& done,
                       std::chrono::milliseconds timeout, std::optional<size_t> down = {}) {
  const SteadyTime start = SteadyClock::now();
  std::string last_detail;
  SteadyTime last_print = start;
  print("waiting for " + what + " (at most " + Secs(timeout) + ")");
  while (true) {
    if (g_stop_requested) return Fail(ErrorCode::kFailed, "interrupted");
    Health h = c.Check();
    if (done(h)) {
      print(what + ": done after " + Secs(SteadyClock::now() - start) + " (" + h.detail + ")");
      return h;
    }
    for (size_t i = 0; i < c.size(); ++i) {
      if (down && *down == i) continue;
      if (c.node(i).agent && !c.node(i).agent->Running()) {
        return Fail(ErrorCode::kFailed, "the agent of " + c.node(i).name +
                                            " exited; the end of its log (" + c.node(i).log_path +
                                            "):\n" + c.agent_log_tail(i));
      }
    }
    const SteadyTime now = SteadyClock::now();
    if (h.detail != last_detail || now - last_print >= std::chrono::seconds(5)) {
      print("  ... " + h.detail + " (" + Secs(now - start) + ")");
      last_detail = h.detail;
      last_print = now;
    }
    if (now - start >= timeout) {
      return Fail(ErrorCode::kTimeout,
                  "gave up waiting for " + what + " after " + Secs(timeout) + ": " + h.detail);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// A leader, every other member streaming from it, one of them synchronous.
bool AllStreaming(const Health& h, size_t members) {
  return h.leader && h.streaming.size() + 1 == members && (members < 2 || h.sync.has_value());
}

void PrintKeep(DemoCluster& c, Printer& print, const DemoOptions& o) {
  std::string t = "\nThe cluster keeps running in " + c.dir() + ".\n";
  t += "  password of the postgres user: " + std::string(kDemoPassword) + "\n";
  if (c.has_proxy()) {
    t += "  through the proxy (primary): PGPASSWORD=" + std::string(kDemoPassword) +
         " psql -h 127.0.0.1 -p " + std::to_string(c.proxy_primary_port()) + " -U postgres " +
         kDemoDatabase + "\n";
    t += "  proxy status: curl http://127.0.0.1:" + std::to_string(c.proxy_status_port()) +
         "/status\n";
  }
  for (size_t i = 0; i < c.size(); ++i) {
    t += "  " + c.node(i).name + ": PGPASSWORD=" + kDemoPassword + " psql -h 127.0.0.1 -p " +
         std::to_string(c.node(i).pg_port) + " -U postgres " + kDemoDatabase +
         "   (REST API http://127.0.0.1:" + std::to_string(c.node(i).api_port) + "/patroni)\n";
  }
  t += "  cluster table: " + o.self + " list -c " + c.config_path(0) + "\n";
  t += "  the application: " + o.self + " demo-app --dsn \"" + c.AppDsn() + "\"\n";
  t += "  stop it: " + o.self + " demo --stop --dir " + c.dir() + "\n";
  std::string pids;
  for (pid_t p : c.AllPids()) pids += " " + std::to_string(p);
  t += "  (or: kill -9" + pids + ")\n";
  print.Raw(t);
}

// The `freeze` event: the primary's host stops (SIGSTOP of its agent's process tree and of
// its postmaster with its children) for longer than the lease, the others fail over meanwhile,
// then it resumes and must step down and rejoin as a replica. Returns what the summary needs
// for the split-brain check; always thaws what it froze.
Result<FreezeFacts> RunFreeze(DemoCluster& c, Printer& print, const DemoOptions& o,
                              size_t old_index) {
  const size_t n = c.size();
  FreezeFacts f;
  f.old_leader = c.node(old_index).name;
  f.old_port = c.node(old_index).pg_port;
  const auto hold =
      std::chrono::duration_cast<std::chrono::milliseconds>(kDemoTtl + std::chrono::seconds(3));
  const SteadyTime start = SteadyClock::now();
  launch::FrozenHost frozen = c.FreezeMember(old_index);
  std::string pids;
  for (pid_t p : frozen.pids) pids += " " + std::to_string(p);
  print("host freeze of the primary " + f.old_leader + ": SIGSTOP to " +
        std::to_string(frozen.pids.size()) + " processes (its agent and postmaster trees:" + pids +
        ")" + (frozen.all_stopped ? "" : " (not all reported stopped in time)") + " for " +
        Secs(hold) + ", longer than the lease (ttl " + Secs(kDemoTtl) + ")");
  struct Thaw {  // on every path out
    DemoCluster& c;
    launch::FrozenHost& host;
    bool done = false;
    void operator()() {
      if (!done) c.ThawMember(host);
      done = true;
    }
    ~Thaw() { (*this)(); }
  } thaw{c, frozen};
  auto failover = WaitFor(
      c, print,
      "the failover while " + f.old_leader + " is frozen (a new leader, " + std::to_string(n - 2) +
          " replicas streaming)",
      [&](const Health& x) {
        return x.leader && *x.leader != f.old_leader && x.streaming.size() + 2 >= n;
      },
      o.event_timeout, old_index);
  if (!failover) return Fail(failover.error());
  f.failover = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
  f.new_leader = *failover->leader;
  const size_t new_index = *c.IndexOf(f.new_leader);
  auto tl = c.Sql(new_index, "SELECT substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8)",
                  "postgres");
  if (!tl || tl->empty() || tl->at(0).empty() || !tl->at(0).at(0)) {
    return Fail(ErrorCode::kFailed, "cannot read the timeline of the new primary " + f.new_leader +
                                        (tl ? std::string() : ": " + tl.error().message));
  }
  f.new_timeline = std::strtoll(tl->at(0).at(0)->c_str(), nullptr, 16);
  print("new leader " + f.new_leader + " on timeline " + std::to_string(f.new_timeline) +
        " after " + Secs(*f.failover) + ", while " + f.old_leader + " is still frozen");
  print.Raw(c.Table());
  if (!Pause(std::chrono::duration_cast<std::chrono::milliseconds>(start + hold -
                                                                   SteadyClock::now()))) {
    return Fail(ErrorCode::kFailed, "interrupted");
  }
  thaw();
  f.thawed = SteadyClock::now();
  f.frozen_for = std::chrono::duration_cast<std::chrono::milliseconds>(f.thawed - start);
  print("SIGCONT to " + f.old_leader + " after " + Secs(f.frozen_for) +
        " frozen: it wakes up believing it is the primary; it must find its lease gone, stop "
        "accepting writes and rejoin as a replica");
  auto rejoined = WaitFor(
      c, print, f.old_leader + " to rejoin as a replica and stream",
      [&](const Health& x) { return x.leader && *x.leader != f.old_leader && AllStreaming(x, n); },
      o.event_timeout);
  if (!rejoined) return Fail(rejoined.error());
  return f;
}

}  // namespace

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int RunDemo(const DemoOptions& o) {
  Printer print;
  const size_t n = static_cast<size_t>(o.members);
  DemoCluster c(o.self, o.members, o.dir);
  auto fail = [&](const std::string& what, const Error& e) {
    print(e.message.empty() ? what : what + ": " + e.message);
    print(g_stop_requested ? "interrupted: stopping everything the demo started"
                           : "stopping everything the demo started");
    c.Cleanup();
    print("stopped; nothing left running");
    return g_stop_requested ? 130 : 1;
  };

  if (auto r = c.Prepare(); !r) return fail("cannot prepare the directory", r.error());
  print("directory: " + c.dir() +
        (RunningAsRoot() ? " (running as root: PostgreSQL runs as the "
                           "OS user postgres)"
                         : ""));
  print("starting etcd on 127.0.0.1:" + std::to_string(c.etcd_port()));
  if (auto r = c.StartEtcd(std::chrono::seconds(20)); !r) return fail("etcd", r.error());
  for (size_t i = 0; i < n; ++i) {
    print("starting member " + c.node(i).name +
          ": pgwarden agent (REST API 127.0.0.1:" + std::to_string(c.node(i).api_port) +
          ") with PostgreSQL 15 on 127.0.0.1:" + std::to_string(c.node(i).pg_port));
    if (auto r = c.StartAgent(i); !r) return fail("agent " + c.node(i).name, r.error());
  }
  auto healthy = WaitFor(
      c, print,
      std::to_string(n) + " healthy members (one leader, " + std::to_string(n - 1) +
          " replicas streaming, one synchronous)",
      [&](const Health& h) { return AllStreaming(h, n); }, o.startup_timeout);
  if (!healthy) return fail("start-up failed", healthy.error());
  DemoSummary summary;
  summary.startup =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - print.start());
  print("cluster up in " + Secs(*summary.startup));
  print.Raw(c.Table());

  if (c.ProxyAvailable()) {
    print("starting the proxy: primary port 127.0.0.1:" + std::to_string(c.proxy_primary_port()) +
          ", status http://127.0.0.1:" + std::to_string(c.proxy_status_port()) + "/status");
    if (auto r = c.StartProxy(std::chrono::seconds(15)); !r) {
      print("the proxy did not start (" + r.error().message +
            "); the application connects to every member with target_session_attrs=read-write");
    }
  } else {
    print(
        "this pgwarden has no `proxy` command: the application connects to every member with "
        "target_session_attrs=read-write");
  }

  const size_t leader = *c.IndexOf(*healthy->leader);
  print("creating database " + std::string(kDemoDatabase) + " and table log on the primary " +
        c.node(leader).name);
  if (auto r = c.Sql(leader, "CREATE DATABASE demo", "postgres"); !r) {
    return fail("CREATE DATABASE", r.error());
  }
  if (auto r = c.Sql(leader, "CREATE TABLE log (event_id integer NOT NULL)", "demo"); !r) {
    return fail("CREATE TABLE", r.error());
  }

  DemoAppOptions app_options;
  app_options.dsn = c.AppDsn();
  app_options.interval = o.interval;
  app_options.mode = o.mode;
  print("starting the application (" +
        std::string(o.mode == AppMode::kReconnect ? "a new connection" : "one connection") +
        " every " + std::to_string(o.interval.count()) + " ms): " + app_options.dsn);
  DemoApp app(app_options);
  std::thread app_thread([&] { app.Run([&](const std::string& l) { print("app | " + l); }); });
  auto stop_app = [&] {
    app.RequestStop();
    if (app_thread.joinable()) app_thread.join();
  };
  auto fail_app = [&](const std::string& what, const Error& e) {
    stop_app();
    return fail(what, e);
  };

  std::vector<EventRecord> events;
  if (!Pause(std::chrono::seconds(2)))
    return fail_app("interrupted", Error{ErrorCode::kFailed, ""});
  for (const std::string& name : o.events) {
    Health h = c.Check();
    if (!h.leader) return fail_app("before " + name, Error{ErrorCode::kFailed, h.detail});
    const std::string old = *h.leader;
    const size_t old_index = *c.IndexOf(old);
    EventRecord ev;
    ev.name = name;
    print("=== event: " + name + " ===");
    ev.started = SteadyClock::now();
    if (name == "switchover") {
      print("planned switchover: asking the leader " + old + " (POST /switchover)");
      auto r = c.Switchover(old);
      if (!r) return fail_app("switchover", r.error());
      print("leader answered: " + *r);
      auto done = WaitFor(
          c, print, "a new leader and " + std::to_string(n - 1) + " replicas streaming",
          [&](const Health& x) { return x.leader && *x.leader != old && AllStreaming(x, n); },
          o.event_timeout);
      if (!done) return fail_app("switchover", done.error());
    } else if (name == "crash") {
      const auto postmaster = c.PostmasterPid(old_index);
      const pid_t agent = c.node(old_index).agent ? c.node(old_index).agent->pid() : -1;
      print("host crash of the primary " + old + ": SIGKILL to its agent (pid " +
            std::to_string(agent) + ") and postmaster (pid " +
            (postmaster ? std::to_string(*postmaster) : std::string("?")) + ")");
      c.KillMember(old_index);
      auto failover = WaitFor(
          c, print, "the failover (a new leader, " + std::to_string(n - 2) + " replicas streaming)",
          [&](const Health& x) {
            return x.leader && *x.leader != old && x.streaming.size() + 2 >= n;
          },
          o.event_timeout, old_index);
      if (!failover) return fail_app("failover", failover.error());
      print("new leader " + *failover->leader + " after " + Secs(SteadyClock::now() - ev.started) +
            "; restarting " + old + "'s agent");
      print.Raw(c.Table());
      if (auto r = c.StartAgent(old_index); !r) return fail_app("restart", r.error());
      auto rejoined = WaitFor(
          c, print, old + " to rejoin and stream",
          [&](const Health& x) { return AllStreaming(x, n); }, o.event_timeout);
      if (!rejoined) return fail_app("rejoin", rejoined.error());
    } else if (name == "freeze") {
      auto facts = RunFreeze(c, print, o, old_index);
      if (!facts) return fail_app("freeze", facts.error());
      ev.freeze = std::move(*facts);
    } else {
      return fail_app("--events", Error{ErrorCode::kInvalidArgument, "unknown event " + name});
    }
    ev.healed =
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - ev.started);
    print(name + ": all members streaming again after " + Secs(*ev.healed));
    print.Raw(c.Table());
    events.push_back(ev);
    if (!Pause(std::chrono::seconds(2)))
      return fail_app("interrupted", Error{ErrorCode::kFailed, ""});
  }
  stop_app();

  // Every acknowledged id must be on the final primary.
  auto final_health = WaitFor(
      c, print, "the final primary", [&](const Health& x) { return x.leader.has_value(); },
      std::chrono::seconds(30));
  if (!final_health) return fail("reading back the rows", final_health.error());
  const size_t final_leader = *c.IndexOf(*final_health->leader);
  auto rows = c.Sql(final_leader, "SELECT event_id FROM log", "demo");
  if (!rows) return fail("reading back the rows", rows.error());
  std::set<int64_t> ids;
  for (const auto& row : *rows) {
    if (!row.empty() && row[0]) ids.insert(std::stoll(*row[0]));
  }
  const auto attempts = app.Attempts();
  const auto startup = summary.startup;
  summary = Summarize(attempts, events, ids);
  summary.startup = startup;
  print("checked " + std::to_string(summary.acknowledged) +
        " acknowledged ids against the final primary " + c.node(final_leader).name + " (" +
        std::to_string(ids.size()) + " rows)");
  print.Raw(RenderSummary(summary));

  if (o.keep) {
    c.Keep();
    PrintKeep(c, print, o);
  } else {
    print("stopping everything the demo started");
    c.Cleanup();
    print("stopped; nothing left running");
  }
  return summary.lost == 0 && summary.stale_acks == 0 ? 0 : 1;
}

int RunDemoApp(const DemoAppOptions& options, const std::string& log_file) {
  std::ofstream log;
  if (!log_file.empty()) {
    log.open(log_file, std::ios::app);
    if (!log) {
      std::cerr << "cannot open --log-file " << log_file << "\n";
      return 2;
    }
  }
  DemoApp app(options);
  std::mutex mu;
  app.Run(
      [&](const std::string& line) {
        std::lock_guard lock(mu);
        std::cout << line << "\n" << std::flush;
        if (log.is_open()) log << line << "\n" << std::flush;
      },
      &g_stop_requested);
  const auto attempts = app.Attempts();
  int ok = 0;
  for (const auto& a : attempts) ok += a.ok ? 1 : 0;
  std::string text = "\n" + std::to_string(attempts.size()) + " attempts, " + std::to_string(ok) +
                     " acknowledged, " + std::to_string(attempts.size() - ok) + " failed\n";
  // Each interruption: first failure -> first success after it.
  std::optional<size_t> failing_since;
  for (size_t i = 0; i < attempts.size(); ++i) {
    if (!attempts[i].ok && !failing_since) failing_since = i;
    if (attempts[i].ok && failing_since) {
      const auto& f = attempts[*failing_since];
      text += "interruption: first failure " + FormatWallTime(f.wall) + ", first success after " +
              FormatWallTime(attempts[i].wall) + " (" + Secs(attempts[i].end - f.end) + ", " +
              std::to_string(i - *failing_since) + " failed attempts)\n";
      failing_since.reset();
    }
  }
  if (failing_since) {
    text += "still failing since " + FormatWallTime(attempts[*failing_since].wall) + "\n";
  }
  std::cout << text;
  if (log.is_open()) {
    // Every acknowledged id, as ranges, for a loss check against the database afterwards.
    std::string ids;
    std::optional<int64_t> first, last;
    auto flush = [&] {
      if (!first) return;
      ids += (ids.empty() ? "" : ",") + std::to_string(*first) +
             (*last != *first ? "-" + std::to_string(*last) : "");
    };
    for (const auto& a : attempts) {
      if (!a.ok) continue;
      if (last && a.event_id == *last + 1) {
        last = a.event_id;
        continue;
      }
      flush();
      first = last = a.event_id;
    }
    flush();
    log << text << "acknowledged ids: " << ids << "\n";
  }
  return 0;
}

}  // namespace pgwarden::demo
