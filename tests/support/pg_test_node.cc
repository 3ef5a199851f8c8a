#include "support/pg_test_node.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/process.h"
#include "postgres/conninfo.h"
#include "support/ports.h"

namespace pgwarden::testing {

namespace {

bool ProcessAlive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  size_t close = text.rfind(')');
  if (close != std::string::npos && close + 2 < text.size()) {
    char state = text[close + 2];
    if (state == 'Z' || state == 'X') return false;
  }
  return true;
}

}  // namespace

postgres::LocalPostgresOptions PgTestOptions(const std::string& node_dir) {
  postgres::LocalPostgresOptions o;
  o.data_dir = node_dir + "/data";
  o.socket_dir = node_dir + "/sock";
  o.log_file = node_dir + "/postgres.log";
  o.listen_addresses = "127.0.0.1";
  o.port = FreeLoopbackPort();
  o.superuser = {kPgTestSuperuser, kPgTestSuperuserPassword};
  o.replication = {kPgTestReplicationUser, kPgTestReplicationPassword};
  o.sync_to_disk = false;  // throw-away clusters; removing fsynced files is slow here
  return o;
}

std::map<std::string, std::string> PgFastTestParameters() {
  return {
      {"fsync", "off"},
      {"shared_buffers", "16MB"},
      {"max_connections", "30"},
      {"max_wal_senders", "10"},
      {"max_replication_slots", "10"},
      {"wal_keep_size", "128MB"},
      {"min_wal_size", "32MB"},
      {"max_wal_size", "256MB"},
      {"autovacuum", "off"},
      {"hot_standby", "on"},
      {"wal_receiver_status_interval", "1s"},
      {"wal_retrieve_retry_interval", "200ms"},
      {"log_line_prefix", "%m [%p] "},
  };
}

std::vector<postgres::HbaEntry> PgTestHba() {
  return {
      {"host", "replication", kPgTestReplicationUser, "127.0.0.1/32", "scram-sha-256", ""},
      {"host", "all", "all", "127.0.0.1/32", "scram-sha-256", ""},
  };
}

void KillPostmaster(const std::string& data_dir, std::chrono::milliseconds grace) {
  std::ifstream pidfile(data_dir + "/postmaster.pid");
  long pid = 0;
  if (!(pidfile >> pid) || pid <= 1) return;
  if (!ProcessAlive(static_cast<pid_t>(pid))) return;
  ::kill(static_cast<pid_t>(pid), SIGQUIT);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!ProcessAlive(static_cast<pid_t>(pid))) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(static_cast<pid_t>(pid), SIGKILL);
}

PgTestNode::PgTestNode(const std::string& root, const std::string& name)
    : name_(name), dir_(root + "/" + name) {
  std::filesystem::create_directories(dir_);
  ::chmod(dir_.c_str(), 0755);
  auto options = PgTestOptions(dir_);
  if (RunningAsRoot()) {
    // pg_ctl (run as postgres) creates the server log in this directory.
    if (auto user = LookupOsUser(options.os_user)) {
      if (::chown(dir_.c_str(), user->uid, user->gid) != 0) {
        ADD_FAILURE() << "cannot chown " << dir_ << " to " << options.os_user;
      }
    } else {
      ADD_FAILURE() << "no OS user " << options.os_user << ": " << user.error().ToString();
    }
  }
  pg_ = std::make_unique<postgres::LocalPostgres>(std::move(options));
}

PgTestNode::~PgTestNode() { KillPostmaster(pg_->options().data_dir); }

Result<void> PgTestNode::ApplyTestConfig() {
  auto config = pg_->WriteManagedConfig(PgFastTestParameters());
  if (!config) return Fail(config.error());
  auto hba = pg_->WriteHba(PgTestHba());
  if (!hba) return Fail(hba.error());
  return Ok();
}

Result<void> PgTestNode::InitAndStart(std::chrono::seconds timeout) {
  postgres::InitDbOptions init;
  if (auto r = pg_->InitDb(init); !r) return r;
  if (auto r = ApplyTestConfig(); !r) return r;
  if (auto r = pg_->Start(timeout); !r) return r;
  return pg_->EnsureRole({kPgTestReplicationUser, std::string(kPgTestReplicationPassword),
                          /*superuser=*/false, /*replication=*/true, /*login=*/true},
                         std::chrono::seconds(10));
}

std::string PgTestNode::ReplicationConninfo(const std::string& application_name) const {
  return postgres::BuildSourceConninfo({"127.0.0.1", port(), kPgTestReplicationUser,
                                        kPgTestReplicationPassword, application_name, "", 5});
}

std::string PgTestNode::SuperuserConninfo() const {
  return postgres::BuildSourceConninfo(
      {"127.0.0.1", port(), kPgTestSuperuser, kPgTestSuperuserPassword, "", "postgres", 5});
}

Result<postgres::SqlResult> PgTestNode::Sql(const std::string& sql) {
  return pg_->ExecuteSql(sql, {}, std::chrono::seconds(10));
}

Result<std::string> PgTestNode::SqlValue(const std::string& sql) {
  auto r = Sql(sql);
  if (!r) return Fail(r.error());
  if (r->rows.size() != 1 || r->rows[0].size() != 1) {
    return Fail(ErrorCode::kCorrupt, "expected one value from: " + sql + " (got " +
                                         std::to_string(r->rows.size()) + " rows)");
  }
  return r->rows[0][0].value_or("");
}

}  // namespace pgwarden::testing
