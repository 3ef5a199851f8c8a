#include "postgres/config_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "common/strings.h"

namespace pgwarden::postgres {
namespace {}  // namespace

std::string QuoteConfValue(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') {
      out += "''";
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string RenderManagedConfig(const std::map<std::string, std::string>& parameters) {
  std::string out =
      "# Managed by pgwarden: this file is rewritten by pgwarden; edits here are lost.\n"
      "# Change the parameters in pgwarden's configuration instead.\n";
  for (const auto& [name, value] : parameters) {
    out += name;
    out += " = ";
    out += QuoteConfValue(value);
    out += '\n';
  }
  return out;
}

Result<std::map<std::string, std::string>> ParseManagedConfig(std::string_view text) {
  std::map<std::string, std::string> out;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    line = TrimSpace(line);
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    auto bad = [&](const char* why) {
      return Fail(ErrorCode::kCorrupt, std::string(kManagedConfFile) + " line " +
                                           std::to_string(line_no) + ": " + why + ": " +
                                           std::string(line));
    };
    if (eq == std::string_view::npos) return bad("expected name = 'value'");
    std::string name(TrimSpace(line.substr(0, eq)));
    std::string_view rest = TrimSpace(line.substr(eq + 1));
    if (name.empty()) return bad("missing parameter name");
    std::string value;
    if (!rest.empty() && rest.front() == '\'') {
      size_t i = 1;
      bool closed = false;
      while (i < rest.size()) {
        char c = rest[i];
        if (c == '\'' && i + 1 < rest.size() && rest[i + 1] == '\'') {
          value += '\'';
          i += 2;
        } else if (c == '\\' && i + 1 < rest.size()) {
          value += rest[i + 1];
          i += 2;
        } else if (c == '\'') {
          closed = true;
          ++i;
          break;
        } else {
          value += c;
          ++i;
        }
      }
      if (!closed) return bad("unterminated quoted value");
      std::string_view tail = TrimSpace(rest.substr(i));
      if (!tail.empty() && tail.front() != '#') return bad("text after the quoted value");
    } else {
      size_t hash = rest.find('#');
      value = std::string(TrimSpace(rest.substr(0, hash)));
    }
    out[name] = value;
  }
  return out;
}

std::string WithManagedInclude(std::string_view conf) {
  std::string_view rest = conf;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = TrimSpace(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.rfind("include", 0) != 0 || line.rfind("include_", 0) == 0) continue;
    // include 'postgresql.pgwarden.conf' / include = '...' / include postgresql.pgwarden.conf
    if (line.find(kManagedConfFile) != std::string_view::npos) return std::string(conf);
  }
  std::string out(conf);
  if (!out.empty() && out.back() != '\n') out += '\n';
  out += "\n# Added by pgwarden: its managed parameters override the settings above.\n";
  out += kIncludeLine;
  out += '\n';
  return out;
}

std::vector<std::string> ChangedParameters(const std::map<std::string, std::string>& before,
                                           const std::map<std::string, std::string>& after) {
  std::set<std::string> names;
  for (const auto& [name, value] : before) {
    auto it = after.find(name);
    if (it == after.end() || it->second != value) names.insert(name);
  }
  for (const auto& [name, value] : after) {
    if (!before.contains(name)) names.insert(name);
  }
  return {names.begin(), names.end()};
}

std::string QuoteHbaField(std::string_view field) {
  bool safe = !field.empty();
  for (char c : field) {
    if (c == ' ' || c == '\t' || c == ',' || c == '"' || c == '#' || c == '\'') safe = false;
  }
  if (safe) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string RenderHba(const std::string& superuser, const std::string& local_method,
                      const std::vector<HbaEntry>& entries) {
  std::ostringstream out;
  out << "# Managed by pgwarden: this file is rewritten by pgwarden; edits here are lost.\n"
      << "# TYPE  DATABASE  USER  ADDRESS  METHOD  [OPTIONS]\n"
      << "# pgwarden's own access (the superuser over the unix socket):\n"
      << "local all " << QuoteHbaField(superuser) << ' ' << local_method << '\n';
  for (const HbaEntry& e : entries) {
    out << e.type << ' ' << QuoteHbaField(e.database) << ' ' << QuoteHbaField(e.user);
    if (e.type != "local") out << ' ' << e.address;
    out << ' ' << e.method;
    if (!e.options.empty()) out << ' ' << e.options;
    out << '\n';
  }
  return out.str();
}

Result<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return Fail(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kFailed,
                "cannot read " + path + ": " + std::strerror(err));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

Result<void> WriteFileAtomically(const std::string& path, std::string_view content, int mode,
                                 int uid, int gid) {
  std::string tmp = path + ".pgwarden-tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Fail(ErrorCode::kFailed, "cannot create " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Fail(ErrorCode::kFailed, "cannot write " + tmp + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  if (uid >= 0 && ::fchown(fd, uid, gid) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Fail(ErrorCode::kFailed, "cannot chown " + tmp + ": " + std::strerror(err));
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Fail(ErrorCode::kFailed, "cannot sync " + tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Fail(ErrorCode::kFailed,
                "cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  return Ok();
}

}  // namespace pgwarden::postgres
