// A libpq connection with real deadlines: connect and every query run asynchronously and
// poll() the socket until a deadline, so a frozen server (SIGSTOP, a network stall) costs at
// most the deadline. On a query deadline the statement is cancelled and kTimeout returned.
//
// Not thread-safe; owned by one thread. Move-only; the destructor closes the connection.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "postgres/postgres.h"

typedef struct pg_conn PGconn;  // NOLINT: libpq's own name

namespace pgwarden::postgres {

class PgConnection {
 public:
  // Connects with `conninfo`. kUnavailable when the server cannot be reached or refuses
  // (the message carries libpq's reason), kTimeout when `deadline` passes first.
  static Result<PgConnection> Connect(const std::string& conninfo, SteadyTime deadline);

  PgConnection() = default;
  PgConnection(PgConnection&& other) noexcept;
  PgConnection& operator=(PgConnection&& other) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  // Runs `sql`. With params: one statement, $1.. bound as text (nullopt = NULL). Without:
  // the simple protocol, several statements allowed; the last result is returned.
  // kFailed on an SQL error (message with SQLSTATE), kTimeout on the deadline or a
  // statement_timeout cancel, kUnavailable when the connection broke.
  Result<SqlResult> Query(std::string_view sql,
                          const std::vector<std::optional<std::string>>& params,
                          SteadyTime deadline);
  Result<SqlResult> Query(std::string_view sql, SteadyTime deadline) {
    return Query(sql, {}, deadline);
  }

  // "quoted identifier" / 'quoted literal' as libpq escapes them for this server.
  Result<std::string> EscapeIdentifier(std::string_view s);
  Result<std::string> EscapeLiteral(std::string_view s);

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_ = nullptr;
};

}  // namespace pgwarden::postgres
