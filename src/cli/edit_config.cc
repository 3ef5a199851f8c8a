#include "cli/edit_config.h"

#include <nlohmann/json.hpp>

#include "config/config_edit.h"

namespace pgwarden::cli {
namespace {

using Json = nlohmann::json;

// "a.b.c" -> {"a","b","c"}; empty parts are an error.
Result<std::vector<std::string>> KeyPath(const std::string& path, const std::string& arg) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (part.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  arg + ": the key path \"" + path + "\" has an empty part");
    }
    parts.push_back(part);
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

Result<void> SetAt(Json& patch, const std::vector<std::string>& path, const std::string& value,
                   const std::string& arg) {
  auto parsed = config::YamlToJson(value, arg);
  if (!parsed) return Fail(ErrorCode::kInvalidArgument, arg + ": " + parsed.error().message);
  Json* at = &patch;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    Json& next = (*at)[path[i]];
    if (!next.is_object()) next = Json::object();
    at = &next;
  }
  (*at)[path.back()] = Json::parse(*parsed);
  return Ok();
}

Result<std::pair<std::string, std::string>> SplitAssignment(const std::string& text,
                                                            const std::string& option) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Fail(
        ErrorCode::kInvalidArgument,
        option + " " + text + ": expected " + (option == "--pg" ? "name=value" : "key.path=value"));
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

}  // namespace

Result<std::string> BuildConfigPatch(const EditConfigArgs& args) {
  Json patch = Json::object();
  if (args.apply) {
    auto parsed = config::YamlToJson(*args.apply, args.apply_source);
    if (!parsed) return Fail(parsed.error());
    Json j = Json::parse(*parsed);
    if (j.is_null()) j = Json::object();
    if (!j.is_object()) {
      return Fail(ErrorCode::kInvalidArgument,
                  args.apply_source + ": expected a mapping of config keys");
    }
    patch = std::move(j);
  }
  for (const std::string& pg : args.pg) {
    auto kv = SplitAssignment(pg, "--pg");
    if (!kv) return Fail(kv.error());
    // The name is one key even with dots in it (extension settings: "pg_stat_statements.max").
    if (auto r = SetAt(patch, {"postgresql", "parameters", kv->first}, kv->second, "--pg " + pg);
        !r) {
      return Fail(r.error());
    }
  }
  for (const std::string& set : args.set) {
    auto kv = SplitAssignment(set, "--set");
    if (!kv) return Fail(kv.error());
    auto path = KeyPath(kv->first, "--set " + set);
    if (!path) return Fail(path.error());
    if (auto r = SetAt(patch, *path, kv->second, "--set " + set); !r) return Fail(r.error());
  }
  if (patch.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "nothing to change: give --set key.path=value, --pg name=value or --apply FILE");
  }
  return patch.dump();
}

}  // namespace pgwarden::cli
