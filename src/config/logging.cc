#include "config/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace pgwarden::config {
namespace {

spdlog::level::level_enum ToSpdLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarning:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kCritical:
      return spdlog::level::critical;
  }
  return spdlog::level::info;
}

}  // namespace

Result<void> StartLogging(const LogConfig& log, const std::string& name,
                          const std::string& file_name) {
  std::shared_ptr<spdlog::logger> logger;
  try {
    logger = log.dir.empty() ? spdlog::stderr_color_mt(name)
                             : spdlog::basic_logger_mt(name, log.dir + "/" + file_name);
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kFailed, std::string("cannot open the log: ") + e.what());
  }
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %n: %v");
  logger->set_level(ToSpdLevel(log.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return Ok();
}

}  // namespace pgwarden::config
