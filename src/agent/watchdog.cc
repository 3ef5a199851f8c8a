#include "agent/watchdog.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "config/logging.h"

namespace pgwarden::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr int64_t kNsPerMs = 1'000'000;
// Longest wait without looking at the clock again: a bounded wait even while disarmed.
constexpr int64_t kMaxWaitNs = 1'000'000'000;
// How long the postmaster gets to act on SIGQUIT (it SIGQUITs its children and exits) before
// it and its children are SIGKILLed.
constexpr milliseconds kQuitGrace{200};
constexpr milliseconds kKillWait{1000};
// An input line longer than this is garbage: it is discarded up to the next newline.
constexpr size_t kMaxLine = 8192;

std::string Errno(int err) { return std::strerror(err); }

// A line of outside input as it may appear in a log line: at most 80 characters, printable
// ASCII only.
std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 80)) {
    const auto byte = static_cast<unsigned char>(c);
    out += (byte < 0x20 || byte >= 0x7f) ? '?' : c;  // no control bytes, no broken UTF-8
  }
  if (text.size() > 80) out += "...";
  return out;
}

template <typename Int>
std::optional<Int> ParseInt(std::string_view text) {
  Int value{};
  if (text.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

int64_t ClockNs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);  // cannot fail for these clocks with a valid pointer
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
int64_t MonotonicNowNs() { return ClockNs(CLOCK_MONOTONIC); }
// Time spent suspended since boot: CLOCK_BOOTTIME counts it, CLOCK_MONOTONIC does not.
int64_t BootOffsetNs() { return ClockNs(CLOCK_BOOTTIME) - ClockNs(CLOCK_MONOTONIC); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads a small file (postmaster.pid, /proc/<pid>/stat) whole.
Result<std::string> ReadSmallFile(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Fail(ErrorCode::kNotFound, path + ": " + Errno(errno));
  std::string text;
  char buf[4096];
  for (int i = 0; i < 16; ++i) {  // 64 KiB at most
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(ErrorCode::kFailed, "reading " + path + ": " + Errno(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSignal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// True when the process behind `pidfd` exited within `timeout` (a pidfd polls readable then).
Result<bool> WaitExit(int pidfd, milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    pollfd p{pidfd, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return Fail(ErrorCode::kFailed, "poll(pidfd): " + Errno(errno));
    if (SteadyClock::now() >= deadline) return false;
  }
}

// Why `pid` is not the running postmaster of `data_dir`; nullopt when it is.
std::optional<std::string> NotThePostmaster(pid_t pid, const std::string& data_dir) {
  const std::string pid_file = data_dir + "/postmaster.pid";
  auto text = ReadSmallFile(pid_file);
  if (!text) return "cannot read " + text.error().message;
  auto named = ParsePostmasterPid(*text);
  if (!named) return pid_file + ": " + named.error().message;
  if (*named != pid) {
    return pid_file + " names pid " + std::to_string(*named) + ", not " + std::to_string(pid);
  }
  const std::string proc = "/proc/" + std::to_string(pid);
  auto stat = ReadSmallFile(proc + "/stat");
  if (!stat) return "pid " + std::to_string(pid) + " is not running (" + stat.error().message + ")";
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat->size()) return proc + "/stat is malformed";
  const char state = (*stat)[paren + 2];
  if (state == 'Z' || state == 'X') return "pid " + std::to_string(pid) + " has exited (zombie)";
  // The postmaster runs in its data directory (PostgreSQL's ChangeToDataDir): a reused pid that
  // happens to be named by a stale postmaster.pid is not.
  char cwd[PATH_MAX + 1];
  ssize_t n = readlink((proc + "/cwd").c_str(), cwd, PATH_MAX);
  if (n < 0) return "cannot read " + proc + "/cwd: " + Errno(errno);
  cwd[n] = '\0';
  std::error_code ec;
  const auto canonical = std::filesystem::canonical(data_dir, ec);
  if (ec) return "cannot resolve " + data_dir + ": " + ec.message();
  if (canonical.string() != cwd) {
    return "pid " + std::to_string(pid) + " runs in " + cwd + ", not in " + canonical.string();
  }
  return std::nullopt;
}

// The pids whose parent is `pid` (a scan of /proc; entries that vanish meanwhile are skipped).
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> children;
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc", ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    auto child = ParseInt<pid_t>(it->path().filename().string());
    if (!child) continue;
    auto stat = ReadSmallFile(it->path().string() + "/stat");
    if (!stat) continue;
    if (ParentPidFromStat(*stat) == pid) children.push_back(*child);
  }
  return children;
}

int64_t MsBetween(int64_t from_ns, int64_t to_ns) { return (to_ns - from_ns) / kNsPerMs; }

// Best effort: a watchdog that is paged out, killed first by the OOM killer or scheduled last
// on resume protects less. Each step needs privileges (root); without them it is skipped.
std::string Harden() {
  std::string notes;
  notes += mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? "memory locked" : "memory not locked";
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  bool oom = false;
  if (fd >= 0) {
    oom = write(fd, "-1000", 5) == 5;
    close(fd);
  }
  notes += oom ? ", oom_score_adj -1000" : ", oom_score_adj unchanged";
  sched_param param{};
  param.sched_priority = 1;
  const bool rt = sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &param) == 0;
  notes += rt ? ", SCHED_FIFO 1" : ", normal scheduling";
  return notes;
}

// Splits the watchdog's input into lines and applies them to the state.
class InputLines {
 public:
  InputLines(WatchdogState* state, int64_t* boot_offset_at_arm)
      : state_(state), boot_offset_at_arm_(boot_offset_at_arm) {}

  void Feed(std::string_view chunk) {
    buffer_.append(chunk);
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl == std::string::npos) break;
      if (discarding_) {
        discarding_ = false;
      } else if (nl > kMaxLine) {
        LogTooLong();
      } else {
        Apply(std::string_view(buffer_).substr(0, nl));
      }
      buffer_.erase(0, nl + 1);
    }
    if (buffer_.size() > kMaxLine) {
      LogTooLong();
      buffer_.clear();
      discarding_ = true;
    }
  }

  void End() {
    if (!buffer_.empty() && !discarding_) {
      spdlog::error("ignoring an unterminated last input line: {}", Printable(buffer_));
    }
    buffer_.clear();
  }

 private:
  void LogTooLong() {
    spdlog::error("ignoring an input line longer than {} bytes: {}", kMaxLine, Printable(buffer_));
  }

  void Apply(std::string_view line) {
    auto command = ParseWatchdogCommand(line);
    if (!command) {
      spdlog::error("ignoring input line \"{}\": {}", Printable(line), command.error().message);
      return;
    }
    const std::optional<WatchdogArm> before = state_->armed;
    state_->Apply(*command);
    if (const auto* arm = std::get_if<WatchdogArm>(&*command)) {
      *boot_offset_at_arm_ = BootOffsetNs();
      const int64_t in_ms = MsBetween(MonotonicNowNs(), arm->deadline_ns);
      if (!before || before->postmaster_pid != arm->postmaster_pid ||
          before->data_dir != arm->data_dir) {
        spdlog::info("armed: postmaster {} of {} is fenced unless re-armed within {} ms",
                     arm->postmaster_pid, arm->data_dir, in_ms);
      } else {
        spdlog::debug("re-armed: deadline in {} ms", in_ms);
      }
    } else if (before) {
      spdlog::info("disarmed (postmaster {} of {})", before->postmaster_pid, before->data_dir);
    }
  }

  WatchdogState* state_;
  int64_t* boot_offset_at_arm_;
  std::string buffer_;
  bool discarding_ = false;
};

}  // namespace

// ---- Protocol ----

Result<WatchdogCommand> ParseWatchdogCommand(std::string_view line) {
  // Built in place: GCC 12 at -O1 with ASan warns (maybe-uninitialized, a false positive) when
  // a WatchdogCommand holding WatchdogDisarm is moved into the Result.
  if (line == "disarm")
    return Result<WatchdogCommand>(tl::in_place, std::in_place_type<WatchdogDisarm>);
  const size_t verb_end = line.find(' ');
  const std::string_view verb = line.substr(0, verb_end);
  if (verb != "arm") {
    return Fail(ErrorCode::kInvalidArgument,
                "unknown command \"" + Printable(verb) +
                    "\" (expected `arm <deadline ns> <postmaster pid> <data dir>` or `disarm`)");
  }
  auto next = [&](size_t from,
                  std::string_view what) -> Result<std::pair<std::string_view, size_t>> {
    if (from == std::string_view::npos || from + 1 >= line.size()) {
      return Fail(ErrorCode::kInvalidArgument, std::string("arm: missing ") + std::string(what));
    }
    const size_t end = line.find(' ', from + 1);
    return std::pair{line.substr(from + 1, end == std::string_view::npos ? end : end - from - 1),
                     end};
  };
  auto deadline = next(verb_end, "the deadline");
  if (!deadline) return Fail(deadline.error());
  auto deadline_ns = ParseInt<int64_t>(deadline->first);
  if (!deadline_ns || *deadline_ns <= 0) {
    return Fail(ErrorCode::kInvalidArgument, "arm: deadline \"" + Printable(deadline->first) +
                                                 "\" is not a positive number of nanoseconds");
  }
  auto pid = next(deadline->second, "the postmaster pid");
  if (!pid) return Fail(pid.error());
  auto pid_value = ParseInt<pid_t>(pid->first);
  if (!pid_value || *pid_value <= 1) {
    return Fail(ErrorCode::kInvalidArgument,
                "arm: postmaster pid \"" + Printable(pid->first) + "\" is not a pid above 1");
  }
  if (pid->second == std::string_view::npos || pid->second + 1 >= line.size()) {
    return Fail(ErrorCode::kInvalidArgument, "arm: missing the data directory");
  }
  const std::string_view dir = line.substr(pid->second + 1);
  if (dir.front() != '/') {
    return Fail(ErrorCode::kInvalidArgument,
                "arm: data directory \"" + Printable(dir) + "\" is not an absolute path");
  }
  if (dir.find('\0') != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument, "arm: data directory contains a NUL byte");
  }
  return Result<WatchdogCommand>(tl::in_place, std::in_place_type<WatchdogArm>, *deadline_ns,
                                 *pid_value, std::string(dir));
}

Result<std::string> FormatWatchdogCommand(const WatchdogCommand& command) {
  std::string line;
  if (const auto* arm = std::get_if<WatchdogArm>(&command)) {
    if (arm->data_dir.find('\n') != std::string::npos) {
      return Fail(ErrorCode::kInvalidArgument,
                  "watchdog: data directory \"" + Printable(arm->data_dir) + "\" has a newline");
    }
    line = "arm " + std::to_string(arm->deadline_ns) + " " + std::to_string(arm->postmaster_pid) +
           " " + arm->data_dir;
  } else {
    line = "disarm";
  }
  // It must parse back: the watchdog would ignore it otherwise.
  if (auto parsed = ParseWatchdogCommand(line); !parsed) return Fail(parsed.error());
  line += '\n';
  if (line.size() > PIPE_BUF) {
    return Fail(ErrorCode::kInvalidArgument, "watchdog: command longer than PIPE_BUF (" +
                                                 std::to_string(PIPE_BUF) +
                                                 " bytes), it could not be written atomically");
  }
  return line;
}

Result<pid_t> ParsePostmasterPid(std::string_view text) {
  const std::string_view first = text.substr(0, text.find('\n'));
  auto pid = ParseInt<pid_t>(first);
  if (!pid || *pid <= 0) {
    return Fail(ErrorCode::kCorrupt,
                "first line \"" + Printable(first) + "\" is not a postmaster pid");
  }
  return *pid;
}

std::optional<pid_t> ParentPidFromStat(std::string_view stat) {
  // "<pid> (<comm>) <state> <ppid> ...": comm may hold spaces and ')', so the last ')' ends it.
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos || paren + 4 >= stat.size()) return std::nullopt;
  std::string_view rest = stat.substr(paren + 4);  // past ") S "
  return ParseInt<pid_t>(rest.substr(0, rest.find(' ')));
}

// ---- State machine ----

void WatchdogState::Apply(const WatchdogCommand& command) {
  if (const auto* arm = std::get_if<WatchdogArm>(&command)) {
    armed = *arm;
  } else {
    armed.reset();
  }
}

WatchdogStep NextStep(const WatchdogState& state, int64_t now_ns) {
  if (state.armed)
    return now_ns >= state.armed->deadline_ns ? WatchdogStep::kFence : WatchdogStep::kWait;
  return state.exit_requested ? WatchdogStep::kExit : WatchdogStep::kWait;
}

std::optional<int64_t> WaitUntil(const WatchdogState& state) {
  if (!state.armed) return std::nullopt;
  return state.armed->deadline_ns;
}

int64_t EffectiveNow(int64_t monotonic_now, int64_t boot_offset_now, int64_t boot_offset_at_arm) {
  return monotonic_now + std::max<int64_t>(0, boot_offset_now - boot_offset_at_arm);
}

// ---- The process ----

Result<FenceOutcome> FencePostmaster(pid_t pid, const std::string& data_dir, milliseconds grace) {
  FenceOutcome out;
  if (pid <= 1)
    return Fail(ErrorCode::kInvalidArgument, "refusing to signal pid " + std::to_string(pid));
  // The pidfd pins the process: if it exits and its pid is reused after this point, the
  // signals below fail with ESRCH instead of hitting the newcomer.
  Fd pidfd(PidfdOpen(pid));
  if (pidfd.get() < 0) {
    if (errno == ESRCH) {
      out.detail = "postmaster " + std::to_string(pid) + " is not running";
      return out;
    }
    return Fail(ErrorCode::kFailed, "pidfd_open(" + std::to_string(pid) + "): " + Errno(errno));
  }
  if (auto why = NotThePostmaster(pid, data_dir)) {
    out.detail = "not fenced: " + *why;
    return out;
  }
  const auto start = SteadyClock::now();
  auto since = [&] { return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start); };
  if (PidfdSignal(pidfd.get(), SIGQUIT) < 0) {
    if (errno == ESRCH) {
      out.detail = "postmaster " + std::to_string(pid) + " exited before the signal";
      return out;
    }
    return Fail(ErrorCode::kFailed,
                "SIGQUIT to postmaster " + std::to_string(pid) + ": " + Errno(errno));
  }
  out.signalled = true;
  (void)PidfdSignal(pidfd.get(), SIGCONT);  // a frozen postmaster could not act on SIGQUIT
  auto exited = WaitExit(pidfd.get(), grace);
  if (!exited) return Fail(exited.error());
  if (*exited) {
    out.elapsed = since();
    out.detail = "postmaster " + std::to_string(pid) + " exited after SIGQUIT";
    return out;
  }
  // Still there: stop it first so it forks nothing while its children are listed and killed.
  (void)PidfdSignal(pidfd.get(), SIGSTOP);
  for (pid_t child : ChildrenOf(pid)) {
    Fd child_fd(PidfdOpen(child));
    if (child_fd.get() >= 0 && PidfdSignal(child_fd.get(), SIGKILL) == 0) ++out.children_killed;
  }
  if (PidfdSignal(pidfd.get(), SIGKILL) < 0 && errno != ESRCH) {
    return Fail(ErrorCode::kFailed,
                "SIGKILL to postmaster " + std::to_string(pid) + ": " + Errno(errno));
  }
  out.killed = true;
  exited = WaitExit(pidfd.get(), kKillWait);
  if (!exited) return Fail(exited.error());
  if (!*exited) {
    return Fail(ErrorCode::kTimeout, "postmaster " + std::to_string(pid) + " still there " +
                                         std::to_string(kKillWait.count()) + " ms after SIGKILL");
  }
  out.elapsed = since();
  out.detail = "postmaster " + std::to_string(pid) + " ignored SIGQUIT for " +
               std::to_string(grace.count()) + " ms: SIGKILLed with " +
               std::to_string(out.children_killed) + " children";
  return out;
}

int RunWatchdog(int input_fd) {
  // Dispositions first: a closed log pipe must not kill the watchdog (SIGPIPE), nor a terminal
  // hang-up or Ctrl-C meant for the agent.
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  int sfd = -1;
  if (sigprocmask(SIG_BLOCK, &term, nullptr) == 0) {
    sfd = signalfd(-1, &term, SFD_NONBLOCK | SFD_CLOEXEC);
  }
  if (sfd < 0) spdlog::error("signalfd: {}; SIGTERM will be ignored", Errno(errno));
  Fd sfd_owner(sfd);
  const int tfd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (tfd < 0) spdlog::error("timerfd_create: {}; waits use poll timeouts", Errno(errno));
  Fd tfd_owner(tfd);
  const int flags = fcntl(input_fd, F_GETFL);
  if (flags < 0 || fcntl(input_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    spdlog::critical("cannot make the input non-blocking: {}", Errno(errno));
    return 1;
  }
  spdlog::info("watchdog {} started ({})", getpid(), Harden());

  WatchdogState state;
  int64_t boot_offset_at_arm = BootOffsetNs();
  InputLines lines(&state, &boot_offset_at_arm);
  bool input_open = true;
  int status = 0;
  // Reads what the agent wrote, without blocking: {anything read, end of input}.
  auto read_input = [&]() -> std::pair<bool, bool> {
    bool any = false;
    for (int i = 0; i < 64; ++i) {  // bounded: up to 256 KiB per call
      char chunk[4096];
      const ssize_t got = read(input_fd, chunk, sizeof chunk);
      if (got > 0) {
        any = true;
        lines.Feed(std::string_view(chunk, static_cast<size_t>(got)));
      } else if (got == 0) {
        return {any, true};
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      } else if (errno != EINTR) {
        spdlog::error("reading the agent's pipe: {}", Errno(errno));
        status = 1;
        return {any, true};
      }
    }
    return {any, false};
  };
  for (;;) {
    const int64_t now = EffectiveNow(MonotonicNowNs(), BootOffsetNs(), boot_offset_at_arm);
    const WatchdogStep step = NextStep(state, now);
    if (step == WatchdogStep::kExit) {
      spdlog::info("exiting: {}", input_open ? "SIGTERM" : "the agent's pipe is closed");
      return status;
    }
    if (step == WatchdogStep::kFence && input_open) {
      // The watchdog itself may have been frozen or descheduled while the agent renewed: a
      // newer arm waiting in the pipe counts before a fence on the old deadline.
      const auto [any, eof] = read_input();
      if (eof) {
        lines.End();
        input_open = false;
        state.exit_requested = true;
      }
      if (any) continue;  // decide again with what was read
    }
    if (step == WatchdogStep::kFence) {
      const WatchdogArm arm = *state.armed;
      state.armed.reset();
      spdlog::warn(
          "FENCE: the agent did not renew the deadline (passed {} ms ago); stopping PostgreSQL "
          "(postmaster {} of {})",
          MsBetween(arm.deadline_ns, now), arm.postmaster_pid, arm.data_dir);
      auto fenced = FencePostmaster(arm.postmaster_pid, arm.data_dir, kQuitGrace);
      if (!fenced) {
        spdlog::critical("FENCE failed: {}", fenced.error().ToString());
        status = 1;
      } else if (fenced->signalled) {
        spdlog::warn("FENCE: {} ({} ms)", fenced->detail, fenced->elapsed.count());
      } else {
        spdlog::info("FENCE: nothing to do: {}", fenced->detail);
      }
      continue;
    }
    int64_t wait_ns = kMaxWaitNs;
    if (auto until = WaitUntil(state)) wait_ns = std::clamp<int64_t>(*until - now, 0, kMaxWaitNs);
    // The wake-up is an ABSOLUTE CLOCK_BOOTTIME timer, not a poll timeout: a poll stopped
    // (SIGSTOP, cgroup freeze) is restarted with the time that remained when it was stopped,
    // so a watchdog resumed after its deadline would wait that long again; and a relative
    // CLOCK_MONOTONIC timeout ignores a host suspend. The poll's own timeout is only a
    // backstop in case the timer fails.
    int poll_timeout_ms = static_cast<int>(wait_ns / kNsPerMs) + 1;
    if (tfd >= 0) {
      const int64_t wake = ClockNs(CLOCK_BOOTTIME) + wait_ns;
      itimerspec spec{};
      spec.it_value.tv_sec = static_cast<time_t>(wake / 1'000'000'000);
      spec.it_value.tv_nsec = static_cast<long>(wake % 1'000'000'000);
      if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &spec, nullptr) == 0) {
        poll_timeout_ms = static_cast<int>(2 * kMaxWaitNs / kNsPerMs);
      } else {
        spdlog::error("timerfd_settime: {}", Errno(errno));
      }
    }
    pollfd fds[3] = {{input_open ? input_fd : -1, POLLIN, 0}, {sfd, POLLIN, 0}, {tfd, POLLIN, 0}};
    const int n = poll(fds, 3, poll_timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll: {}", Errno(errno));
      timespec pause{0, std::min<int64_t>(wait_ns, 100 * kNsPerMs)};
      clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);  // no busy loop on a failing poll
      continue;
    }
    if (tfd >= 0 && (fds[2].revents & POLLIN)) {
      uint64_t expirations = 0;
      (void)!read(tfd, &expirations, sizeof expirations);  // drained; EAGAIN is harmless
    }
    if (sfd >= 0 && (fds[1].revents & POLLIN)) {
      signalfd_siginfo info{};
      while (read(sfd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo != SIGTERM) continue;
        spdlog::info("SIGTERM: {}",
                     state.armed ? "exiting once disarmed or fenced at the deadline" : "exiting");
        state.exit_requested = true;
      }
    }
    if (!input_open || fds[0].revents == 0) continue;
    bool eof = (fds[0].revents & POLLNVAL) != 0;
    if (!eof) eof = read_input().second;
    if (eof) {
      lines.End();
      input_open = false;
      state.exit_requested = true;
      if (state.armed) {
        spdlog::warn("the agent's pipe closed while armed: postmaster {} of {} is fenced in {} ms",
                     state.armed->postmaster_pid, state.armed->data_dir,
                     std::max<int64_t>(0, MsBetween(MonotonicNowNs(), state.armed->deadline_ns)));
      }
    }
  }
}

void RegisterWatchdogCommand(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "watchdog",
      "Fence PostgreSQL when the agent stops renewing its deadline (started by the "
      "agent; reads commands on stdin)");
  sub->group("");  // hidden: not for people to run
  sub->callback([] {
    if (auto r = config::StartLogging(config::LogConfig{}, "watchdog", ""); !r) {
      std::fprintf(stderr, "pgwarden watchdog: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    std::exit(RunWatchdog(STDIN_FILENO));
  });
}

// ---- The agent side ----

WatchdogClient::~WatchdogClient() { Stop(); }

Result<void> WatchdogClient::Start(const std::string& exe,
                                   const std::optional<std::string>& log_file) {
  if (write_fd_ >= 0 || child_.pid() > 0) {
    return Fail(ErrorCode::kInvalidArgument, "the watchdog is already started");
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    return Fail(ErrorCode::kFailed, "watchdog: pipe: " + Errno(errno));
  }
  Command cmd;
  cmd.argv = {exe, "watchdog"};
  cmd.stdin_fd = fds[0];
  cmd.output_file = log_file;
  if (!log_file) cmd.output_fd = STDERR_FILENO;
  auto child = ChildProcess::Spawn(cmd);
  close(fds[0]);
  if (!child) {
    close(fds[1]);
    return Fail(child.error().code, "watchdog: " + child.error().message);
  }
  const int flags = fcntl(fds[1], F_GETFL);
  if (flags < 0 || fcntl(fds[1], F_SETFL, flags | O_NONBLOCK) < 0) {
    const int err = errno;
    close(fds[1]);
    child->Kill();
    return Fail(ErrorCode::kFailed, "watchdog: O_NONBLOCK on its pipe: " + Errno(err));
  }
  write_fd_ = fds[1];
  child_ = std::move(*child);
  last_sent_.reset();
  return Ok();
}

Result<bool> WatchdogClient::Send(const WatchdogCommand& command) {
  if (write_fd_ < 0) return Fail(ErrorCode::kUnavailable, "the watchdog is not running");
  if (last_sent_ && *last_sent_ == command) return true;
  auto line = FormatWatchdogCommand(command);
  if (!line) return Fail(line.error());
  // SIGPIPE (the watchdog is gone) must not kill the agent: blocked around the write, and a
  // pending one is consumed.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n;
  do {
    n = write(write_fd_, line->data(), line->size());
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  if (n < 0 && err == EPIPE) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (n == static_cast<ssize_t>(line->size())) {
    last_sent_ = command;
    return true;
  }
  if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) return false;  // frozen watchdog: drop
  if (n < 0 && err == EPIPE) {
    return Fail(ErrorCode::kUnavailable, "the watchdog is gone (its pipe is closed)");
  }
  // A write of at most PIPE_BUF bytes is all or nothing; anything else is a broken pipe.
  return Fail(ErrorCode::kFailed,
              "watchdog: write: " + (n < 0 ? Errno(err) : "short write of " + std::to_string(n)));
}

Result<bool> WatchdogClient::Arm(SteadyTime deadline, pid_t postmaster_pid,
                                 const std::string& data_dir) {
  const int64_t ns = std::chrono::duration_cast<nanoseconds>(deadline.time_since_epoch()).count();
  return Send(WatchdogArm{ns, postmaster_pid, data_dir});
}

Result<bool> WatchdogClient::Disarm() { return Send(WatchdogDisarm{}); }

void WatchdogClient::CloseInput() {
  if (write_fd_ >= 0) close(write_fd_);
  write_fd_ = -1;
}

void WatchdogClient::Stop(milliseconds grace) {
  if (write_fd_ >= 0) {
    if (auto r = Disarm(); !r || !*r) {
      spdlog::warn("watchdog: the disarm could not be sent{}",
                   r ? " (pipe full)" : ": " + r.error().message);
    }
  }
  CloseInput();
  if (child_.pid() <= 0) return;
  if (!child_.Wait(grace)) {
    spdlog::warn("watchdog {} did not exit within {} ms: killed", child_.pid(), grace.count());
  }
  child_.Kill();  // reaps; a no-op for one that exited
  child_ = ChildProcess();
}

SteadyTime WatchdogDeadline(SteadyTime lease_end, milliseconds fence_margin) {
  return lease_end - fence_margin / 2;
}

}  // namespace pgwarden::agent
