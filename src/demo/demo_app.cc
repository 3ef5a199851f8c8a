#include "demo/demo_app.h"

#include <cstdlib>
#include <ctime>
#include <thread>

#include "postgres/libpq_connection.h"

namespace pgwarden::demo {
namespace {

// Sleeps up to `d`, waking early (every 50 ms check) when `stopped()` turns true.
template <typename Pred>
void SleepUnless(std::chrono::milliseconds d, Pred stopped) {
  const SteadyTime until = SteadyClock::now() + d;
  while (!stopped()) {
    const auto left = until - SteadyClock::now();
    if (left <= std::chrono::milliseconds(0)) return;
    std::this_thread::sleep_for(
        std::min<SteadyClock::duration>(left, std::chrono::milliseconds(50)));
  }
}

std::string OneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

}  // namespace

std::string FormatWallTime(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()) %
                  std::chrono::seconds(1);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>(ms.count()));
  return out;
}

std::string WithConnectTimeout(const std::string& dsn, int seconds) {
  if (dsn.find("connect_timeout") != std::string::npos) return dsn;
  if (dsn.rfind("postgres://", 0) == 0 || dsn.rfind("postgresql://", 0) == 0) {
    return dsn + (dsn.find('?') == std::string::npos ? "?" : "&") +
           "connect_timeout=" + std::to_string(seconds);
  }
  return dsn + " connect_timeout=" + std::to_string(seconds);
}

void DemoApp::Record(Attempt a) {
  std::lock_guard lock(mu_);
  attempts_.push_back(std::move(a));
}

std::vector<Attempt> DemoApp::Attempts() const {
  std::lock_guard lock(mu_);
  return attempts_;
}

void DemoApp::Run(const std::function<void(const std::string&)>& print,
                  const std::atomic<bool>* external_stop) {
  const auto stopped = [&] { return stop_.load() || (external_stop && external_stop->load()); };
  const std::string dsn = WithConnectTimeout(options_.dsn, 2);
  const SteadyTime started = SteadyClock::now();
  std::optional<postgres::PgConnection> conn;  // persistent mode keeps it between attempts
  while (!stopped()) {
    if (options_.duration.count() > 0 && SteadyClock::now() - started >= options_.duration) break;
    Attempt a;
    a.start = SteadyClock::now();
    const SteadyTime deadline = a.start + options_.attempt_timeout;
    auto fail = [&](const std::string& what, const Error& e) {
      a.error = what + ": " + OneLine(e.message);
      conn.reset();  // a broken or doubtful connection is never reused
    };
    [&] {
      if (!conn) {
        auto c = postgres::PgConnection::Connect(dsn, deadline);
        if (!c) return fail("Error while connecting to PostgreSQL", c.error());
        conn.emplace(std::move(*c));
      }
      if (next_id_ == 0) {
        // (No CREATE TABLE IF NOT EXISTS: its NOTICE would land on stderr.)
        auto missing = conn->Query("SELECT to_regclass('log') IS NULL", deadline);
        if (!missing) return fail("Error while looking for the table", missing.error());
        if (missing->rows.at(0).at(0).value_or("f") == "t") {
          auto made = conn->Query("CREATE TABLE log (event_id integer NOT NULL)", deadline);
          if (!made) return fail("Error while creating the table", made.error());
        }
        auto created = conn->Query("SELECT coalesce(max(event_id), 0) FROM log", deadline);
        if (!created) return fail("Error while preparing the table", created.error());
        next_id_ = std::stoll(created->rows.at(0).at(0).value_or("0")) + 1;
      }
      a.event_id = next_id_++;
      // pg_walfile_name() names the segment on the timeline the server inserts WAL on.
      auto inserted = conn->Query(
          "INSERT INTO log VALUES ($1) RETURNING inet_server_port(), "
          "substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8)",
          {std::to_string(a.event_id)}, deadline);
      if (!inserted) return fail("Error while inserting", inserted.error());
      a.ok = true;  // committed (autocommit): acknowledged from here on
      a.acked = SteadyClock::now();
      if (!inserted->rows.empty() && inserted->rows[0].size() == 2) {
        const auto& row = inserted->rows[0];
        a.server_port = static_cast<int>(std::strtol(row[0].value_or("0").c_str(), nullptr, 10));
        a.timeline = std::strtoll(row[1].value_or("0").c_str(), nullptr, 16);
      }
      auto counted = conn->Query("SELECT count(event_id) FROM log", deadline);
      if (!counted) return fail("Error while counting", counted.error());
      a.count = std::stoll(counted->rows.at(0).at(0).value_or("0"));
    }();
    if (options_.mode == AppMode::kReconnect) conn.reset();
    a.end = SteadyClock::now();
    a.wall = std::chrono::system_clock::now();
    std::string line = FormatWallTime(a.wall) + " ";
    if (a.ok && a.error.empty()) {
      line += "Logged a value, overall count: " + std::to_string(a.count);
    } else if (a.ok) {
      line += "Logged event " + std::to_string(a.event_id) + ", then " + a.error;
    } else {
      line += a.error;
    }
    print(line);
    Record(std::move(a));
    SleepUnless(options_.interval, stopped);
  }
}

Outage MeasureOutage(const std::vector<Attempt>& attempts, SteadyTime from, SteadyTime to) {
  Outage out;
  std::optional<SteadyTime> last_success;
  for (const Attempt& a : attempts) {
    const bool in_window = a.end >= from && a.end < to;
    if (a.ok) {
      if (in_window) {
        ++out.succeeded;
        if (last_success) {
          const auto gap =
              std::chrono::duration_cast<std::chrono::milliseconds>(a.end - *last_success);
          if (!out.gap || gap > *out.gap) out.gap = gap;
        }
        if (out.first_failure && !out.recovered) out.recovered = a.end;
      }
      last_success = a.end;
    } else if (in_window) {
      ++out.failed_attempts;
      if (!out.first_failure) out.first_failure = a.end;
    }
  }
  return out;
}

}  // namespace pgwarden::demo
