// The watchdog (src/agent/watchdog.h, docs/watchdog.md): its protocol and state machine (pure),
// then the real `pgwarden watchdog` process against dummy "postmasters" (a sleep running in a
// directory whose postmaster.pid names it) and against a real PostgreSQL 15.
#include "agent/watchdog.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "support/pg_test_node.h"
#include "support/temp_dir.h"

namespace pgwarden::agent {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

// ---- Protocol ----

TEST(WatchdogProtocol, ArmParsesWithADataDirThatHasSpaces) {
  auto c = ParseWatchdogCommand("arm 123456789 4242 /var/lib/pg data/15 main");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(std::get<WatchdogArm>(*c), (WatchdogArm{123456789, 4242, "/var/lib/pg data/15 main"}));
  auto d = ParseWatchdogCommand("disarm");
  ASSERT_TRUE(d);
  EXPECT_TRUE(std::holds_alternative<WatchdogDisarm>(*d));
}

TEST(WatchdogProtocol, GarbageIsRejectedWithTheReason) {
  struct Case {
    const char* line;
    const char* says;
  };
  for (const Case& c :
       {Case{"", "unknown command"}, Case{"hello", "unknown command \"hello\""},
        Case{"disarm now", "unknown command"}, Case{"arm", "missing the deadline"},
        Case{"arm 12", "missing the postmaster pid"},
        Case{"arm 12 77", "missing the data directory"},
        Case{"arm 12 77 ", "missing the data directory"}, Case{"arm x 77 /d", "deadline \"x\""},
        Case{"arm -5 77 /d", "deadline"}, Case{"arm 12 1 /d", "pid above 1"},
        Case{"arm 12 0 /d", "pid above 1"}, Case{"arm 12 -9 /d", "pid above 1"},
        Case{"arm 12 77 data", "not an absolute path"}, Case{"ARM 12 77 /d", "unknown command"}}) {
    auto r = ParseWatchdogCommand(c.line);
    ASSERT_FALSE(r) << c.line;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos)
        << c.line << " -> " << r.error().message;
  }
}

TEST(WatchdogProtocol, FormatRoundTripsAndRefusesWhatCannotBeOneAtomicLine) {
  const WatchdogArm arm{987654321012, 31337, "/srv/pg data"};
  auto line = FormatWatchdogCommand(arm);
  ASSERT_TRUE(line);
  EXPECT_EQ(*line, "arm 987654321012 31337 /srv/pg data\n");
  auto back = ParseWatchdogCommand(std::string_view(*line).substr(0, line->size() - 1));
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<WatchdogArm>(*back), arm);
  EXPECT_EQ(*FormatWatchdogCommand(WatchdogDisarm{}), "disarm\n");
  EXPECT_FALSE(FormatWatchdogCommand(WatchdogArm{1, 2, "/a\nb"}));
  EXPECT_FALSE(FormatWatchdogCommand(WatchdogArm{1, 2, "/" + std::string(5000, 'x')}));
  EXPECT_FALSE(FormatWatchdogCommand(WatchdogArm{1, 2, "relative"}));
  EXPECT_FALSE(FormatWatchdogCommand(WatchdogArm{1, 1, "/d"}));
}

TEST(WatchdogProtocol, PostmasterPidFileAndProcStat) {
  EXPECT_EQ(*ParsePostmasterPid("4242\n/data\n1700000000\n5432\n"), 4242);
  EXPECT_EQ(ParsePostmasterPid("").error().code, ErrorCode::kCorrupt);
  EXPECT_FALSE(ParsePostmasterPid("-1\n"));
  EXPECT_FALSE(ParsePostmasterPid("12ab\n"));
  EXPECT_EQ(ParentPidFromStat("77 (postgres) S 42 77 77 0 -1"), 42);
  EXPECT_EQ(ParentPidFromStat("77 (a) b) (c) R 9 1 1"), 9);  // comm with spaces and ')'
  EXPECT_EQ(ParentPidFromStat("77 (x"), std::nullopt);
  EXPECT_EQ(ParentPidFromStat(""), std::nullopt);
}

// ---- State machine ----

TEST(WatchdogState, ArmedFencesAtTheDeadlineNotBefore) {
  WatchdogState s;
  EXPECT_EQ(NextStep(s, 100), WatchdogStep::kWait);
  EXPECT_EQ(WaitUntil(s), std::nullopt);
  s.Apply(WatchdogArm{1000, 42, "/d"});
  EXPECT_EQ(NextStep(s, 999), WatchdogStep::kWait);
  EXPECT_EQ(WaitUntil(s), 1000);
  EXPECT_EQ(NextStep(s, 1000), WatchdogStep::kFence);
  s.Apply(WatchdogArm{2000, 42, "/d"});  // re-armed in time: the newer deadline counts
  EXPECT_EQ(NextStep(s, 1500), WatchdogStep::kWait);
  s.Apply(WatchdogArm{1200, 42, "/d"});  // even when it is earlier
  EXPECT_EQ(NextStep(s, 1500), WatchdogStep::kFence);
  s.Apply(WatchdogDisarm{});
  EXPECT_EQ(NextStep(s, 1'000'000), WatchdogStep::kWait);
}

TEST(WatchdogState, EndOfInputExitsAtOnceWhenDisarmedElseAfterTheFence) {
  WatchdogState s;
  s.exit_requested = true;
  EXPECT_EQ(NextStep(s, 5), WatchdogStep::kExit);
  s = WatchdogState{};
  s.Apply(WatchdogArm{1000, 42, "/d"});
  s.exit_requested = true;
  EXPECT_EQ(NextStep(s, 999), WatchdogStep::kWait);  // keeps the deadline
  EXPECT_EQ(NextStep(s, 1000), WatchdogStep::kFence);
  s.armed.reset();  // what the shell does after fencing
  EXPECT_EQ(NextStep(s, 1000), WatchdogStep::kExit);
}

TEST(WatchdogState, DeadlineIsTheLeaseEndMinusHalfTheMargin) {
  const SteadyTime lease_end = SteadyTime(12s);  // keep-alive sent at 10 s, ttl 2 s
  EXPECT_EQ(WatchdogDeadline(lease_end, 500ms), SteadyTime(11750ms));
}

TEST(WatchdogState, TimeSpentSuspendedSinceTheArmCounts) {
  EXPECT_EQ(EffectiveNow(1000, 50, 50), 1000);    // no suspend
  EXPECT_EQ(EffectiveNow(1000, 5050, 50), 6000);  // 5 s (units) asleep since the arm
  EXPECT_EQ(EffectiveNow(1000, 40, 50), 1000);    // never earlier than the monotonic clock
  WatchdogState s;
  s.Apply(WatchdogArm{3000, 42, "/d"});
  EXPECT_EQ(NextStep(s, EffectiveNow(1000, 50, 50)), WatchdogStep::kWait);
  EXPECT_EQ(NextStep(s, EffectiveNow(1000, 5050, 50)), WatchdogStep::kFence);
}

// The agent passes steady_clock times; the watchdog compares them with CLOCK_MONOTONIC.
TEST(WatchdogState, SteadyClockIsClockMonotonic) {
  timespec ts{};
  ASSERT_EQ(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
  const auto steady = SteadyClock::now().time_since_epoch();
  const auto mono = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  EXPECT_LT(std::chrono::abs(steady - mono), 50ms);
}

// ---- The real process against dummy postmasters ----

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WaitFor(const std::function<bool()>& done, milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!done()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

bool Alive(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// A process that plays a postmaster: runs `script` (sh) in `dir`, and dir/postmaster.pid names
// it (or `named_pid` when given).
struct DummyPostmaster {
  ChildProcess child;
  std::string dir;
};

DummyPostmaster StartDummy(const std::string& dir, const std::string& cwd,
                           const std::string& script = "exec sleep 60",
                           std::optional<pid_t> named_pid = std::nullopt) {
  std::filesystem::create_directories(dir);
  Command cmd;
  cmd.argv = {"/bin/sh", "-c", script};
  cmd.working_dir = cwd;
  auto child = ChildProcess::Spawn(cmd);
  EXPECT_TRUE(child) << child.error().message;
  std::ofstream(dir + "/postmaster.pid") << named_pid.value_or(child->pid()) << "\n"
                                         << dir << "\n1700000000\n5432\n";
  return DummyPostmaster{std::move(*child), dir};
}

class WatchdogProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    log_ = tmp_.Sub("watchdog.log");
    auto started = client_.Start(PGWARDEN_BINARY, log_);
    ASSERT_TRUE(started) << started.error().message;
    // Started: its first log line says so (it also proves the hidden subcommand exists).
    ASSERT_TRUE(WaitFor([&] { return Log().find("started") != std::string::npos; }, 5s)) << Log();
  }

  std::string Log() { return ReadFile(log_); }

  testing::TempDir tmp_{"watchdog"};
  std::string log_;
  WatchdogClient client_;
};

TEST_F(WatchdogProcess, ArmedDeadlinePassesPostmasterIsGoneWithin500ms) {
  auto pm = StartDummy(tmp_.Sub("data"), tmp_.Sub("data"));
  const auto deadline = SteadyClock::now() + 400ms;
  ASSERT_EQ(client_.Arm(deadline, pm.child.pid(), pm.dir), true);
  ASSERT_TRUE(WaitFor([&] { return !pm.child.Running(); }, 2s)) << Log();
  const auto gone = SteadyClock::now();
  EXPECT_GE(gone, deadline) << "fenced before the deadline";
  EXPECT_LT(gone, deadline + 500ms);
  EXPECT_NE(Log().find("FENCE"), std::string::npos) << Log();
  EXPECT_TRUE(client_.Running()) << "the agent is alive: the watchdog stays";
}

TEST_F(WatchdogProcess, ReArmedInTimeLeavesPostgresAlone) {
  auto pm = StartDummy(tmp_.Sub("data"), tmp_.Sub("data"));
  const auto end = SteadyClock::now() + 1500ms;
  while (SteadyClock::now() < end) {  // the agent renewing: each arm 600 ms ahead, every 100 ms
    ASSERT_EQ(client_.Arm(SteadyClock::now() + 600ms, pm.child.pid(), pm.dir), true);
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(client_.Disarm(), true);
  std::this_thread::sleep_for(800ms);  // past the last arm's deadline
  EXPECT_TRUE(pm.child.Running()) << Log();
  EXPECT_EQ(Log().find("FENCE"), std::string::npos) << Log();
}

TEST_F(WatchdogProcess, DisarmedLeavesPostgresAlone) {
  auto pm = StartDummy(tmp_.Sub("data"), tmp_.Sub("data"));
  ASSERT_EQ(client_.Arm(SteadyClock::now() + 1s, pm.child.pid(), pm.dir), true);
  ASSERT_EQ(client_.Disarm(), true);
  std::this_thread::sleep_for(1300ms);  // past the deadline of the disarmed arm
  EXPECT_TRUE(pm.child.Running()) << Log();
  EXPECT_TRUE(client_.Running());
  EXPECT_NE(Log().find("disarmed"), std::string::npos) << Log();
}

TEST_F(WatchdogProcess, PipeClosedWhileArmedFencesAtTheDeadlineThenExits) {
  auto pm = StartDummy(tmp_.Sub("data"), tmp_.Sub("data"));
  const auto deadline = SteadyClock::now() + 600ms;
  ASSERT_EQ(client_.Arm(deadline, pm.child.pid(), pm.dir), true);
  client_.CloseInput();  // the agent dies
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(pm.child.Running()) << "fenced before the deadline\n" << Log();
  EXPECT_TRUE(client_.Running()) << "exited while armed\n" << Log();
  ASSERT_TRUE(WaitFor([&] { return !pm.child.Running(); }, 2s)) << Log();
  EXPECT_GE(SteadyClock::now(), deadline);
  EXPECT_LT(SteadyClock::now(), deadline + 500ms);
  auto status = client_.Wait(1s);
  ASSERT_TRUE(status) << "the watchdog did not exit after fencing\n" << Log();
  EXPECT_EQ(*status, 0) << Log();
}

TEST_F(WatchdogProcess, PipeClosedWhileDisarmedExitsAtOnce) {
  client_.CloseInput();
  const auto closed = SteadyClock::now();
  auto status = client_.Wait(2s);
  ASSERT_TRUE(status) << Log();
  EXPECT_EQ(*status, 0);
  EXPECT_LT(SteadyClock::now() - closed, 300ms);
}

TEST_F(WatchdogProcess, APidThatIsNotThatDataDirsPostmasterIsNotKilled) {
  // postmaster.pid names another pid (a stale file; the dummy is some unrelated process).
  auto stale = StartDummy(tmp_.Sub("a"), tmp_.Sub("a"), "exec sleep 60", getpid());
  // postmaster.pid names the process, but it does not run in that data directory.
  std::filesystem::create_directories(tmp_.Sub("elsewhere"));
  auto moved = StartDummy(tmp_.Sub("b"), tmp_.Sub("elsewhere"));
  ASSERT_EQ(client_.Arm(SteadyClock::now() + 200ms, stale.child.pid(), stale.dir), true);
  ASSERT_TRUE(WaitFor([&] { return Log().find("not fenced") != std::string::npos; }, 2s)) << Log();
  ASSERT_EQ(client_.Arm(SteadyClock::now() + 200ms, moved.child.pid(), moved.dir), true);
  ASSERT_TRUE(WaitFor([&] { return Log().find("runs in") != std::string::npos; }, 2s)) << Log();
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(stale.child.Running()) << Log();
  EXPECT_TRUE(moved.child.Running()) << Log();
  EXPECT_NE(Log().find("names pid " + std::to_string(getpid())), std::string::npos) << Log();
}

TEST_F(WatchdogProcess, APostmasterIgnoringSigquitIsKilledWithItsChildren) {
  // sh ignores SIGQUIT, and so does its background child (the disposition is inherited).
  auto pm = StartDummy(tmp_.Sub("data"), tmp_.Sub("data"), "trap '' QUIT; sleep 60 & wait");
  pid_t child = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& e : std::filesystem::directory_iterator("/proc")) {
          auto stat = ReadFile(e.path().string() + "/stat");
          if (!stat.empty() && ParentPidFromStat(stat) == pm.child.pid()) {
            child = std::stoi(e.path().filename().string());
            return true;
          }
        }
        return false;
      },
      2s));
  const auto deadline = SteadyClock::now() + 200ms;
  ASSERT_EQ(client_.Arm(deadline, pm.child.pid(), pm.dir), true);
  ASSERT_TRUE(WaitFor([&] { return !pm.child.Running(); }, 2s)) << Log();
  EXPECT_LT(SteadyClock::now(), deadline + 500ms);
  EXPECT_TRUE(WaitFor([&] { return !Alive(child); }, 1s)) << "child " << child << " survived";
  EXPECT_NE(Log().find("SIGKILLed with 1 children"), std::string::npos) << Log();
}

// The watchdog alone was frozen while the agent renewed: on resume the newer arm waiting in its
// pipe counts, the old deadline does not.
TEST_F(WatchdogProcess, ANewerArmWaitingInThePipeWinsOverAnOldDeadlineOnResume) {
  auto pm = StartDummy(tmp_.Sub("data"), tmp_.Sub("data"));
  ASSERT_EQ(client_.Arm(SteadyClock::now() + 300ms, pm.child.pid(), pm.dir), true);
  ASSERT_TRUE(WaitFor([&] { return Log().find("armed:") != std::string::npos; }, 2s)) << Log();
  ASSERT_EQ(kill(client_.pid(), SIGSTOP), 0);
  ASSERT_EQ(client_.Arm(SteadyClock::now() + 5s, pm.child.pid(), pm.dir), true);
  std::this_thread::sleep_for(600ms);  // past the first deadline
  ASSERT_EQ(kill(client_.pid(), SIGCONT), 0);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(pm.child.Running()) << Log();
  EXPECT_EQ(Log().find("FENCE"), std::string::npos) << Log();
}

// A frozen watchdog never blocks the agent: once its pipe is full, commands are dropped at once.
TEST_F(WatchdogProcess, AFrozenWatchdogNeverBlocksTheAgent) {
  auto pm = StartDummy(tmp_.Sub("data"), tmp_.Sub("data"));
  ASSERT_EQ(kill(client_.pid(), SIGSTOP), 0);
  const auto far = SteadyClock::now() + 60s;
  bool dropped = false;
  milliseconds slowest{0};
  for (int i = 0; i < 5000 && !dropped; ++i) {  // ~70 bytes each: a 64 KiB pipe fills first
    const auto t0 = SteadyClock::now();
    auto sent = client_.Arm(far + std::chrono::microseconds(i), pm.child.pid(), pm.dir);
    slowest = std::max(slowest, std::chrono::duration_cast<milliseconds>(SteadyClock::now() - t0));
    ASSERT_TRUE(sent) << sent.error().message;
    dropped = !*sent;
  }
  EXPECT_TRUE(dropped) << "the pipe never filled";
  // A blocking write would hang here for as long as the watchdog stays frozen; the bound only
  // leaves room for scheduling delays on a loaded machine.
  EXPECT_LT(slowest, 500ms);
  ASSERT_EQ(kill(client_.pid(), SIGCONT), 0);
  // Once it drains its pipe, commands get through again (the dropped one is re-sent).
  EXPECT_TRUE(WaitFor([&] { return client_.Disarm().value_or(false); }, 2s));
  EXPECT_TRUE(pm.child.Running());
}

// A dead watchdog: the agent gets kUnavailable, not a SIGPIPE that would kill it.
TEST_F(WatchdogProcess, ADeadWatchdogIsReportedWithoutSigpipe) {
  ::signal(SIGPIPE, SIG_DFL);  // the client must protect a process that does not ignore it
  ASSERT_EQ(kill(client_.pid(), SIGKILL), 0);
  ASSERT_TRUE(client_.Wait(2s));
  auto sent = client_.Arm(SteadyClock::now() + 1s, 4242, "/nonexistent");
  ::signal(SIGPIPE, SIG_IGN);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, ErrorCode::kUnavailable) << sent.error().message;
}

// Without a log file the watchdog writes into the agent's own stderr, the same open file:
// lines interleave. (Reopening the path would give it its own offset, and the agent's next
// lines would overwrite the watchdog's when stderr is a file opened without O_APPEND.)
TEST(WatchdogLog, SharesTheAgentsStderr) {
  ::signal(SIGPIPE, SIG_IGN);
  testing::TempDir tmp("watchdog");
  const std::string path = tmp.Sub("agent.log");
  const int file = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(file, 0);
  const int saved = dup(STDERR_FILENO);
  ASSERT_GE(saved, 0);
  ASSERT_GE(dup2(file, STDERR_FILENO), 0);
  auto put = [](const char* line) { (void)!write(STDERR_FILENO, line, std::strlen(line)); };
  put("agent line 1\n");
  {
    WatchdogClient client;
    auto started = client.Start(PGWARDEN_BINARY);
    if (started) {
      WaitFor([&] { return ReadFile(path).find("started") != std::string::npos; }, 5s);
      put("agent line 2\n");
      (void)client.Disarm();
      client.Stop();
    }
    put("agent line 3\n");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(file);
    ASSERT_TRUE(started) << started.error().message;
  }
  const std::string log = ReadFile(path);
  for (const char* want : {"agent line 1", "watchdog: watchdog", "agent line 2", "agent line 3"}) {
    EXPECT_NE(log.find(want), std::string::npos) << want << " missing:\n" << log;
  }
}

// Garbage on stdin: an error is logged, the line ignored, and the watchdog still works.
TEST(WatchdogGarbage, GarbageIsLoggedAndIgnored) {
  ::signal(SIGPIPE, SIG_IGN);
  testing::TempDir tmp("watchdog");
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  Command cmd;
  cmd.argv = {PGWARDEN_BINARY, "watchdog"};
  cmd.stdin_fd = fds[0];
  cmd.output_file = tmp.Sub("watchdog.log");
  auto wd = ChildProcess::Spawn(cmd);
  close(fds[0]);
  ASSERT_TRUE(wd) << wd.error().message;
  auto pm = StartDummy(tmp.Sub("data"), tmp.Sub("data"));
  auto send = [&](const std::string& bytes) {
    ASSERT_EQ(write(fds[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  };
  send("hello\n");
  send("arm 12 77\n");
  send("\x01\x02\xff zap\n");
  send(std::string(10000, 'z') + "\n");  // too long: discarded up to its newline
  send("arm 1 1 /\n");                   // pid 1 is never armed
  const auto deadline = SteadyClock::now() + 300ms;
  send(*FormatWatchdogCommand(WatchdogArm{
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count(),
      pm.child.pid(), pm.dir}));
  ASSERT_TRUE(WaitFor([&] { return !pm.child.Running(); }, 2s))
      << ReadFile(tmp.Sub("watchdog.log"));
  close(fds[1]);
  auto status = wd->Wait(2s);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0);
  const std::string log = ReadFile(tmp.Sub("watchdog.log"));
  EXPECT_NE(log.find("ignoring input line \"hello\": unknown command"), std::string::npos) << log;
  EXPECT_NE(log.find("missing the data directory"), std::string::npos) << log;
  EXPECT_NE(log.find("longer than 8192 bytes"), std::string::npos) << log;
  EXPECT_NE(log.find("pid above 1"), std::string::npos) << log;
  EXPECT_NE(log.find("FENCE"), std::string::npos) << log;
}

// ---- A real PostgreSQL 15 ----

class WatchdogPostgres : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::signal(SIGPIPE, SIG_IGN);
    tmp_ = new testing::TempDir("watchdog-pg");
    node_ = new testing::PgTestNode(tmp_->path(), "n1");
    auto r = node_->InitAndStart();
    ASSERT_TRUE(r) << r.error().message;
  }
  static void TearDownTestSuite() {
    delete node_;
    delete tmp_;
  }
  void SetUp() override {
    if (!Postmaster()) {
      auto r = node_->pg().Start(30s);
      ASSERT_TRUE(r) << r.error().message;
    }
    ASSERT_TRUE(node_->SqlValue("SELECT 1"));
    log_ = tmp_->Sub("watchdog.log");
    auto started = client_.Start(PGWARDEN_BINARY, log_);
    ASSERT_TRUE(started) << started.error().message;
  }
  static std::optional<pid_t> Postmaster() {
    auto text = ReadFile(node_->options().data_dir + "/postmaster.pid");
    auto pid = ParsePostmasterPid(text);
    if (!pid || !Alive(*pid)) return std::nullopt;
    return *pid;
  }

  static testing::TempDir* tmp_;
  static testing::PgTestNode* node_;
  std::string log_;
  WatchdogClient client_;
};
testing::TempDir* WatchdogPostgres::tmp_ = nullptr;
testing::PgTestNode* WatchdogPostgres::node_ = nullptr;

TEST_F(WatchdogPostgres, ArmedDeadlinePassesPrimaryIsGoneWithin500ms) {
  const pid_t pm = *Postmaster();
  const auto deadline = SteadyClock::now() + 500ms;
  ASSERT_EQ(client_.Arm(deadline, pm, node_->options().data_dir), true);
  ASSERT_TRUE(WaitFor([&] { return !Alive(pm); }, 3s)) << ReadFile(log_);
  const auto gone = SteadyClock::now();
  EXPECT_GE(gone, deadline);
  EXPECT_LT(gone, deadline + 500ms) << ReadFile(log_);
  EXPECT_FALSE(node_->SqlValue("SELECT 1")) << "PostgreSQL still answers";
  std::cerr << "postmaster gone "
            << std::chrono::duration_cast<milliseconds>(gone - deadline).count()
            << " ms after the deadline\n";
}

TEST_F(WatchdogPostgres, RearmedPrimaryIsUntouchedThenAgentDeathFencesItAtTheDeadline) {
  const pid_t pm = *Postmaster();
  const std::string dir = node_->options().data_dir;
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(client_.Arm(SteadyClock::now() + 600ms, pm, dir), true);
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(Alive(pm));
  ASSERT_TRUE(node_->SqlValue("SELECT 1"));
  const auto deadline = SteadyClock::now() + 500ms;
  ASSERT_EQ(client_.Arm(deadline, pm, dir), true);
  client_.CloseInput();  // the agent is SIGKILLed
  ASSERT_TRUE(WaitFor([&] { return !Alive(pm); }, 3s)) << ReadFile(log_);
  EXPECT_GE(SteadyClock::now(), deadline);
  EXPECT_LT(SteadyClock::now(), deadline + 500ms);
  auto status = client_.Wait(2s);
  ASSERT_TRUE(status) << ReadFile(log_);
  EXPECT_EQ(*status, 0);
}

std::vector<pid_t> ChildrenOfPid(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    auto stat = ReadFile(e.path().string() + "/stat");
    if (!stat.empty() && ParentPidFromStat(stat) == parent) out.push_back(std::stoi(name));
  }
  return out;
}

// A whole-host freeze (VM pause, cgroup freeze) stops the watchdog AND PostgreSQL; on resume
// the deadline has passed and the watchdog fences at once. Worst order: PostgreSQL resumes
// first, the watchdog last.
TEST_F(WatchdogPostgres, HostFreezeThenResumeFencesAtOnce) {
  const pid_t pm = *Postmaster();
  std::vector<pid_t> pg = ChildrenOfPid(pm);
  pg.push_back(pm);
  const auto deadline = SteadyClock::now() + 1000ms;
  ASSERT_EQ(client_.Arm(deadline, pm, node_->options().data_dir), true);
  std::this_thread::sleep_for(50ms);  // the arm is read before the freeze
  ASSERT_EQ(kill(client_.pid(), SIGSTOP), 0);
  for (pid_t p : pg) kill(p, SIGSTOP);
  std::this_thread::sleep_for(1500ms);  // frozen past the deadline
  EXPECT_TRUE(Alive(pm));
  const auto resumed = SteadyClock::now();
  for (pid_t p : pg) kill(p, SIGCONT);
  kill(client_.pid(), SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return !Alive(pm); }, 3s)) << ReadFile(log_);
  const auto took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - resumed);
  // Not "the time that remained when it was frozen" (a restarted relative poll timeout, ~950
  // ms here): the wake-up is an absolute timer that has already expired on resume.
  EXPECT_LT(took, 400ms) << ReadFile(log_);
  std::cerr << "postmaster gone " << took.count() << " ms after the resume\n";
}

}  // namespace
}  // namespace pgwarden::agent
