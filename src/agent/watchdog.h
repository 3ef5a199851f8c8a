// The watchdog: a separate process (`pgwarden watchdog`, hidden subcommand) that fences this
// node's PostgreSQL when the agent stops vouching for it, without a kernel module
// (docs/watchdog.md).
//
// Why: the agent fences itself (FenceLoop) before its etcd lease can expire, but a frozen
// (SIGSTOP, a long stall, a stuck syscall) or killed agent fences nothing while PostgreSQL keeps
// running as primary; the lease expires, a replica is promoted: split brain. The watchdog is the
// agent's dead man's switch: the agent keeps pushing a deadline forward; if the deadline passes,
// the watchdog kills the postmaster.
//
// Protocol: text lines on the watchdog's stdin, written by the agent through a pipe.
//   arm <deadline: CLOCK_MONOTONIC ns> <postmaster pid> <data dir>\n
//   disarm\n
// CLOCK_MONOTONIC is system-wide, so the agent's std::chrono::steady_clock time (libstdc++ reads
// CLOCK_MONOTONIC) is valid in the watchdog. A newer `arm` replaces the previous one.
// End of input (the agent died) or SIGTERM: exit at once when disarmed; when armed, keep the
// deadline, fence at it, then exit.
//
// Layout: the protocol and the watchdog's state machine are pure (tested without processes);
// FencePostmaster and RunWatchdog are the process's thin shell; WatchdogClient is the agent side.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/clock.h"
#include "common/process.h"
#include "common/result.h"

namespace CLI {
class App;
}

namespace pgwarden::agent {

// ---- Protocol (pure) ----

struct WatchdogArm {
  int64_t deadline_ns = 0;  // CLOCK_MONOTONIC, nanoseconds
  pid_t postmaster_pid = 0;
  std::string data_dir;  // absolute; may contain spaces (it is the rest of the line)
  friend bool operator==(const WatchdogArm&, const WatchdogArm&) = default;
};
struct WatchdogDisarm {
  friend bool operator==(const WatchdogDisarm&, const WatchdogDisarm&) = default;
};
using WatchdogCommand = std::variant<WatchdogArm, WatchdogDisarm>;

// One line without its '\n'. kInvalidArgument with what is wrong (unknown verb, a number that
// is not one, pid <= 1, a relative data dir, ...).
Result<WatchdogCommand> ParseWatchdogCommand(std::string_view line);
// The line for `command`, '\n' included. kInvalidArgument when it cannot be sent as one atomic
// pipe write (a data dir with a newline, a line longer than PIPE_BUF) or would not parse back.
Result<std::string> FormatWatchdogCommand(const WatchdogCommand& command);

// The first line of postmaster.pid as a pid; kCorrupt when it is not a positive number.
Result<pid_t> ParsePostmasterPid(std::string_view postmaster_pid_file);
// The parent pid (4th field) of a /proc/<pid>/stat text; nullopt when malformed. The command
// name (2nd field, in parentheses) may itself contain spaces and parentheses.
std::optional<pid_t> ParentPidFromStat(std::string_view stat);

// ---- State machine (pure) ----

struct WatchdogState {
  std::optional<WatchdogArm> armed;
  bool exit_requested = false;  // end of input or SIGTERM

  void Apply(const WatchdogCommand& command);
};

enum class WatchdogStep {
  kWait,   // until WaitUntil() or new input
  kFence,  // the armed deadline has passed: fence, then the state is disarmed
  kExit,   // exit requested and disarmed
};
WatchdogStep NextStep(const WatchdogState& state, int64_t now_ns);
// When to look again without new input: the armed deadline; nullopt when disarmed.
std::optional<int64_t> WaitUntil(const WatchdogState& state);

// The "now" the deadline is compared with. CLOCK_MONOTONIC stops while the host is suspended
// (ACPI sleep) but etcd's lease on another host keeps ageing: the time spent suspended since the
// arm (growth of CLOCK_BOOTTIME - CLOCK_MONOTONIC) is added, so a host that wakes up from a
// suspend longer than the remaining time fences at once instead of up to a whole ttl later.
int64_t EffectiveNow(int64_t monotonic_now, int64_t boot_offset_now, int64_t boot_offset_at_arm);

// ---- The process (adapters) ----

struct FenceOutcome {
  bool signalled = false;  // false: nothing was running that matched (nothing to fence)
  bool killed = false;     // it outlived SIGQUIT's grace: SIGKILL to it and its children
  int children_killed = 0;
  std::chrono::milliseconds elapsed{0};  // from the first signal to its exit
  std::string detail;                    // for the log
};

// Fences the postmaster `pid` of `data_dir`: checks that it still is that data directory's
// postmaster (postmaster.pid's first line names it, /proc/<pid> exists and is not a zombie, its
// working directory is data_dir), SIGQUIT (+ SIGCONT, in case it is frozen) and waits up to
// `grace` for it to exit; then SIGSTOP (no more forks), SIGKILL to each child and to it, and a
// bounded wait. Signals go through a pidfd, so a pid reused meanwhile is never hit.
// `signalled` false when the check fails (the reason in `detail`); kFailed when a system call
// fails (the postmaster may still be running).
Result<FenceOutcome> FencePostmaster(pid_t pid, const std::string& data_dir,
                                     std::chrono::milliseconds grace);

// The watchdog process's main loop on `input_fd` (stdin). Logs through spdlog's default logger.
// Returns the process exit status: 0 after an orderly exit, 1 when the input failed or a fence
// failed at exit.
int RunWatchdog(int input_fd);

// Adds the hidden `pgwarden watchdog` subcommand (it is started by the agent, not by people).
void RegisterWatchdogCommand(CLI::App& app);

// ---- The agent side ----

// Starts and feeds the watchdog process. Not thread-safe: Start and Stop from one thread while
// no other thread calls Arm/Disarm (the agent: Start before the fence thread starts, Stop after
// it joined); Arm/Disarm from the fence thread. Arm and Disarm NEVER block: the pipe is
// O_NONBLOCK and a command that does not fit (the watchdog is frozen and its pipe full) is
// dropped and reported; the next call sends again. Identical consecutive commands are sent once.
// The destructor stops the watchdog (Stop()).
class WatchdogClient {
 public:
  WatchdogClient() = default;
  ~WatchdogClient();
  WatchdogClient(const WatchdogClient&) = delete;
  WatchdogClient& operator=(const WatchdogClient&) = delete;

  // Runs `<exe> watchdog` (exe: this pgwarden binary, e.g. /proc/self/exe resolved) in its own
  // process group, NOT tied to the agent's life; its log lines go to `log_file` (appended), or
  // when nullopt into this process's own stderr (the same open file, so lines interleave instead
  // of overwriting each other). Fails when already started or the spawn fails.
  Result<void> Start(const std::string& exe,
                     const std::optional<std::string>& log_file = std::nullopt);

  // Asks the watchdog to fence `postmaster_pid` of `data_dir` at `deadline` unless re-armed or
  // disarmed before. true: sent (or identical to the last sent); false: dropped, the pipe is
  // full. kUnavailable when the watchdog is gone (not started, exited, pipe broken).
  Result<bool> Arm(SteadyTime deadline, pid_t postmaster_pid, const std::string& data_dir);
  Result<bool> Disarm();

  // Orderly end: disarm, close the pipe (the watchdog exits at once), wait up to `grace`, then
  // SIGKILL. Call it only once PostgreSQL no longer needs fencing (the agent stopped it).
  void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(1000));

  // Closes the pipe WITHOUT disarming, as the death of the agent would: an armed watchdog then
  // fences at its deadline and exits. Test hook, and for an agent that wants to leave the
  // watchdog behind on purpose.
  void CloseInput();

  pid_t pid() const { return child_.pid(); }
  bool Running() { return child_.Running(); }
  // Waits for the watchdog to exit; its exit status, or nullopt while it still runs.
  std::optional<int> Wait(std::chrono::milliseconds timeout) { return child_.Wait(timeout); }

 private:
  Result<bool> Send(const WatchdogCommand& command);

  ChildProcess child_;
  int write_fd_ = -1;
  std::optional<WatchdogCommand> last_sent_;
};

// The deadline the agent passes to Arm: the lease end (the send time of the last confirmed
// keep-alive + ttl; LeaseKeeper::LeaseEndNs) - fence_margin / 2. The agent's own fence acts at
// lease end - fence_margin, so normally it demotes and disarms first; the watchdog acts only when
// the agent could not, and still fence_margin / 2 before etcd can expire the lease.
SteadyTime WatchdogDeadline(SteadyTime lease_end, std::chrono::milliseconds fence_margin);

}  // namespace pgwarden::agent
