// Runs the real `pgwarden demo` end to end (etcd, three agents with PostgreSQL 15, the
// application, a switchover, a host crash and a host freeze) as a child process with a bounded
// time, and checks what it reports and that it leaves nothing running.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/process.h"
#include "launch/host.h"

namespace pgwarden {
namespace {

// /proc files of processes that may exit mid-read: see launch::ReadWholeFile.
std::string ReadFile(const std::string& path) { return launch::ReadWholeFile(path); }

// Processes (other than us) whose command line mentions `needle`.
std::vector<pid_t> ProcessesMentioning(const std::string& needle) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    std::string stat = ReadFile(entry.path().string() + "/stat");
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') continue;
    if (cmdline.find(needle) != std::string::npos) out.push_back(pid);
  }
  return out;
}

struct EventLine {
  double outage = -1;
  int failed = -1;
  int lost = -1;
  double healed = -1;
};

// Parses "  <name>  outage 1.23 s  failed attempts 3  acknowledged rows lost 0  streaming again
// after 4.56 s" (no std::regex: GCC 12 warns inside it under sanitizers).
std::optional<EventLine> ParseEvent(const std::string& output, const std::string& name) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  " + name + " ", 0) != 0) continue;
    const auto at = line.find("outage ");
    if (at == std::string::npos) continue;
    EventLine e;
    if (std::sscanf(line.c_str() + at,
                    "outage %lf s  failed attempts %d  acknowledged rows lost %d  streaming again "
                    "after %lf s",
                    &e.outage, &e.failed, &e.lost, &e.healed) == 4) {
      return e;
    }
  }
  return std::nullopt;
}

// The directory the demo printed ("directory: /tmp/pgwarden-demo-XXXXXX ...").
std::string DemoDir(const std::string& output) {
  const auto at = output.find("directory: ");
  if (at == std::string::npos) return "";
  const auto start = at + 11;
  const auto end = output.find_first_of(" \n", start);
  return output.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// "    frozen old primary n1 (6.00 s): writes it acknowledged after the promotion 0 (...)":
// the count, or -1 when the line is missing.
int StaleAcks(const std::string& output) {
  const std::string key = "writes it acknowledged after the promotion ";
  const auto at = output.find(key);
  if (at == std::string::npos || output.rfind("    frozen old primary ", at) == std::string::npos) {
    return -1;
  }
  int n = -1;
  if (std::sscanf(output.c_str() + at + key.size(), "%d", &n) != 1) return -1;
  return n;
}

TEST(Demo, SwitchoverCrashAndFreezeLoseNothingAndLeaveNothingRunning) {
  const std::string out_path = (std::filesystem::temp_directory_path() /
                                ("pgwarden-demo-test-" + std::to_string(::getpid()) + ".out"))
                                   .string();
  Command cmd;
  cmd.argv = {PGWARDEN_BINARY, "demo", "--members", "3", "--events", "switchover,crash,freeze"};
  cmd.output_file = out_path;
  auto child = ChildProcess::Spawn(cmd);
  ASSERT_TRUE(child) << child.error().ToString();
  auto status = child->Wait(std::chrono::seconds(150));
  if (!status) {
    // Ctrl+C equivalent: the demo must still clean up after itself.
    child->Signal(SIGTERM);
    status = child->Wait(std::chrono::seconds(20));
  }
  const std::string output = ReadFile(out_path);
  std::filesystem::remove(out_path);

  const std::string dir = DemoDir(output);
  ASSERT_FALSE(dir.empty()) << output;
  ASSERT_GT(dir.size(), 10u);

  // Nothing it started may survive it (agents, postmasters and their children, etcd, proxy).
  std::vector<pid_t> left;
  for (int i = 0; i < 30; ++i) {
    left = ProcessesMentioning(dir);
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (pid_t p : left) ::kill(p, SIGKILL);  // clean up for the next test, then fail
  EXPECT_TRUE(left.empty()) << left.size() << " processes still mention " << dir;
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir << " was not removed";

  ASSERT_TRUE(status.has_value()) << "the demo did not finish in time:\n" << output;
  EXPECT_EQ(*status, 0) << output;
  EXPECT_NE(output.find("3 healthy members"), std::string::npos) << output;
  EXPECT_NE(output.find("Logged a value, overall count:"), std::string::npos) << output;
  EXPECT_NE(output.find("| Member"), std::string::npos) << "no cluster table:\n" << output;

  for (const std::string name : {"switchover", "crash", "freeze"}) {
    auto e = ParseEvent(output, name);
    ASSERT_TRUE(e) << "no summary line for " << name << ":\n" << output;
    EXPECT_EQ(e->lost, 0) << name << "\n" << output;
    EXPECT_GT(e->outage, 0.0) << name;
    EXPECT_LT(e->outage, 20.0) << name << "\n" << output;
    EXPECT_GT(e->healed, 0.0) << name;
    EXPECT_LT(e->healed, 60.0) << name << "\n" << output;
  }
  EXPECT_NE(output.find(" 0 lost"), std::string::npos) << output;
  // The frozen old primary, thawed after the new promotion, acknowledged nothing.
  EXPECT_EQ(StaleAcks(output), 0) << output;
  EXPECT_NE(output.find("host freeze of the primary"), std::string::npos) << output;
  EXPECT_NE(output.find("to rejoin as a replica and stream: done"), std::string::npos) << output;
}

}  // namespace
}  // namespace pgwarden
