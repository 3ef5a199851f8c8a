#include "common/process.h"

#include <signal.h>
#include <unistd.h>

#include <sys/wait.h>

#include <fstream>
#include <thread>
#include <sstream>

#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace pgwarden {
namespace {

using namespace std::chrono_literals;

TEST(Process, CapturesOutputAndExitCode) {
  auto r = pgwarden::Run({.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}}, 5s);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->output.find("out"), std::string::npos);
  EXPECT_NE(r->output.find("err"), std::string::npos);
}

TEST(Process, RunCheckedReportsCommandAndStatus) {
  auto r = RunChecked({.argv = {"sh", "-c", "echo boom; exit 7"}}, 5s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kFailed);
  EXPECT_NE(r.error().message.find("status 7"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("boom"), std::string::npos) << r.error().message;
}

TEST(Process, TimeoutKillsTheWholeGroupInTime) {
  auto start = std::chrono::steady_clock::now();
  // The child ignores SIGTERM and has a grandchild: both must be gone.
  auto r = pgwarden::Run({.argv = {"sh", "-c", "trap '' TERM; sleep 30 & sleep 30"}}, 300ms);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_LT(took, 4s);
}

TEST(Process, FeedsStdin) {
  auto r = RunChecked({.argv = {"cat"}, .stdin_data = "hello\n"}, 5s);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->output, "hello\n");
}

TEST(Process, MissingProgramIsAClearError) {
  auto r = pgwarden::Run({.argv = {"/nonexistent/pg_ctl", "start"}}, 5s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kFailed);
  EXPECT_NE(r.error().message.find("/nonexistent/pg_ctl"), std::string::npos);
}

TEST(Process, RunsAsAnotherUserWhenRoot) {
  if (!RunningAsRoot()) GTEST_SKIP() << "needs root";
  auto user = LookupOsUser("postgres");
  if (!user) GTEST_SKIP() << "no postgres user";
  auto r = RunChecked({.argv = {"id", "-u"}, .run_as_user = "postgres"}, 5s);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(std::stoul(r->output), user->uid);
}

TEST(Process, UnknownUserIsNotFound) {
  EXPECT_EQ(LookupOsUser("no-such-user-pgwarden").error().code, ErrorCode::kNotFound);
}

TEST(ChildProcess, SpawnsWritesToFileAndIsKilledByPid) {
  testing::TempDir dir("proc");
  auto child = ChildProcess::Spawn(
      {.argv = {"sh", "-c", "echo started; exec sleep 30"}, .output_file = dir.Sub("log")});
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  pid_t pid = child->pid();
  EXPECT_TRUE(child->Running());
  for (int i = 0; i < 200; ++i) {
    std::ifstream in(dir.Sub("log"));
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str().find("started") != std::string::npos) break;
    usleep(10000);
  }
  child->Stop(1000ms);
  EXPECT_FALSE(child->Running());
  EXPECT_NE(kill(pid, 0), 0);  // gone
}

TEST(ChildProcess, DestructorKillsAFrozenChild) {
  pid_t pid;
  {
    auto child = ChildProcess::Spawn({.argv = {"sleep", "30"}});
    ASSERT_TRUE(child.has_value());
    pid = child->pid();
    child->Signal(SIGSTOP);
  }
  EXPECT_NE(kill(pid, 0), 0);
}

TEST(ChildProcess, DiesWithTheThreadThatStartedIt) {
  // A child started from a thread that exits gets SIGKILL: what keeps a crashed test's
  // servers from running on.
  std::optional<ChildProcess> child;
  std::thread([&] {
    auto spawned = ChildProcess::Spawn({.argv = {"sleep", "30"}, .die_with_parent = true});
    ASSERT_TRUE(spawned.has_value());
    child.emplace(std::move(*spawned));
  }).join();
  ASSERT_TRUE(child.has_value());
  auto status = child->Wait(std::chrono::seconds(2));
  EXPECT_TRUE(status.has_value()) << "the child outlived the thread that started it";
}

}  // namespace
}  // namespace pgwarden
