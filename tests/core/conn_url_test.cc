#include "cluster/conn_url.h"

#include <gtest/gtest.h>

namespace pgwarden::cluster {
namespace {

TEST(ParseConnUrl, PatroniForms) {
  EXPECT_EQ(ParseConnUrl("postgres://replicator@10.0.0.1:5432/postgres"),
            (ConnAddress{"10.0.0.1", 5432}));
  EXPECT_EQ(ParseConnUrl("postgresql://u:p@h1:5433/db?sslmode=require"), (ConnAddress{"h1", 5433}));
  EXPECT_EQ(ParseConnUrl("postgres://u@[::1]:6000/db"), (ConnAddress{"::1", 6000}));
  EXPECT_EQ(ParseConnUrl("postgres://127.0.0.1:5432"), (ConnAddress{"127.0.0.1", 5432}));
}

TEST(ParseConnUrl, MissingPortIsReportedNotGuessed) {
  auto a = ParseConnUrl("postgres://h/db");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->host, "h");
  EXPECT_FALSE(a->port.has_value());
}

TEST(ParseConnUrl, RejectsMalformed) {
  for (const char* bad : {"", "nonsense", "h1:5432", "postgres://", "postgres://:5432/db",
                          "postgres://h:0/db", "postgres://h:99999/db", "postgres://h:54a/db",
                          "postgres://[::1/db", "postgres://[::1]x/db", "postgres://h:/db"}) {
    EXPECT_FALSE(ParseConnUrl(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace pgwarden::cluster
