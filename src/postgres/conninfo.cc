#include "postgres/conninfo.h"

namespace pgwarden::postgres {

std::string QuoteConninfoValue(std::string_view value) {
  bool needs_quotes = value.empty();
  for (char c : value) {
    if (c == ' ' || c == '\'' || c == '\\' || c == '\t' || c == '\n' || c == '\r' || c == '=') {
      needs_quotes = true;
      break;
    }
  }
  if (!needs_quotes) return std::string(value);
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

std::string BuildConninfo(const ConninfoParams& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (key.empty()) continue;
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    out += QuoteConninfoValue(value);
  }
  return out;
}

bool ParseConninfo(std::string_view s, ConninfoParams* out) {
  out->clear();
  size_t i = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (true) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i >= s.size()) return true;
    size_t key_start = i;
    while (i < s.size() && s[i] != '=' && !is_space(s[i])) ++i;
    std::string key(s.substr(key_start, i - key_start));
    while (i < s.size() && is_space(s[i])) ++i;
    if (i >= s.size() || s[i] != '=' || key.empty()) return false;
    ++i;
    while (i < s.size() && is_space(s[i])) ++i;
    std::string value;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        char c = s[i++];
        if (c == '\\' && i < s.size()) {
          value += s[i++];
        } else if (c == '\'') {
          closed = true;
          break;
        } else {
          value += c;
        }
      }
      if (!closed) return false;
    } else {
      while (i < s.size() && !is_space(s[i])) {
        char c = s[i++];
        if (c == '\\' && i < s.size()) c = s[i++];
        value += c;
      }
    }
    out->emplace_back(std::move(key), std::move(value));
  }
}

std::string BuildSourceConninfo(const ReplicationSource& source) {
  ConninfoParams params = {
      {"host", source.host}, {"port", std::to_string(source.port)}, {"user", source.user}};
  if (!source.password.empty()) params.emplace_back("password", source.password);
  if (!source.dbname.empty()) params.emplace_back("dbname", source.dbname);
  if (!source.application_name.empty()) {
    params.emplace_back("application_name", source.application_name);
  }
  params.emplace_back("connect_timeout", std::to_string(source.connect_timeout_s));
  return BuildConninfo(params);
}

}  // namespace pgwarden::postgres
