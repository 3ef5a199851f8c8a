// Internal to the config module: section readers and checks shared by the node config
// (config.h) and the proxy config (proxy_config.h), so `etcd3:`, `namespace` and `log:` mean
// the same in both files.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "config/reader.h"

namespace pgwarden::config::internal {

// `etcd3:` (or its alias `etcd:`, with a warning; both at once is an error).
void ReadEtcdSection(MapReader& root, EtcdConfig* etcd);
// `log:`.
void ReadLogSection(MapReader& root, LogConfig* log);
// `namespace`, normalized to "/name".
void ReadNamespace(MapReader& root, std::string* ns);

// Reads a config file of at most 1 MiB. On failure *error is "<path>: cannot read ..." and
// *code kNotFound (no such file) or kInvalidArgument.
bool ReadConfigFileText(const std::string& path, std::string* text, std::string* error,
                        ErrorCode* code);

// Checks shared by both files; paths as in the YAML ("etcd3.hosts", "log.file_num").
void ValidateScopeAndNamespace(const std::string& scope, const std::string& dcs_namespace,
                               std::vector<ConfigProblem>* problems);
void ValidateEtcd(const EtcdConfig& etcd, std::vector<ConfigProblem>* problems);
void ValidateLog(const LogConfig& log, std::vector<ConfigProblem>* problems);

}  // namespace pgwarden::config::internal
