#include "common/result.h"
#include "common/types.h"

#include <gtest/gtest.h>

namespace pgwarden {
namespace {

TEST(Lsn, ParsesAndPrintsPostgresFormat) {
  auto lsn = Lsn::Parse("16/B374D848");
  ASSERT_TRUE(lsn.has_value());
  EXPECT_EQ(lsn->value(), (uint64_t{0x16} << 32) | 0xB374D848u);
  EXPECT_EQ(lsn->ToString(), "16/B374D848");
  EXPECT_EQ(Lsn::Parse("0/0")->value(), 0u);
}

TEST(Lsn, RejectsMalformedText) {
  for (const char* bad : {"", "/", "1/", "/1", "12", "g/1", "1/2/3", "123456789/0", "1 /2"}) {
    EXPECT_FALSE(Lsn::Parse(bad).has_value()) << bad;
  }
}

TEST(Lsn, BytesSinceIsNeverNegative) {
  EXPECT_EQ(Lsn(100).BytesSince(Lsn(40)), 60u);
  EXPECT_EQ(Lsn(40).BytesSince(Lsn(100)), 0u);
}

TEST(Result, ErrorPrintsCodeAndMessage) {
  Error e{ErrorCode::kConflict, "leader held by n2"};
  EXPECT_EQ(e.ToString(), "conflict: leader held by n2");
}

}  // namespace
}  // namespace pgwarden
