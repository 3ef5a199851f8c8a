// A temporary directory for one test, removed with everything in it on destruction.
#pragma once

#include <string>

namespace pgwarden::testing {

class TempDir {
 public:
  // Creates /tmp/pgwarden-<prefix>-XXXXXX, mode 0755 so that an unprivileged OS user
  // (postgres, when the tests run as root) can reach directories created inside it.
  explicit TempDir(const std::string& prefix = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string Sub(const std::string& name) const;

 private:
  std::string path_;
};

}  // namespace pgwarden::testing
