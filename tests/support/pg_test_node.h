// PostgreSQL 15 instances for tests: a directory owned by the right OS user, a free loopback
// port, fast throw-away settings, and a postmaster that is killed by PID when the test ends
// (even when it fails half-way).
//
// When the tests run as root, PostgreSQL's programs run as `postgres` (LocalPostgres does
// that): the node directory is chown'ed to that user, and TempDir's 0755 mode lets it in.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "postgres/local_postgres.h"

namespace pgwarden::testing {

// Superuser and replication credentials of every test node (passwords with a quote and a
// space, so that quoting bugs show up).
inline constexpr const char* kPgTestSuperuser = "postgres";
inline constexpr const char* kPgTestSuperuserPassword = "super secret'pw";
inline constexpr const char* kPgTestReplicationUser = "replicator";
inline constexpr const char* kPgTestReplicationPassword = "repl pass\\word";

// Options for a node whose files live under `node_dir`: data in node_dir/data, the socket
// in node_dir/sock, the server log in node_dir/postgres.log (outside the data directory, so a
// clone does not copy it), a free port on 127.0.0.1.
postgres::LocalPostgresOptions PgTestOptions(const std::string& node_dir);

// Settings that make a throw-away server fast: fsync off, small memory, short retry
// intervals, frequent status feedback. full_page_writes stays on (pg_rewind needs it).
std::map<std::string, std::string> PgFastTestParameters();

// pg_hba entries for the test users over 127.0.0.1 (replication and normal connections).
std::vector<postgres::HbaEntry> PgTestHba();

// Sends SIGQUIT (immediate shutdown) to the postmaster named by data_dir/postmaster.pid,
// then SIGKILL if it is still there after `grace`. Does nothing when none runs.
void KillPostmaster(const std::string& data_dir,
                    std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

// One PostgreSQL node in a test. Owns nothing on disk (the caller's TempDir does); its
// destructor kills the postmaster by PID.
class PgTestNode {
 public:
  // `root` must exist (a TempDir); the node lives in root/<name>.
  PgTestNode(const std::string& root, const std::string& name);
  ~PgTestNode();
  PgTestNode(const PgTestNode&) = delete;
  PgTestNode& operator=(const PgTestNode&) = delete;

  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  postgres::LocalPostgres& pg() { return *pg_; }
  const postgres::LocalPostgresOptions& options() const { return pg_->options(); }
  int port() const { return pg_->options().port; }

  // initdb (no fsync), the fast parameters, the test hba, start, and the replication role.
  Result<void> InitAndStart(std::chrono::seconds timeout = std::chrono::seconds(60));
  // Fast parameters + test hba into a data directory made by BaseBackup.
  Result<void> ApplyTestConfig();

  // How another node reaches this one over TCP: as the replication user (streaming,
  // pg_basebackup) or as the superuser with dbname=postgres (pg_rewind).
  std::string ReplicationConninfo(const std::string& application_name) const;
  std::string SuperuserConninfo() const;

  // Runs SQL as the superuser (10 s timeout); the rows of the last statement.
  Result<postgres::SqlResult> Sql(const std::string& sql);
  // The single value of a one-row, one-column query ("" for NULL); an error otherwise.
  Result<std::string> SqlValue(const std::string& sql);

 private:
  std::string name_;
  std::string dir_;
  std::unique_ptr<postgres::LocalPostgres> pg_;
};

}  // namespace pgwarden::testing
