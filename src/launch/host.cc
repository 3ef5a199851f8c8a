#include "launch/host.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace pgwarden::launch {

std::string ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  for (int i = 0; i < 4096; ++i) {  // at most 16 MiB
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

namespace {

// The state letter and the parent of a process or thread from its stat file ("" when gone).
// The command name may hold spaces and parentheses: parse after the last ')'.
struct Stat {
  char state = 0;
  pid_t ppid = 0;
};
std::optional<Stat> ReadStat(const std::string& stat_path) {
  const std::string s = ReadWholeFile(stat_path);
  const auto paren = s.rfind(')');
  if (paren == std::string::npos || paren + 2 >= s.size()) return std::nullopt;
  std::istringstream in(s.substr(paren + 2));
  Stat st;
  long ppid = 0;
  if (!(in >> st.state >> ppid)) return std::nullopt;
  st.ppid = static_cast<pid_t>(ppid);
  return st;
}

bool Stopped(pid_t pid) {
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(tasks, ec)) {
    auto st = ReadStat((entry.path() / "stat").string());
    if (!st) continue;  // the thread ended
    if (st->state != 'T' && st->state != 't' && st->state != 'Z') return false;
    ++seen;
  }
  return seen > 0 || ec;  // a process that is gone counts as stopped
}

void SignalTree(pid_t root, int sig, std::vector<pid_t>* signalled) {
  if (root <= 1) return;
  if (auto g = ForeignGroup(root)) ::kill(-*g, sig);
  for (pid_t p : ProcessTree(root)) {
    if (p == ::getpid()) continue;
    ::kill(p, sig);
    if (signalled && std::find(signalled->begin(), signalled->end(), p) == signalled->end()) {
      signalled->push_back(p);
    }
  }
}

}  // namespace

std::string ReadTail(const std::string& path, std::size_t bytes) {
  std::string s = ReadWholeFile(path);
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

std::optional<pid_t> ReadPostmasterPid(const std::string& data_dir) {
  std::ifstream in(data_dir + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 1) return std::nullopt;
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

std::optional<pid_t> ForeignGroup(pid_t pid) {
  const pid_t g = ::getpgid(pid);
  if (g <= 1 || g == ::getpgrp()) return std::nullopt;
  return g;
}

void KillPostmaster(const std::string& data_dir) {
  const auto pid = ReadPostmasterPid(data_dir);
  if (!pid) return;
  if (auto g = ForeignGroup(*pid)) {
    ::kill(-*g, SIGKILL);
    ::kill(-*g, SIGCONT);
  }
  ::kill(*pid, SIGKILL);
}

void KillAgent(ChildProcess& agent) {
  if (agent.pid() <= 0) return;
  // What the agent started (its watchdog, which has its own process group and would otherwise
  // outlive it until its deadline; a pg_ctl in flight) dies with it, as on a crashed host.
  const std::vector<pid_t> tree = ProcessTree(agent.pid());
  if (auto g = ForeignGroup(agent.pid())) ::kill(-*g, SIGCONT);  // a frozen one dies at once
  agent.Kill();
  for (pid_t pid : tree) {
    if (pid == agent.pid()) continue;
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGKILL);
  }
}

std::vector<pid_t> ProcessTree(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  bool root_alive = false;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    auto st = ReadStat(entry.path().string() + "/stat");
    if (!st) continue;
    if (pid == root) root_alive = true;
    children.emplace(st->ppid, pid);
  }
  std::vector<pid_t> out;
  if (!root_alive) return out;
  out.push_back(root);
  for (size_t i = 0; i < out.size(); ++i) {
    auto [from, to] = children.equal_range(out[i]);
    for (auto it = from; it != to; ++it) out.push_back(it->second);
  }
  return out;
}

bool WaitStopped(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (std::all_of(pids.begin(), pids.end(), Stopped)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

FrozenHost FreezeHost(pid_t agent, const std::string& data_dir) {
  FrozenHost host;
  host.agent = agent;
  host.data_dir = data_dir;
  // Agent first, so that it cannot react to its PostgreSQL stopping; then the postmaster, so
  // that it forks no backend meanwhile. A few passes catch what was forked in between.
  for (int pass = 0; pass < 5; ++pass) {
    const size_t before = host.pids.size();
    SignalTree(agent, SIGSTOP, &host.pids);
    if (auto pm = ReadPostmasterPid(data_dir)) SignalTree(*pm, SIGSTOP, &host.pids);
    host.all_stopped = WaitStopped(host.pids, std::chrono::seconds(1));
    if (pass > 0 && host.pids.size() == before) break;
  }
  return host;
}

void ThawHost(const FrozenHost& host) {
  if (auto pm = ReadPostmasterPid(host.data_dir)) SignalTree(*pm, SIGCONT, nullptr);
  SignalTree(host.agent, SIGCONT, nullptr);
  for (pid_t p : host.pids) {
    if (p > 1 && p != ::getpid()) ::kill(p, SIGCONT);
  }
}

}  // namespace pgwarden::launch
