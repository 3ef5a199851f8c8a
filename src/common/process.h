// Running other programs (pg_ctl, initdb, pg_basebackup, pg_rewind, etcd in tests) with a
// deadline, an optional unprivileged OS user, and captured output.
//
// PostgreSQL refuses to run as root: when pgwarden runs as root, its programs run as the
// configured OS user (`postgres` by default). The child gets that user's uid, gid and
// supplementary groups, HOME set to that user's home, and a clean working directory.
//
// Thread-safety: every function may be called from any thread; each call owns its child.
// Children are started in their own process group so a timeout kills the whole tree.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace pgwarden {

struct Command {
  std::vector<std::string> argv;              // argv[0] is a path or a name found in PATH
  std::optional<std::string> run_as_user;     // switch to this OS user (only when root)
  std::map<std::string, std::string> env;     // added to / overriding the inherited environment
  std::optional<std::string> working_dir;
  std::optional<std::string> stdin_data;      // written to the child's stdin, then closed
  // When >= 0 (and stdin_data is unset): the child's stdin is this fd, e.g. the read end of a
  // pipe whose write end the caller keeps to talk to a long-lived child (the watchdog). The
  // caller owns it and should close it after Spawn; make it O_CLOEXEC so no other child
  // inherits it.
  int stdin_fd = -1;
  std::optional<std::string> output_file;     // when set, stdout+stderr go to this file instead
                                              // of being captured (for daemons such as
                                              // postgres started by pg_ctl)
  // When >= 0 and output_file is unset: the child's stdout+stderr are this fd, which the caller
  // keeps (e.g. STDERR_FILENO: a helper logs into the parent's own stderr, sharing its file
  // offset, where reopening the same path would overwrite the parent's lines).
  int output_fd = -1;
  // SIGKILL the child when the thread that started it dies (PR_SET_PDEATHSIG), so servers a
  // test or the demo starts cannot outlive a crash of their parent. Start such children from a
  // thread that lives as long as they should (the main thread).
  bool die_with_parent = false;
};

struct ProcessResult {
  int exit_code = -1;      // exit status, or -1 if killed by a signal
  int signal = 0;          // the terminating signal, 0 if it exited
  std::string output;      // stdout and stderr, interleaved, at most 1 MiB kept (the tail)
  std::chrono::milliseconds elapsed{0};
};

// Runs `cmd` to completion. On timeout the whole process group gets SIGTERM, then SIGKILL
// after 2 s, and the result is kTimeout (with the output so far in the message).
// kFailed is NOT returned for a non-zero exit: callers read exit_code (use RunChecked).
Result<ProcessResult> Run(const Command& cmd, std::chrono::milliseconds timeout);

// Like Run, but a non-zero exit becomes kFailed with the command line, the exit status and
// the last lines of its output in the message.
Result<ProcessResult> RunChecked(const Command& cmd, std::chrono::milliseconds timeout);

// A child that keeps running (etcd, a postgres started directly, an agent under test).
// The destructor kills it (SIGKILL to its process group) and reaps it, so a test that
// fails half-way leaves nothing behind.
class ChildProcess {
 public:
  // Starts `cmd` in the background; output goes to cmd.output_file (or /dev/null).
  static Result<ChildProcess> Spawn(const Command& cmd);

  ChildProcess() = default;
  ChildProcess(ChildProcess&&) noexcept;
  ChildProcess& operator=(ChildProcess&&) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool Running();                        // reaps it if it has exited
  void Signal(int sig);                  // to the process only (SIGSTOP / SIGCONT / SIGTERM)
  // Sends SIGTERM, waits up to `grace`, then SIGKILLs the group. Returns the exit status.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  void Kill();                           // SIGKILL to the process group, then reap
  // Waits for exit up to `timeout`; exit status or nullopt if still running.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// The uid/gid of an OS user; kNotFound if there is none.
struct OsUser {
  uid_t uid;
  gid_t gid;
  std::string home;
};
Result<OsUser> LookupOsUser(const std::string& name);

// True when this process runs as root (programs then run as the configured OS user).
bool RunningAsRoot();

// For the long-running commands (agent, proxy): blocks SIGTERM, SIGINT and SIGHUP in the calling
// thread, and so in every thread it starts afterwards, and ignores SIGPIPE. Returns the blocked
// set, for the one thread that takes them with sigtimedwait.
sigset_t BlockStopSignals();

}  // namespace pgwarden
