// Integration tests of LocalPostgres against real PostgreSQL 15 servers on 127.0.0.1 (free
// ports, temporary directories). Works as root (programs run as `postgres`) and as an
// ordinary user. Every postmaster is killed by PID when its PgTestNode goes away.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <thread>

#include "common/process.h"
#include "postgres/config_files.h"
#include "postgres/conninfo.h"
#include "postgres/libpq_connection.h"
#include "support/pg_test_node.h"
#include "support/ports.h"
#include "support/temp_dir.h"

namespace pgwarden::postgres {
namespace {

using pgwarden::testing::PgTestNode;
using pgwarden::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

#define ASSERT_OK(expr)                                        \
  do {                                                         \
    const auto& _r = (expr);                                   \
    ASSERT_TRUE(_r) << #expr << ": " << _r.error().ToString(); \
  } while (0)

// Polls `pred` every 50 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& pred, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
}

int64_t Count(PgTestNode& node, const std::string& where) {
  auto v = node.SqlValue("SELECT count(*) FROM t WHERE " + where);
  return v ? std::stoll(*v) : -1;
}

template <typename F>
milliseconds Elapsed(F&& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
}

TEST(PostgresIntegration, BadBinDirIsAClearError) {
  TempDir dir("pg-badbin");
  LocalPostgresOptions o = pgwarden::testing::PgTestOptions(dir.path());
  o.bin_dir = dir.Sub("no-such-bin");
  LocalPostgres pg(o);
  auto init = pg.InitDb({});
  ASSERT_FALSE(init);
  EXPECT_EQ(init.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(init.error().message, HasSubstr(o.bin_dir + "/initdb"));
  EXPECT_THAT(init.error().message, HasSubstr("bin_dir"));
  EXPECT_FALSE(std::filesystem::exists(o.data_dir)) << "nothing created for a bad bin_dir";
  auto control = pg.ReadControlData();
  ASSERT_FALSE(control);
  EXPECT_THAT(control.error().message, HasSubstr("pg_controldata"));
}

TEST(PostgresIntegration, BaseBackupFromUnreachableSourceFailsAndCleansUp) {
  TempDir dir("pg-bbfail");
  PgTestNode node(dir.path(), "n");
  auto r = node.pg().BaseBackup(
      "host=127.0.0.1 port=" + std::to_string(pgwarden::testing::FreeLoopbackPort()) +
          " user=replicator password='x y' connect_timeout=2",
      seconds(20));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().ToString();
  EXPECT_THAT(r.error().message, HasSubstr("pg_basebackup"));
  EXPECT_THAT(r.error().message, ::testing::Not(HasSubstr("x y"))) << "password leaked";
  EXPECT_FALSE(std::filesystem::exists(node.options().data_dir)) << "half-made data dir kept";
  auto start = node.pg().Start(seconds(5));
  ASSERT_FALSE(start);
  EXPECT_EQ(start.error().code, ErrorCode::kFailed);
  EXPECT_THAT(start.error().message, HasSubstr("no PostgreSQL cluster"));

  // initdb never touches a directory that has something in it.
  std::filesystem::create_directories(node.options().data_dir);
  ASSERT_OK(WriteFileAtomically(node.options().data_dir + "/precious", "x", 0600));
  auto init = node.pg().InitDb({});
  ASSERT_FALSE(init);
  EXPECT_EQ(init.error().code, ErrorCode::kFailed);
  EXPECT_THAT(init.error().message, HasSubstr("not empty"));
  EXPECT_TRUE(std::filesystem::exists(node.options().data_dir + "/precious"));
}

// Configuration writes, reload vs restart, stop escalation, status of a stopped server.
TEST(PostgresIntegration, ConfigReloadRestartAndStopEscalation) {
  TempDir dir("pg-config");
  PgTestNode node(dir.path(), "n1");
  ASSERT_OK(node.InitAndStart());
  LocalPostgres& pg = node.pg();
  const std::string& data = node.options().data_dir;

  // The include line is there exactly once, whatever the number of writes.
  auto conf = ReadFileToString(data + "/postgresql.conf");
  ASSERT_OK(conf);
  EXPECT_EQ(conf->find(kIncludeLine), conf->rfind(kIncludeLine));
  EXPECT_NE(conf->find(kIncludeLine), std::string::npos);

  // Same parameters again: nothing changes.
  auto same = pg.WriteManagedConfig(pgwarden::testing::PgFastTestParameters());
  ASSERT_OK(same);
  EXPECT_FALSE(same->changed);
  EXPECT_FALSE(same->restart_needed);

  // A sighup parameter: reload is enough.
  auto params = pgwarden::testing::PgFastTestParameters();
  params["work_mem"] = "8MB";
  auto sighup = pg.WriteManagedConfig(params);
  ASSERT_OK(sighup);
  EXPECT_TRUE(sighup->changed);
  EXPECT_FALSE(sighup->restart_needed);
  EXPECT_EQ(sighup->changed_parameters, std::vector<std::string>{"work_mem"});
  ASSERT_OK(pg.Reload());
  EXPECT_TRUE(
      WaitFor([&] { return node.SqlValue("SHOW work_mem").value_or("") == "8MB"; }, seconds(5)));

  // A postmaster parameter: restart needed, pending_restart after a reload, gone after it.
  params["max_connections"] = "31";
  auto postmaster = pg.WriteManagedConfig(params);
  ASSERT_OK(postmaster);
  EXPECT_TRUE(postmaster->restart_needed);
  ASSERT_OK(pg.Reload());
  EXPECT_TRUE(WaitFor(
      [&] {
        auto st = pg.Status();
        return st && st->pending_restart == std::vector<std::string>{"max_connections"};
      },
      seconds(5)));
  auto started_before = pg.Status()->postmaster_start_time;
  ASSERT_OK(pg.Restart(StopMode::kFast, seconds(30)));
  EXPECT_EQ(node.SqlValue("SHOW max_connections").value_or(""), "31");
  auto after = pg.Status();
  ASSERT_OK(after);
  EXPECT_TRUE(after->pending_restart.empty());
  EXPECT_NE(after->postmaster_start_time, started_before);
  EXPECT_EQ(after->server_version_num / 10000, 15);
  EXPECT_FALSE(after->in_recovery);
  EXPECT_EQ(after->timeline, Timeline(1));

  // SQL: errors carry the server's message; a statement past its timeout is cancelled.
  auto syntax = pg.ExecuteSql("SELEC 1", {}, seconds(5));
  ASSERT_FALSE(syntax);
  EXPECT_EQ(syntax.error().code, ErrorCode::kFailed);
  EXPECT_THAT(syntax.error().message, HasSubstr("syntax error"));
  EXPECT_THAT(syntax.error().message, HasSubstr("42601"));
  Result<SqlResult> slow;
  auto slow_took =
      Elapsed([&] { slow = pg.ExecuteSql("SELECT pg_sleep(10)", {}, milliseconds(500)); });
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code, ErrorCode::kTimeout) << slow.error().ToString();
  EXPECT_LT(slow_took, seconds(3));
  auto param = pg.ExecuteSql("SELECT $1::text || '!' AS v", {std::string("it's")}, seconds(5));
  ASSERT_OK(param);
  EXPECT_EQ(param->rows[0][0], std::optional<std::string>("it's!"));

  // Roles with awkward names and passwords are quoted by libpq; the password works.
  const std::string role = "we\"ird 'role";
  const std::string password = "pa'ss \\ \"word";
  ASSERT_OK(pg.EnsureRole({role, password, false, true, true}, seconds(5)));
  ASSERT_OK(pg.EnsureRole({role, password, false, true, true}, seconds(5)));  // idempotent
  EXPECT_EQ(node.SqlValue("SELECT rolreplication::text FROM pg_roles WHERE rolname = '" +
                          std::string("we\"ird ''role") + "'")
                .value_or(""),
            "true");
  auto as_role = PgConnection::Connect(
      BuildSourceConninfo({"127.0.0.1", node.port(), role, password, "", "postgres", 5}),
      std::chrono::steady_clock::now() + seconds(5));
  EXPECT_TRUE(as_role) << as_role.error().ToString();

  // A frozen postmaster: Status() gives up at its connect deadline instead of hanging.
  {
    LocalPostgresOptions quick = node.options();
    quick.connect_timeout = milliseconds(500);
    quick.status_timeout = seconds(1);
    LocalPostgres frozen_view(quick);
    auto pid = std::stoi(ReadFileToString(data + "/postmaster.pid").value_or("0"));
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    Result<PgStatus> frozen;
    auto frozen_took = Elapsed([&] { frozen = frozen_view.Status(); });
    ::kill(pid, SIGCONT);
    ASSERT_FALSE(frozen);
    EXPECT_EQ(frozen.error().code, ErrorCode::kTimeout) << frozen.error().ToString();
    EXPECT_LT(frozen_took, milliseconds(1500));
  }

  // pg_rewind against a server of another cluster cannot work: re-clone.
  {
    PgTestNode other(dir.path(), "other");
    ASSERT_OK(other.pg().InitDb({}));
    auto impossible = other.pg().Rewind(node.SuperuserConninfo(), seconds(30));
    ASSERT_OK(impossible);
    EXPECT_EQ(impossible->outcome, RewindResult::Outcome::kImpossible);
    EXPECT_THAT(impossible->detail, HasSubstr("different systems"));
    // And a source that is not there: unavailable, not impossible.
    auto nowhere = other.pg().Rewind(
        "host=127.0.0.1 port=" + std::to_string(pgwarden::testing::FreeLoopbackPort()) +
            " user=postgres dbname=postgres connect_timeout=2",
        seconds(10));
    ASSERT_FALSE(nowhere);
    EXPECT_EQ(nowhere.error().code, ErrorCode::kUnavailable) << nowhere.error().ToString();
  }

  // Status() is cheap: measure it (a figure for the docs; generous bound for loaded CI).
  auto status_took = Elapsed([&] {
    for (int i = 0; i < 20; ++i) ASSERT_OK(pg.Status());
  });
  std::cout << "Status() on a primary: " << status_took.count() / 20.0 << " ms per call\n";
  EXPECT_LT(status_took, seconds(10));
  // Status() keeps its connection; a restart behind its back breaks it, and the next call
  // connects anew instead of failing.
  {
    LocalPostgres behind_its_back(node.options());
    ASSERT_OK(behind_its_back.Restart(StopMode::kFast, seconds(30)));
  }
  auto reconnected = pg.Status();
  ASSERT_OK(reconnected);
  EXPECT_TRUE(reconnected->accepting_connections);

  // Start on a running server: nothing to do.
  ASSERT_OK(pg.Start(seconds(5)));

  // A fast stop that cannot finish (a frozen backend ignores SIGTERM) escalates.
  auto conn = PgConnection::Connect(pg.LocalConninfo(seconds(5)),
                                    std::chrono::steady_clock::now() + seconds(5));
  ASSERT_OK(conn);
  auto backend =
      conn->Query("SELECT pg_backend_pid()", std::chrono::steady_clock::now() + seconds(5));
  ASSERT_OK(backend);
  pid_t backend_pid = std::stoi(*backend->rows[0][0]);
  ASSERT_EQ(::kill(backend_pid, SIGSTOP), 0);
  std::thread thaw([backend_pid] {
    std::this_thread::sleep_for(milliseconds(2500));
    ::kill(backend_pid, SIGCONT);  // lets it die of the immediate stop's SIGQUIT at once
  });
  auto stopped = pg.Stop(StopMode::kFast, seconds(1));
  thaw.join();
  ASSERT_OK(stopped);
  EXPECT_TRUE(stopped->was_running);
  EXPECT_TRUE(stopped->escalated_to_immediate) << stopped->detail;
  EXPECT_THAT(stopped->detail, HasSubstr("immediate"));
  EXPECT_FALSE(pg.IsRunning());

  // Status of a stopped server: kUnavailable, and fast.
  Result<PgStatus> down;
  auto took = Elapsed([&] { down = pg.Status(); });
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(down.error().message, HasSubstr("not running"));
  EXPECT_LT(took, milliseconds(200));
  EXPECT_EQ(pg.Reload().error().code, ErrorCode::kUnavailable);

  // An immediate stop is a crash; pg_controldata (server down) says so. Stopping a stopped
  // server is fine.
  auto control = pg.ReadControlData();
  ASSERT_OK(control);
  EXPECT_EQ(control->cluster_state, "in production");
  EXPECT_NE(control->data_checksum_version, 0u) << "initdb must enable checksums";
  auto again = pg.Stop(StopMode::kFast, seconds(5));
  ASSERT_OK(again);
  EXPECT_FALSE(again->was_running);

  // It starts again (crash recovery), and a clean stop leaves "shut down".
  ASSERT_OK(pg.Start(seconds(30)));
  auto clean = pg.Stop(StopMode::kFast, seconds(30));
  ASSERT_OK(clean);
  EXPECT_FALSE(clean->escalated_to_immediate);
  EXPECT_EQ(pg.ReadControlData()->cluster_state, "shut down");

  // A start that fails says why, with the server log's last lines.
  auto broken = pgwarden::testing::PgFastTestParameters();
  broken["shared_buffers"] = "lots";
  ASSERT_OK(pg.WriteManagedConfig(broken));
  auto failed_start = pg.Start(seconds(20));
  ASSERT_FALSE(failed_start);
  EXPECT_EQ(failed_start.error().code, ErrorCode::kFailed) << failed_start.error().ToString();
  EXPECT_THAT(failed_start.error().message, HasSubstr("pg_ctl start"));
  EXPECT_THAT(failed_start.error().message, HasSubstr("shared_buffers"));
  EXPECT_FALSE(pg.IsRunning());
}

// The whole life of a replica: clone, stream, promote, crash the old primary, rewind it,
// follow the new primary. Every row written on the way is on every node at the end.
TEST(PostgresIntegration, CloneStreamPromoteRewindFollow) {
  TempDir dir("pg-failover");
  PgTestNode n1(dir.path(), "n1");
  PgTestNode n2(dir.path(), "n2");
  auto test_start = std::chrono::steady_clock::now();

  // --- primary n1
  ASSERT_OK(n1.InitAndStart());
  ASSERT_OK(
      n1.Sql("CREATE TABLE t (id serial PRIMARY KEY, phase text NOT NULL);"
             "INSERT INTO t (phase) SELECT 'before-clone' FROM generate_series(1, 100)"));
  ASSERT_OK(n1.pg().CreatePhysicalSlot("n2"));
  ASSERT_OK(n1.pg().CreatePhysicalSlot("n2"));  // idempotent
  auto slots = n1.pg().ListSlots();
  ASSERT_OK(slots);
  ASSERT_EQ(slots->size(), 1u);
  EXPECT_EQ((*slots)[0].name, "n2");
  EXPECT_EQ((*slots)[0].type, "physical");
  EXPECT_TRUE((*slots)[0].restart_lsn) << "slot must reserve WAL at once";

  // --- replica n2: clone, configure as a standby on the slot, start
  auto clone_took =
      Elapsed([&] { ASSERT_OK(n2.pg().BaseBackup(n1.ReplicationConninfo("n2"), seconds(60))); });
  EXPECT_LT(clone_took, seconds(20)) << "pg_basebackup must use a fast checkpoint";
  if (RunningAsRoot()) {
    struct stat st {};
    ASSERT_EQ(::stat(n2.options().data_dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, LookupOsUser("postgres")->uid) << "clone must belong to postgres";
  }
  auto mode = std::filesystem::status(n2.options().data_dir).permissions();
  EXPECT_EQ(mode & std::filesystem::perms::all, std::filesystem::perms::owner_all);
  ASSERT_OK(n2.ApplyTestConfig());
  auto standby = n2.pg().ConfigureStandby({n1.ReplicationConninfo("n2"), "n2", "latest"});
  ASSERT_OK(standby);
  EXPECT_TRUE(standby->changed);
  EXPECT_TRUE(std::filesystem::exists(n2.options().data_dir + "/standby.signal"));
  ASSERT_OK(n2.pg().Start(seconds(30)));

  auto streaming_to = [](PgTestNode& primary, const std::string& name) {
    auto st = primary.pg().Status();
    if (!st) return false;
    for (const auto& row : st->replication) {
      if (row.application_name == name && row.state == "streaming") return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return streaming_to(n1, "n2"); }, seconds(20)));
  auto s2 = n2.pg().Status();
  ASSERT_OK(s2);
  EXPECT_TRUE(s2->in_recovery);
  EXPECT_EQ(s2->timeline, Timeline(1));
  ASSERT_TRUE(s2->wal_receiver);
  EXPECT_TRUE(s2->wal_receiver->streaming());
  EXPECT_EQ(s2->wal_receiver->slot_name, "n2");
  EXPECT_EQ(s2->wal_receiver->sender_port, n1.port());
  EXPECT_THAT(s2->wal_receiver->conninfo, ::testing::Not(HasSubstr("repl pass")));
  ASSERT_TRUE(s2->received_lsn && s2->replayed_lsn);
  Lsn replayed_before = *s2->replayed_lsn;
  auto slots_active = n1.pg().ListSlots();
  ASSERT_OK(slots_active);
  EXPECT_TRUE((*slots_active)[0].active);

  // Rows written on the primary arrive; the replica's positions advance to the primary's.
  ASSERT_OK(n1.Sql("INSERT INTO t (phase) SELECT 'before-promote' FROM generate_series(1, 50)"));
  auto s1 = n1.pg().Status();
  ASSERT_OK(s1);
  EXPECT_FALSE(s1->in_recovery);
  ASSERT_TRUE(s1->current_wal_lsn && s1->flush_wal_lsn);
  Lsn primary_lsn = *s1->current_wal_lsn;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto st = n2.pg().Status();
        return st && st->replayed_lsn && *st->replayed_lsn >= primary_lsn && st->received_lsn &&
               *st->received_lsn >= primary_lsn;
      },
      seconds(10)));
  EXPECT_GT(*n2.pg().Status()->replayed_lsn, replayed_before);
  EXPECT_EQ(Count(n2, "phase = 'before-promote'"), 50);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto st = n1.pg().Status();
        return st && st->replication.size() == 1 && st->replication[0].replay_lsn &&
               *st->replication[0].replay_lsn >= primary_lsn;
      },
      seconds(10)));
  EXPECT_EQ(n1.pg().Status()->replication[0].sync_state, "async");

  // --- promote n2: the new timeline shows at once.
  ASSERT_OK(n2.pg().Promote(seconds(30)));
  auto promoted = n2.pg().Status();
  ASSERT_OK(promoted);
  EXPECT_FALSE(promoted->in_recovery);
  EXPECT_EQ(promoted->timeline, Timeline(2));
  EXPECT_FALSE(promoted->wal_receiver);
  ASSERT_OK(n2.pg().Promote(seconds(5)));  // already a primary: fine
  auto cleared = n2.pg().ClearStandby();
  ASSERT_OK(cleared);
  EXPECT_FALSE(cleared->restart_needed);
  EXPECT_FALSE(std::filesystem::exists(n2.options().data_dir + "/standby.signal"));
  // The new primary's configuration, reloaded, needs no restart (no recovery setting removed
  // from under the postmaster: `pgwarden list` must not show "Pending restart" after a failover).
  auto loaded = n2.SqlValue("SELECT pg_conf_load_time()");
  ASSERT_OK(loaded);
  ASSERT_OK(n2.pg().Reload());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto now = n2.SqlValue("SELECT pg_conf_load_time()");
        return now && *now != *loaded;
      },
      seconds(5)));
  EXPECT_THAT(n2.pg().Status()->pending_restart, ::testing::IsEmpty());
  ASSERT_OK(n2.Sql("INSERT INTO t (phase) SELECT 'after-promote' FROM generate_series(1, 20)"));
  ASSERT_OK(n2.pg().CreatePhysicalSlot("n1"));

  // The old primary does not know yet: a write there after the split must be undone.
  ASSERT_OK(n1.Sql("INSERT INTO t (phase) VALUES ('lost-on-old-primary')"));

  // --- crash n1 (immediate stop), rewind it against n2
  auto crashed = n1.pg().Stop(StopMode::kImmediate, seconds(10));
  ASSERT_OK(crashed);
  EXPECT_TRUE(crashed->was_running);
  EXPECT_EQ(n1.pg().Status().error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(n1.pg().ReadControlData()->cluster_state, "in production");
  auto rewound = n1.pg().Rewind(n2.SuperuserConninfo(), seconds(60));
  ASSERT_OK(rewound);
  EXPECT_EQ(rewound->outcome, RewindResult::Outcome::kDone) << rewound->detail;
  EXPECT_TRUE(rewound->ran_crash_recovery);
  // Our own port survived pg_rewind's copy of n2's configuration files.
  auto managed = ReadFileToString(n1.options().data_dir + "/" + std::string(kManagedConfFile));
  ASSERT_OK(managed);
  EXPECT_THAT(*managed, HasSubstr("port = '" + std::to_string(n1.port()) + "'"));

  // --- n1 follows n2
  ASSERT_OK(n1.pg().ConfigureStandby({n2.ReplicationConninfo("n1"), "n1", "latest"}));
  ASSERT_OK(n1.pg().Start(seconds(30)));
  ASSERT_TRUE(WaitFor([&] { return streaming_to(n2, "n1"); }, seconds(20)));
  ASSERT_OK(n2.Sql("INSERT INTO t (phase) VALUES ('after-follow')"));
  auto n2_lsn = n2.pg().Status()->current_wal_lsn;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto st = n1.pg().Status();
        return st && st->replayed_lsn && n2_lsn && *st->replayed_lsn >= *n2_lsn;
      },
      seconds(10)));
  auto s1_follow = n1.pg().Status();
  ASSERT_OK(s1_follow);
  EXPECT_TRUE(s1_follow->in_recovery);
  EXPECT_EQ(s1_follow->timeline, Timeline(2));

  for (PgTestNode* node : {&n1, &n2}) {
    SCOPED_TRACE(node->name());
    EXPECT_EQ(Count(*node, "phase = 'before-clone'"), 100);
    EXPECT_EQ(Count(*node, "phase = 'before-promote'"), 50);
    EXPECT_EQ(Count(*node, "phase = 'after-promote'"), 20);
    EXPECT_EQ(Count(*node, "phase = 'after-follow'"), 1);
    EXPECT_EQ(Count(*node, "phase = 'lost-on-old-primary'"), 0);
  }
  // A standby without hot_standby takes no connections: Status() says it runs but does not
  // accept them (not "unavailable").
  auto no_hot = pgwarden::testing::PgFastTestParameters();
  no_hot["hot_standby"] = "off";
  auto cold = n1.pg().WriteManagedConfig(no_hot);
  ASSERT_OK(cold);
  EXPECT_TRUE(cold->restart_needed);
  ASSERT_OK(n1.pg().Restart(StopMode::kFast, seconds(30)));
  auto cold_status = n1.pg().Status();
  ASSERT_OK(cold_status);
  EXPECT_TRUE(cold_status->running);
  EXPECT_FALSE(cold_status->accepting_connections);
  EXPECT_THAT(cold_status->not_accepting_reason, HasSubstr("not accepting connections"));

  // A follower that crashed: recovered as a standby (start + clean stop, never ending
  // recovery on its own), and then there is nothing to rewind.
  ASSERT_OK(n1.pg().Stop(StopMode::kImmediate, seconds(30)));
  EXPECT_EQ(n1.pg().ReadControlData()->cluster_state, "in archive recovery");
  auto again = n1.pg().Rewind(n2.SuperuserConninfo(), seconds(60));
  ASSERT_OK(again);
  EXPECT_EQ(again->outcome, RewindResult::Outcome::kNotNeeded) << again->detail;
  EXPECT_TRUE(again->ran_crash_recovery);
  EXPECT_EQ(n1.pg().ReadControlData()->cluster_state, "shut down in recovery");
  EXPECT_TRUE(std::filesystem::exists(n1.options().data_dir + "/standby.signal"));
  // It follows again at once.
  ASSERT_OK(n1.pg().Start(seconds(30)));
  ASSERT_TRUE(WaitFor([&] { return streaming_to(n2, "n1"); }, seconds(20)));

  auto took = std::chrono::steady_clock::now() - test_start;
  std::cout << "failover cycle took " << std::chrono::duration_cast<milliseconds>(took).count()
            << " ms\n";
}

}  // namespace
}  // namespace pgwarden::postgres
