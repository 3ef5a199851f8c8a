// Unit tests of the PostgreSQL controller's pure parts: conninfo quoting, the managed
// configuration files, pg_hba rendering, pg_controldata parsing, WAL names. No server.
#include <gtest/gtest.h>

#include <filesystem>

#include "postgres/config_files.h"
#include "postgres/conninfo.h"
#include "postgres/control_data.h"
#include "postgres/local_postgres.h"
#include "postgres/local_postgres_internal.h"
#include "support/temp_dir.h"

namespace pgwarden::postgres {
namespace {

// --- conninfo -------------------------------------------------------------------------------

TEST(Conninfo, PlainValuesStayBare) {
  EXPECT_EQ(BuildConninfo({{"host", "10.0.0.1"}, {"port", "5432"}, {"user", "replicator"}}),
            "host=10.0.0.1 port=5432 user=replicator");
}

TEST(Conninfo, QuotesSpacesQuotesBackslashesAndEmpty) {
  EXPECT_EQ(QuoteConninfoValue("a b"), "'a b'");
  EXPECT_EQ(QuoteConninfoValue("it's"), "'it\\'s'");
  EXPECT_EQ(QuoteConninfoValue("back\\slash"), "'back\\\\slash'");
  EXPECT_EQ(QuoteConninfoValue(""), "''");
  EXPECT_EQ(BuildConninfo({{"password", "p w'\\x"}}), "password='p w\\'\\\\x'");
}

TEST(Conninfo, ParseInvertsBuild) {
  ConninfoParams in = {{"host", "/tmp/sock dir"},
                       {"password", "it's a \\ secret"},
                       {"options", "-c statement_timeout=5000"},
                       {"user", ""}};
  ConninfoParams out;
  ASSERT_TRUE(ParseConninfo(BuildConninfo(in), &out));
  EXPECT_EQ(out, in);
}

TEST(Conninfo, ParseRejectsUnterminatedQuoteAndMissingEquals) {
  ConninfoParams out;
  EXPECT_FALSE(ParseConninfo("host='abc", &out));
  EXPECT_FALSE(ParseConninfo("host", &out));
  EXPECT_TRUE(ParseConninfo("  host = x  port=1 ", &out));
  EXPECT_EQ(out, (ConninfoParams{{"host", "x"}, {"port", "1"}}));
}

TEST(Conninfo, SourceConninfoCarriesCredentialsAndApplicationName) {
  ReplicationSource s{"127.0.0.1", 5433, "repl user", "pa'ss", "node 2", "", 3};
  EXPECT_EQ(BuildSourceConninfo(s),
            "host=127.0.0.1 port=5433 user='repl user' password='pa\\'ss' "
            "application_name='node 2' connect_timeout=3");
}

TEST(Conninfo, PasswordIsSplitOffAndRedacted) {
  auto split = internal::SplitPassword("host=h password='s e\\'cret' user=u");
  ASSERT_TRUE(split);
  EXPECT_EQ(split->password, "s e'cret");
  EXPECT_EQ(split->conninfo, "host=h user=u");
  EXPECT_EQ(internal::RedactConninfo("host=h password=x"), "host=h password=***");
  EXPECT_EQ(internal::SplitPassword("host='h").error().code, ErrorCode::kInvalidArgument);
  auto uri = internal::SplitPassword("postgresql://u:pw@h:5432/db");
  ASSERT_TRUE(uri);
  EXPECT_EQ(uri->conninfo, "postgresql://u:pw@h:5432/db");
  EXPECT_EQ(internal::RedactConninfo("postgresql://u:pw@h:5432/db"), "postgresql://***@h:5432/db");
}

TEST(LocalConninfo, UsesTheSocketDirSuperuserAndStatementTimeout) {
  LocalPostgresOptions o;
  o.data_dir = "/d";
  o.socket_dir = "/tmp/my sock";
  o.port = 6000;
  o.superuser = {"admin", "x y"};
  LocalPostgres pg(o);
  ConninfoParams params;
  ASSERT_TRUE(ParseConninfo(pg.LocalConninfo(std::chrono::milliseconds(1500)), &params));
  std::map<std::string, std::string> m(params.begin(), params.end());
  EXPECT_EQ(m["host"], "/tmp/my sock");
  EXPECT_EQ(m["port"], "6000");
  EXPECT_EQ(m["user"], "admin");
  EXPECT_EQ(m["password"], "x y");
  EXPECT_EQ(m["options"], "-c statement_timeout=1500");
  EXPECT_EQ(m["connect_timeout"], "2");
}

// --- postgresql.conf / managed file ------------------------------------------------------

TEST(ConfFile, QuotesSingleQuotesAndBackslashes) {
  EXPECT_EQ(QuoteConfValue("on"), "'on'");
  EXPECT_EQ(QuoteConfValue("it's"), "'it''s'");
  EXPECT_EQ(QuoteConfValue("a\\b"), "'a\\\\b'");
}

TEST(ConfFile, ConninfoInsideConfValueRoundTrips) {
  std::string conninfo = BuildConninfo({{"host", "h"}, {"password", "it's \\ odd"}});
  std::string text = RenderManagedConfig({{"primary_conninfo", conninfo}});
  EXPECT_NE(text.find("primary_conninfo = 'host=h password=''it\\\\''s \\\\\\\\ odd'''"),
            std::string::npos)
      << text;
  auto parsed = ParseManagedConfig(text);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->at("primary_conninfo"), conninfo);
}

TEST(ConfFile, ManagedFileRoundTripsSorted) {
  std::map<std::string, std::string> params = {
      {"shared_buffers", "16MB"}, {"fsync", "off"}, {"application_name", ""}};
  std::string text = RenderManagedConfig(params);
  EXPECT_LT(text.find("application_name"), text.find("fsync"));
  EXPECT_LT(text.find("fsync"), text.find("shared_buffers"));
  auto parsed = ParseManagedConfig(text);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, params);
}

TEST(ConfFile, ParseAcceptsBareValuesAndCommentsAndRejectsGarbage) {
  auto ok = ParseManagedConfig("# c\n\nport = 5433  # trailing\nwork_mem='4MB' # x\n");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->at("port"), "5433");
  EXPECT_EQ(ok->at("work_mem"), "4MB");
  auto bad = ParseManagedConfig("port = 1\nthis is not a setting\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(bad.error().message.find("line 2"), std::string::npos);
  EXPECT_FALSE(ParseManagedConfig("a = 'unterminated\n"));
}

TEST(ConfFile, IncludeIsAppendedOnce) {
  std::string conf = "max_connections = 100\n#include 'postgresql.pgwarden.conf'\n";
  std::string once = WithManagedInclude(conf);
  EXPECT_NE(once, conf);
  EXPECT_EQ(once.rfind(std::string(kIncludeLine) + "\n"), once.size() - kIncludeLine.size() - 1);
  EXPECT_EQ(WithManagedInclude(once), once);  // idempotent
  // An include written by hand (other quoting) counts too; include_dir does not.
  EXPECT_EQ(WithManagedInclude("include = postgresql.pgwarden.conf\n"),
            "include = postgresql.pgwarden.conf\n");
  EXPECT_NE(WithManagedInclude("include_dir 'postgresql.pgwarden.conf'\n"),
            "include_dir 'postgresql.pgwarden.conf'\n");
  // No trailing newline: the include still lands on its own line.
  EXPECT_NE(WithManagedInclude("port = 1").find("port = 1\n"), std::string::npos);
}

TEST(ConfFile, ChangedParametersListsAddedChangedRemoved) {
  EXPECT_EQ(ChangedParameters({{"a", "1"}, {"b", "2"}, {"c", "3"}},
                              {{"a", "1"}, {"b", "20"}, {"d", "4"}}),
            (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_TRUE(ChangedParameters({{"a", "1"}}, {{"a", "1"}}).empty());
}

TEST(ConfFile, AtomicWriteReplacesContent) {
  testing::TempDir dir("pgunit");
  std::string path = dir.Sub("f.conf");
  ASSERT_TRUE(WriteFileAtomically(path, "one\n", 0600));
  ASSERT_TRUE(WriteFileAtomically(path, "two\n", 0600));
  EXPECT_EQ(ReadFileToString(path).value(), "two\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".pgwarden-tmp"));
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(ReadFileToString(dir.Sub("missing")).error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(WriteFileAtomically("/nonexistent-dir/x", "y", 0600));
}

// --- pg_hba --------------------------------------------------------------------------------

TEST(Hba, SuperuserLocalLineComesFirst) {
  std::string text =
      RenderHba("postgres", "scram-sha-256",
                {{"host", "replication", "replicator", "127.0.0.1/32", "scram-sha-256", ""},
                 {"local", "all", "all", "", "peer", ""},
                 {"hostssl", "my db", "a,b", "10.0.0.0/8", "cert", "clientcert=verify-full"}});
  size_t own = text.find("local all postgres scram-sha-256\n");
  ASSERT_NE(own, std::string::npos) << text;
  size_t repl = text.find("host replication replicator 127.0.0.1/32 scram-sha-256\n");
  ASSERT_NE(repl, std::string::npos) << text;
  EXPECT_LT(own, repl);
  EXPECT_NE(text.find("local all all peer\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hostssl \"my db\" \"a,b\" 10.0.0.0/8 cert clientcert=verify-full\n"),
            std::string::npos)
      << text;
}

TEST(Hba, QuotesOddNames) {
  EXPECT_EQ(QuoteHbaField("plain"), "plain");
  EXPECT_EQ(QuoteHbaField("with \"quote\""), "\"with \"\"quote\"\"\"");
  EXPECT_EQ(QuoteHbaField(""), "\"\"");
}

// --- pg_controldata ------------------------------------------------------------------------

constexpr const char* kControlData = R"(pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7441466349577113428
Database cluster state:               shut down in recovery
pg_control last modified:             Thu Nov 26 01:23:35 2026
Latest checkpoint location:           0/3000060
Latest checkpoint's REDO location:    0/3000028
Latest checkpoint's REDO WAL file:    000000020000000000000003
Latest checkpoint's TimeLineID:       2
Latest checkpoint's PrevTimeLineID:   2
Minimum recovery ending location:     0/30000D8
Min recovery ending loc's timeline:   2
wal_log_hints setting:                off
Data page checksum version:           1
)";

TEST(ControlDataParse, ReadsTheFieldsTheAgentNeeds) {
  auto cd = ParseControlData(kControlData);
  ASSERT_TRUE(cd) << cd.error().ToString();
  EXPECT_EQ(cd->system_identifier, 7441466349577113428ull);
  EXPECT_EQ(cd->cluster_state, "shut down in recovery");
  EXPECT_TRUE(cd->CleanlyShutDown());
  EXPECT_EQ(cd->checkpoint_lsn, Lsn(0x3000060));
  EXPECT_EQ(cd->redo_lsn, Lsn(0x3000028));
  EXPECT_EQ(cd->checkpoint_timeline, Timeline(2));
  EXPECT_EQ(cd->min_recovery_end_lsn, Lsn(0x30000D8));
  EXPECT_EQ(cd->min_recovery_end_timeline, Timeline(2));
  EXPECT_EQ(cd->data_checksum_version, 1u);
  EXPECT_FALSE(cd->wal_log_hints);
  EXPECT_EQ(cd->fields.at("Catalog version number"), "202209061");
}

TEST(ControlDataParse, InProductionIsNotACleanShutdown) {
  std::string text = kControlData;
  text.replace(text.find("shut down in recovery"), 21, "in production");
  auto cd = ParseControlData(text);
  ASSERT_TRUE(cd);
  EXPECT_FALSE(cd->CleanlyShutDown());
}

TEST(ControlDataParse, MissingOrMalformedFieldsAreCorrupt) {
  auto empty = ParseControlData("pg_controldata: fatal: could not open file\n");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(empty.error().message.find("Database system identifier"), std::string::npos);

  std::string text = kControlData;
  text.replace(text.find("0/3000060"), 9, "garbage");
  auto bad = ParseControlData(text);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("Latest checkpoint location"), std::string::npos);
}

// --- WAL names, LSNs, pg_rewind output ----------------------------------------------------

TEST(WalFileName, TimelineIsTheFirstEightHexDigits) {
  EXPECT_EQ(TimelineFromWalFileName("000000020000000000000003"), Timeline(2));
  EXPECT_EQ(TimelineFromWalFileName("0000001A00000001000000FF"), Timeline(26));
  EXPECT_FALSE(TimelineFromWalFileName("00000002"));
  EXPECT_FALSE(TimelineFromWalFileName("00000000000000000000000X"));
  EXPECT_FALSE(TimelineFromWalFileName("000000000000000000000003"));  // timeline 0
}

TEST(Lsns, StatusPositionIsTheFurthestKnown) {
  PgStatus primary;
  primary.in_recovery = false;
  primary.current_wal_lsn = Lsn(100);
  EXPECT_EQ(primary.Position(), Lsn(100));
  PgStatus replica;
  replica.in_recovery = true;
  replica.received_lsn = Lsn(0x3000000);
  replica.replayed_lsn = Lsn(0x3000100);  // replayed from the archive beyond what streamed
  EXPECT_EQ(replica.Position(), Lsn(0x3000100));
  replica.replayed_lsn.reset();
  EXPECT_EQ(replica.Position(), Lsn(0x3000000));
  EXPECT_EQ(Lsn(0x3000100).BytesSince(Lsn(0x3000000)), 0x100u);
}

TEST(RewindOutput, Classified) {
  EXPECT_EQ(ClassifyRewindOutput(true,
                                 "pg_rewind: source and target cluster are on the same "
                                 "timeline\npg_rewind: no rewind required\n")
                .outcome,
            RewindResult::Outcome::kNotNeeded);
  EXPECT_EQ(ClassifyRewindOutput(true,
                                 "pg_rewind: servers diverged at WAL location 0/3000000 on "
                                 "timeline 1\npg_rewind: Done!\n")
                .outcome,
            RewindResult::Outcome::kDone);
  auto impossible = ClassifyRewindOutput(
      false, "pg_rewind: error: could not find previous WAL record at 0/2000060\n");
  EXPECT_EQ(impossible.outcome, RewindResult::Outcome::kImpossible);
  EXPECT_NE(impossible.detail.find("could not find previous WAL record"), std::string::npos);
}

TEST(LastLinesTest, KeepsTheTail) {
  EXPECT_EQ(LastLines("a\n\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(LastLines("", 3), "");
}

// --- Argument checks that need no server ------------------------------------------------

TEST(LocalPostgresArgs, RejectsBadSlotNamesAndParameters) {
  testing::TempDir dir("pgunit");
  LocalPostgresOptions o;
  o.data_dir = dir.Sub("data");
  LocalPostgres pg(o);
  EXPECT_EQ(pg.CreatePhysicalSlot("Bad-Name").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(pg.CreatePhysicalSlot(std::string(64, 'a')).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(pg.WriteManagedConfig({{"bad name", "1"}}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(pg.WriteManagedConfig({{"work_mem", "1\n2"}}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(pg.ConfigureStandby({"host='x", "", "latest"}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(pg.ConfigureStandby({"host=x", "Bad", "latest"}).error().code,
            ErrorCode::kInvalidArgument);
  auto hba = pg.WriteHba({});
  ASSERT_FALSE(hba);
  EXPECT_EQ(hba.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(hba.error().message.find("password"), std::string::npos);
  EXPECT_FALSE(pg.IsRunning());
  auto status = pg.Status();
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace pgwarden::postgres
