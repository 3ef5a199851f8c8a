// Signals for one member's "host" processes, as the demo and the fault tests simulate them:
// the agent's process tree (the agent and whatever it runs at that moment: pg_ctl, pg_rewind,
// a watchdog) and the postmaster's (from <data_dir>/postmaster.pid: pg_ctl detaches it from
// the agent, so it is its own tree, with the backends and auxiliary processes below it).
//
// Safety: nothing here ever signals the calling process or its process group; PIDs come from
// our own ChildProcess handles and postmaster.pid files in directories we created.
// Thread-safety: free functions, callable from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/process.h"

namespace pgwarden::launch {

// A whole file, "" when it cannot be opened; what was read before an error otherwise. Safe on
// /proc files of a process that exits meanwhile (reading those fails with ESRCH, which an
// istreambuf_iterator turns into an uncaught exception).
std::string ReadWholeFile(const std::string& path);

// The last `bytes` of a file ("" when it cannot be read), for error messages.
std::string ReadTail(const std::string& path, std::size_t bytes);

// The live postmaster of a data directory, from its postmaster.pid.
std::optional<pid_t> ReadPostmasterPid(const std::string& data_dir);

// The process group of `pid`, unless it is ours (never signal ourselves) or init's.
std::optional<pid_t> ForeignGroup(pid_t pid);

// SIGKILL of a data directory's postmaster and its process group (its children), then
// SIGCONT to that group so that a frozen one dies at once.
void KillPostmaster(const std::string& data_dir);

// SIGCONT and SIGKILL to an agent's process group and to every process it started (its
// watchdog included: a crashed host), then reaps it. No-op without a process.
void KillAgent(ChildProcess& agent);

// `root` and all its descendants (from /proc), root first; empty when root is gone.
std::vector<pid_t> ProcessTree(pid_t root);

// Waits until every thread of every pid is stopped (state T in /proc) or gone; false at the
// timeout. SIGSTOP is delivered asynchronously, thread by thread.
bool WaitStopped(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout);

// A frozen host: what FreezeHost stopped, for ThawHost.
struct FrozenHost {
  pid_t agent = -1;
  std::string data_dir;
  std::vector<pid_t> pids;   // every process stopped, agent's tree then postmaster's
  bool all_stopped = false;  // every thread reached the stopped state in time
};

// SIGSTOP of the host's processes: the agent's process group and tree, then the postmaster's
// group and tree, repeated until a pass finds no process that is not stopped yet (a process
// forked meanwhile is caught by the next pass). `agent` <= 0: PostgreSQL only.
FrozenHost FreezeHost(pid_t agent, const std::string& data_dir);
// SIGCONT to everything FreezeHost stopped (and to both process groups).
void ThawHost(const FrozenHost& host);

}  // namespace pgwarden::launch
