// Sets up the process's log from the `log` section: one spdlog logger named `name`, to stderr
// when log.dir is empty, else to <log.dir>/<file_name>; level from log.level; flushed at info.
// The agent and the proxy call it once at start, before any thread logs.
#pragma once

#include <string>

#include "common/result.h"
#include "config/config.h"

namespace pgwarden::config {

// kFailed (with the reason) when the log file cannot be opened.
Result<void> StartLogging(const LogConfig& log, const std::string& name,
                          const std::string& file_name);

}  // namespace pgwarden::config
