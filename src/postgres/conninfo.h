// libpq connection strings, built in one place so that every value is quoted correctly.
//
// A conninfo string is "key=value key=value". A value that is empty or contains a space, a
// single quote or a backslash must be written as '...' with \ and ' escaped by a backslash;
// anything else may be written bare. Passwords and paths with spaces are the usual victims.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgwarden::postgres {

using ConninfoParams = std::vector<std::pair<std::string, std::string>>;

// Quotes one conninfo value when needed: "a b" -> 'a b', "it's" -> 'it\'s'.
std::string QuoteConninfoValue(std::string_view value);

// "host=127.0.0.1 port=5432 user=replicator password='p w'"; keys are written as given, in
// order; pairs with an empty key are skipped.
std::string BuildConninfo(const ConninfoParams& params);

// Parses a conninfo string back into pairs (the inverse of BuildConninfo; used by tests and
// to find a key in a stored conninfo). Returns false on an unterminated quote or a key
// without '='.
bool ParseConninfo(std::string_view conninfo, ConninfoParams* out);

// The conninfo a standby uses to stream from (or pg_basebackup / pg_rewind to copy from)
// host:port as `user`.
struct ReplicationSource {
  std::string host;
  int port = 5432;
  std::string user;
  std::string password;          // empty: none (trust, or a passfile)
  std::string application_name;  // shows in the source's pg_stat_replication
  std::string dbname;            // pg_rewind needs a database ("postgres"); streaming does not
  int connect_timeout_s = 5;
};
std::string BuildSourceConninfo(const ReplicationSource& source);

}  // namespace pgwarden::postgres
