// `pause --wait` / `resume --wait` (cli/pause_wait.h): a member whose REST API cannot be reached
// is reported apart, never counted as having recognized the change.
#include "cli/pause_wait.h"

#include <gtest/gtest.h>

namespace pgwarden::cli {
namespace {

TEST(PauseWait, UnreachableMemberIsNotCountedAsResumed) {
  std::vector<PauseAnswer> answers = {
      {"n1", R"({"state":"running"})", ""},
      {"n2", R"({"state":"running","pause":false})", ""},
      {"n3", std::nullopt, "connection refused"},
  };
  PauseProgress p = JudgePauseAnswers(answers, /*pause=*/false);
  EXPECT_EQ(p.confirmed, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(p.unreachable, (std::vector<std::string>{"n3 (connection refused)"}));
  EXPECT_TRUE(p.ReachableDone());
  std::string message = PauseWaitMessage(p, false, false, 60);
  EXPECT_EQ(message.find("Success"), std::string::npos) << message;
  EXPECT_NE(message.find("Cluster management is resumed on n1, n2"), std::string::npos);
  EXPECT_NE(message.find("Could not reach n3 (connection refused): not confirmed"),
            std::string::npos)
      << message;
}

TEST(PauseWait, StillPausedMemberIsPendingAndNamedOnTimeout) {
  std::vector<PauseAnswer> answers = {
      {"n1", R"({"pause":true})", ""},
      {"n2", R"({})", ""},
      {"n3", "<html>", ""},
  };
  PauseProgress p = JudgePauseAnswers(answers, /*pause=*/false);
  EXPECT_EQ(p.pending, (std::vector<std::string>{"n1"}));
  EXPECT_EQ(p.confirmed, (std::vector<std::string>{"n2"}));
  ASSERT_EQ(p.unreachable.size(), 1u);
  EXPECT_FALSE(p.ReachableDone());
  std::string message = PauseWaitMessage(p, false, true, 30);
  EXPECT_NE(message.find("Timed out after 30 s: not yet resumed on n1"), std::string::npos)
      << message;

  PauseProgress paused = JudgePauseAnswers(answers, /*pause=*/true);
  EXPECT_EQ(paused.confirmed, (std::vector<std::string>{"n1"}));
  EXPECT_EQ(paused.pending, (std::vector<std::string>{"n2"}));
}

TEST(PauseWait, EveryoneConfirmedIsSuccess) {
  PauseProgress p = JudgePauseAnswers({{"n1", R"({"pause":true})", ""}}, true);
  EXPECT_EQ(PauseWaitMessage(p, true, false, 60), "Success: cluster management is paused\n");
}

}  // namespace
}  // namespace pgwarden::cli
