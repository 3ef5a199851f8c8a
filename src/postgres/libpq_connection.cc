#include "postgres/libpq_connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <utility>

#include "postgres/control_data.h"

namespace pgwarden::postgres {
namespace {

// Waits until the socket is readable (or writable) or the deadline passes. false on timeout.
bool WaitSocket(int fd, bool for_write, SteadyTime deadline) {
  while (true) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // let libpq report the socket error
  }
}

std::string ConnMessage(PGconn* conn) {
  std::string msg = conn ? PQerrorMessage(conn) : "out of memory";
  return LastLines(msg, 4);
}

}  // namespace

Result<PgConnection> PgConnection::Connect(const std::string& conninfo, SteadyTime deadline) {
  PGconn* conn = PQconnectStart(conninfo.c_str());
  if (conn == nullptr) return Fail(ErrorCode::kFailed, "libpq: out of memory");
  PgConnection holder(conn);
  if (PQstatus(conn) == CONNECTION_BAD) {
    return Fail(ErrorCode::kUnavailable, "cannot connect: " + ConnMessage(conn));
  }
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (true) {
    if (state == PGRES_POLLING_OK) break;
    if (state == PGRES_POLLING_FAILED) {
      return Fail(ErrorCode::kUnavailable, "cannot connect: " + ConnMessage(conn));
    }
    int fd = PQsocket(conn);
    if (fd < 0) return Fail(ErrorCode::kUnavailable, "cannot connect: " + ConnMessage(conn));
    if (!WaitSocket(fd, state == PGRES_POLLING_WRITING, deadline)) {
      return Fail(ErrorCode::kTimeout, "cannot connect: no answer within the connect deadline");
    }
    state = PQconnectPoll(conn);
  }
  if (PQsetnonblocking(conn, 1) != 0) {
    return Fail(ErrorCode::kFailed, "libpq: cannot set non-blocking: " + ConnMessage(conn));
  }
  return holder;
}

PgConnection::PgConnection(PgConnection&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)) {}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = std::exchange(other.conn_, nullptr);
  }
  return *this;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Result<SqlResult> PgConnection::Query(std::string_view sql,
                                      const std::vector<std::optional<std::string>>& params,
                                      SteadyTime deadline) {
  if (conn_ == nullptr) return Fail(ErrorCode::kUnavailable, "not connected");
  std::string text(sql);
  int sent;
  if (params.empty()) {
    sent = PQsendQuery(conn_, text.c_str());
  } else {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    sent = PQsendQueryParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  }
  if (sent == 0) return Fail(ErrorCode::kUnavailable, "cannot send query: " + ConnMessage(conn_));

  auto timed_out = [&]() -> Result<SqlResult> {
    // Cancel the statement so that the server stops working on it, then give up on this
    // connection (the caller drops it).
    if (PGcancel* cancel = PQgetCancel(conn_)) {
      char buf[256];
      PQcancel(cancel, buf, sizeof buf);
      PQfreeCancel(cancel);
    }
    PQfinish(conn_);
    conn_ = nullptr;
    return Fail(ErrorCode::kTimeout, "no answer before the deadline (statement cancelled)");
  };

  // Flush the outgoing query.
  while (true) {
    int f = PQflush(conn_);
    if (f == 0) break;
    if (f < 0) return Fail(ErrorCode::kUnavailable, "cannot send query: " + ConnMessage(conn_));
    if (!WaitSocket(PQsocket(conn_), true, deadline)) return timed_out();
  }

  SqlResult out;
  std::optional<Error> error;
  while (true) {
    while (PQisBusy(conn_)) {
      if (!WaitSocket(PQsocket(conn_), false, deadline)) return timed_out();
      if (PQconsumeInput(conn_) == 0) {
        return Fail(ErrorCode::kUnavailable, "connection lost: " + ConnMessage(conn_));
      }
    }
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) break;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      out = SqlResult{};
      out.command_status = PQcmdStatus(res);
      int ncols = PQnfields(res);
      for (int c = 0; c < ncols; ++c) out.columns.emplace_back(PQfname(res, c));
      int nrows = PQntuples(res);
      for (int r = 0; r < nrows; ++r) {
        std::vector<std::optional<std::string>> row;
        row.reserve(ncols);
        for (int c = 0; c < ncols; ++c) {
          if (PQgetisnull(res, r, c)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
          }
        }
        out.rows.push_back(std::move(row));
      }
    } else if (!error) {
      const char* sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      std::string state = sqlstate ? sqlstate : "";
      std::string msg = LastLines(PQresultErrorMessage(res), 4);
      ErrorCode code = ErrorCode::kFailed;
      if (state == "57014") code = ErrorCode::kTimeout;  // query_canceled: statement_timeout
      if (PQstatus(conn_) == CONNECTION_BAD || state.rfind("08", 0) == 0 || state == "57P01" ||
          state == "57P02" || state == "57P03") {
        code = ErrorCode::kUnavailable;  // connection failure, admin shutdown, cannot connect now
      }
      error = Error{code, msg + (state.empty() ? "" : " (SQLSTATE " + state + ")")};
    }
    PQclear(res);
    if (PQstatus(conn_) == CONNECTION_BAD) break;
  }
  if (error) return Fail(*error);
  if (PQstatus(conn_) == CONNECTION_BAD) {
    return Fail(ErrorCode::kUnavailable, "connection lost: " + ConnMessage(conn_));
  }
  return out;
}

Result<std::string> PgConnection::EscapeIdentifier(std::string_view s) {
  if (conn_ == nullptr) return Fail(ErrorCode::kUnavailable, "not connected");
  char* q = PQescapeIdentifier(conn_, s.data(), s.size());
  if (q == nullptr)
    return Fail(ErrorCode::kInvalidArgument, "cannot escape identifier: " + ConnMessage(conn_));
  std::string out(q);
  PQfreemem(q);
  return out;
}

Result<std::string> PgConnection::EscapeLiteral(std::string_view s) {
  if (conn_ == nullptr) return Fail(ErrorCode::kUnavailable, "not connected");
  char* q = PQescapeLiteral(conn_, s.data(), s.size());
  if (q == nullptr)
    return Fail(ErrorCode::kInvalidArgument, "cannot escape literal: " + ConnMessage(conn_));
  std::string out(q);
  PQfreemem(q);
  return out;
}

}  // namespace pgwarden::postgres
