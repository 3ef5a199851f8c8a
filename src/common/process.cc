#include "common/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace pgwarden {
namespace {

constexpr size_t kMaxOutput = 1 << 20;

std::string CommandLine(const Command& cmd) {
  std::string line;
  for (const auto& a : cmd.argv) {
    if (!line.empty()) line += ' ';
    line += a;
  }
  return line;
}

std::string Tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  while (pos > 0 && text[pos - 1] == '\n') --pos;
  size_t end = pos;
  for (size_t n = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++n == lines) break;
  }
  return text.substr(pos, end - pos);
}

// Everything the child needs, prepared before fork(): after fork() in a threaded process only
// async-signal-safe calls are allowed, so no allocation happens in the child.
struct Prepared {
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::optional<OsUser> user;
  std::vector<gid_t> groups;
  std::string user_name;
  pid_t parent_pid = 0;
};

Result<Prepared> Prepare(const Command& cmd) {
  if (cmd.argv.empty()) return Fail(ErrorCode::kInvalidArgument, "empty command");
  Prepared p;
  p.parent_pid = getpid();
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos) env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  if (cmd.run_as_user && RunningAsRoot()) {
    auto user = LookupOsUser(*cmd.run_as_user);
    if (!user) return Fail(user.error());
    p.user = *user;
    p.user_name = *cmd.run_as_user;
    int ngroups = 64;
    p.groups.resize(ngroups);
    if (getgrouplist(p.user_name.c_str(), user->gid, p.groups.data(), &ngroups) < 0) {
      p.groups.resize(ngroups);
      getgrouplist(p.user_name.c_str(), user->gid, p.groups.data(), &ngroups);
    }
    p.groups.resize(ngroups);
    env["HOME"] = user->home;
    env["USER"] = p.user_name;
    env["LOGNAME"] = p.user_name;
  }
  for (const auto& [k, v] : cmd.env) env[k] = v;
  for (const auto& [k, v] : env) p.env_storage.push_back(k + "=" + v);
  for (auto& s : p.env_storage) p.envp.push_back(s.data());
  p.envp.push_back(nullptr);
  for (const auto& a : cmd.argv) p.argv.push_back(const_cast<char*>(a.c_str()));
  p.argv.push_back(nullptr);
  return p;
}

// In the child: become the user, set up fds, exec. Only async-signal-safe calls.
[[noreturn]] void ExecChild(const Command& cmd, const Prepared& p, int out_fd, int in_fd,
                            int err_pipe) {
  setpgid(0, 0);
  if (cmd.die_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != p.parent_pid) _exit(127);  // the parent died before prctl took effect
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  auto die = [&](const char* what) {
    int e = errno;
    (void)!write(err_pipe, &e, sizeof e);
    (void)!write(err_pipe, what, strlen(what));
    _exit(127);
  };
  if (in_fd >= 0) {
    if (dup2(in_fd, 0) < 0) die("dup2 stdin");
  } else {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
  }
  if (dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) die("dup2 stdout");
  if (p.user) {
    if (setgroups(p.groups.size(), p.groups.data()) < 0) die("setgroups");
    if (setgid(p.user->gid) < 0) die("setgid");
    if (setuid(p.user->uid) < 0) die("setuid");
  }
  if (cmd.working_dir) {
    if (chdir(cmd.working_dir->c_str()) < 0) die("chdir");
  } else if (p.user) {
    if (chdir("/") < 0) die("chdir /");
  }
  execvpe(p.argv[0], p.argv.data(), p.envp.data());
  die("exec");
  _exit(127);
}

struct Started {
  pid_t pid;
  int out_read = -1;  // -1 when output goes to a file
  int in_write = -1;
};

Result<Started> StartChild(const Command& cmd, bool capture) {
  auto prepared = Prepare(cmd);
  if (!prepared) return Fail(prepared.error());
  int out[2] = {-1, -1}, in[2] = {-1, -1}, err[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {out[0], out[1], in[0], in[1], err[0], err[1]})
      if (fd >= 0) close(fd);
  };
  int out_fd = -1;
  if (cmd.output_file) {
    out_fd = open(cmd.output_file->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (out_fd < 0)
      return Fail(ErrorCode::kFailed, "cannot open " + *cmd.output_file + ": " + strerror(errno));
    if (prepared->user) (void)!fchown(out_fd, prepared->user->uid, prepared->user->gid);
  } else if (cmd.output_fd >= 0) {
    out_fd = cmd.output_fd;  // the caller's: never closed here
  } else if (capture) {
    if (pipe2(out, O_CLOEXEC) < 0) return Fail(ErrorCode::kFailed, "pipe failed");
    out_fd = out[1];
  } else {
    out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  }
  if (cmd.stdin_data && pipe2(in, O_CLOEXEC) < 0) {
    close_all();
    return Fail(ErrorCode::kFailed, "pipe failed");
  }
  if (pipe2(err, O_CLOEXEC) < 0) {
    close_all();
    return Fail(ErrorCode::kFailed, "pipe failed");
  }
  pid_t pid = fork();
  if (pid < 0) {
    close_all();
    return Fail(ErrorCode::kFailed, std::string("fork failed: ") + strerror(errno));
  }
  if (pid == 0) ExecChild(cmd, *prepared, out_fd, in[0] >= 0 ? in[0] : cmd.stdin_fd, err[1]);
  setpgid(pid, pid);  // also from the parent, so a kill(-pid) right away cannot miss
  close(err[1]);
  err[1] = -1;
  if (out[1] >= 0) {
    close(out[1]);
    out[1] = -1;
  } else if (out_fd >= 0 && out_fd != cmd.output_fd) {
    close(out_fd);
  }
  if (in[0] >= 0) {
    close(in[0]);
    in[0] = -1;
  }
  // The exec status pipe closes on a successful exec (O_CLOEXEC); data means it failed.
  int child_errno = 0;
  char what[64] = {0};
  ssize_t n = read(err[0], &child_errno, sizeof child_errno);
  if (n == sizeof child_errno) {
    (void)!read(err[0], what, sizeof what - 1);
    close(err[0]);
    waitpid(pid, nullptr, 0);
    if (out[0] >= 0) close(out[0]);
    if (in[1] >= 0) close(in[1]);
    return Fail(ErrorCode::kFailed, "cannot run `" + CommandLine(cmd) + "`: " + what + ": " +
                                        strerror(child_errno));
  }
  close(err[0]);
  return Started{pid, out[0], in[1]};
}

int DecodeStatus(int status, ProcessResult* r) {
  if (WIFEXITED(status)) {
    r->exit_code = WEXITSTATUS(status);
    r->signal = 0;
  } else if (WIFSIGNALED(status)) {
    r->exit_code = -1;
    r->signal = WTERMSIG(status);
  }
  return r->exit_code;
}

}  // namespace

bool RunningAsRoot() { return geteuid() == 0; }

Result<OsUser> LookupOsUser(const std::string& name) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr)
    return Fail(ErrorCode::kNotFound, "no OS user named `" + name + "`");
  return OsUser{pw.pw_uid, pw.pw_gid, pw.pw_dir ? pw.pw_dir : "/"};
}

Result<ProcessResult> Run(const Command& cmd, std::chrono::milliseconds timeout) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  auto started = StartChild(cmd, /*capture=*/true);
  if (!started) return Fail(started.error());
  ProcessResult result;
  if (started->in_write >= 0) {
    // Small inputs only (passwords, SQL): a blocking write of up to a pipe buffer is fine.
    const std::string& data = *cmd.stdin_data;
    size_t off = 0;
    while (off < data.size()) {
      ssize_t w = write(started->in_write, data.data() + off, data.size() - off);
      if (w <= 0) break;
      off += w;
    }
    close(started->in_write);
  }
  bool timed_out = false;
  int status = 0;
  bool reaped = false;
  bool term_sent = false;
  auto kill_deadline = deadline;
  int fd = started->out_read;
  char buf[8192];
  while (true) {
    auto now = std::chrono::steady_clock::now();
    if (!timed_out && now >= deadline) {
      timed_out = true;
      term_sent = true;
      kill(-started->pid, SIGTERM);
      kill_deadline = now + std::chrono::seconds(2);
    } else if (term_sent && now >= kill_deadline) {
      kill(-started->pid, SIGKILL);
      term_sent = false;
    }
    if (fd >= 0) {
      auto wait_until = timed_out ? kill_deadline : deadline;
      int ms = static_cast<int>(std::clamp<int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(wait_until - now).count(), 1, 100));
      struct pollfd pfd{fd, POLLIN, 0};
      int pr = poll(&pfd, 1, ms);
      if (pr > 0) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
          result.output.append(buf, n);
          if (result.output.size() > kMaxOutput)
            result.output.erase(0, result.output.size() - kMaxOutput);
          continue;
        }
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
          close(fd);
          fd = -1;
        }
      }
    } else {
      // Output closed (or went to a file): poll the child for exit.
      pid_t w = waitpid(started->pid, &status, WNOHANG);
      if (w == started->pid) {
        reaped = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (fd >= 0) close(fd);
  if (!reaped) waitpid(started->pid, &status, 0);
  // Members of the group that outlived the leader (daemonized grandchildren are not ours:
  // pg_ctl start detaches postgres into its own session, which is what we want).
  DecodeStatus(status, &result);
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  if (timed_out) {
    return Fail(ErrorCode::kTimeout, "`" + CommandLine(cmd) + "` did not finish within " +
                                         std::to_string(timeout.count()) + " ms; output: " +
                                         Tail(result.output, 5));
  }
  return result;
}

Result<ProcessResult> RunChecked(const Command& cmd, std::chrono::milliseconds timeout) {
  auto r = Run(cmd, timeout);
  if (!r) return r;
  if (r->exit_code != 0) {
    std::string how = r->signal ? "was killed by signal " + std::to_string(r->signal)
                                : "exited with status " + std::to_string(r->exit_code);
    return Fail(ErrorCode::kFailed, "`" + CommandLine(cmd) + "` " + how + ": " + Tail(r->output, 8));
  }
  return r;
}

Result<ChildProcess> ChildProcess::Spawn(const Command& cmd) {
  auto started = StartChild(cmd, /*capture=*/false);
  if (!started) return Fail(started.error());
  if (started->in_write >= 0) {
    const std::string& data = *cmd.stdin_data;
    (void)!write(started->in_write, data.data(), data.size());
    close(started->in_write);
  }
  return ChildProcess(started->pid);
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_), status_(o.status_) {
  o.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    Kill();
    pid_ = o.pid_;
    status_ = o.status_;
    o.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() { Kill(); }

bool ChildProcess::Running() {
  if (pid_ < 0 || status_) return false;
  int st = 0;
  pid_t w = waitpid(pid_, &st, WNOHANG);
  if (w == pid_) {
    ProcessResult r;
    status_ = DecodeStatus(st, &r);
    return false;
  }
  return true;
}

void ChildProcess::Signal(int sig) {
  if (Running()) kill(pid_, sig);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (pid_ < 0) return std::nullopt;
  return status_;
}

int ChildProcess::Stop(std::chrono::milliseconds grace) {
  const pid_t pid = pid_;
  if (pid <= 0) return -1;
  if (Running()) {
    kill(pid, SIGCONT);  // a frozen child could not act on SIGTERM
    kill(pid, SIGTERM);
    Wait(grace);
  }
  Kill();  // SIGKILL to anything left in its group, and reap
  return status_.value_or(-1);
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;  // never kill(-1) or kill(0): that would hit every process
  if (status_) {           // already reaped: the pid may belong to someone else by now
    pid_ = -1;
    return;
  }
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  if (!status_) {
    int st = 0;
    waitpid(pid_, &st, 0);
    ProcessResult r;
    status_ = DecodeStatus(st, &r);
  }
  pid_ = -1;
}

sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return set;
}

}  // namespace pgwarden
