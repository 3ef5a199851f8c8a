#include "config/config_edit.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "config/tree.h"

namespace pgwarden::config {
namespace {

using Json = nlohmann::json;

void MergeInto(Json& target, const Json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = Json::object();
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null()) {
      target.erase(key);
    } else {
      MergeInto(target[key], value);
    }
  }
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

Json Scalar(const internal::Node& n) {
  if (n.quoted) return n.scalar;
  const std::string& s = n.scalar;
  const std::string l = Lower(s);
  if (l.empty() || l == "null" || l == "~") return nullptr;
  if (l == "true" || l == "yes" || l == "on") return true;
  if (l == "false" || l == "no" || l == "off") return false;
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(s.c_str(), &end, 10);
  if (errno == 0 && end && *end == '\0' && end != s.c_str()) return i;
  errno = 0;
  double d = std::strtod(s.c_str(), &end);
  if (errno == 0 && end && *end == '\0' && end != s.c_str() &&
      s.find_first_not_of("0123456789.eE+-") == std::string::npos) {
    return d;
  }
  return s;
}

Json ToJson(const internal::Node& n) {
  switch (n.kind) {
    case internal::Node::Kind::kNull:
      return nullptr;
    case internal::Node::Kind::kScalar:
      return Scalar(n);
    case internal::Node::Kind::kSequence: {
      Json a = Json::array();
      for (const auto& item : n.items) a.push_back(ToJson(item));
      return a;
    }
    case internal::Node::Kind::kMap: {
      Json o = Json::object();
      for (const auto& e : n.entries) o[e.key] = e.value ? ToJson(*e.value) : Json(nullptr);
      return o;
    }
  }
  return nullptr;
}

std::vector<std::string> Lines(std::string_view json) {
  std::vector<std::string> out;
  Json j = Json::parse(json, nullptr, false);
  std::istringstream in(j.is_discarded() ? std::string(json) : j.dump(2));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void EmitYaml(YAML::Emitter& out, const Json& j) {
  if (j.is_object()) {
    if (j.empty()) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
      return;
    }
    out << YAML::BeginMap;
    for (const auto& [key, value] : j.items()) {  // nlohmann's object is a sorted std::map
      out << YAML::Key << key << YAML::Value;
      EmitYaml(out, value);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    if (j.empty()) {
      out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
      return;
    }
    out << YAML::BeginSeq;
    for (const Json& item : j) EmitYaml(out, item);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    // Quoted when, left plain, it would read back as another type ("on", "100", "null", "").
    const std::string text = j.get<std::string>();
    auto plain = YamlToJson(text, "value");
    if (!plain || *plain != j.dump()) out << YAML::DoubleQuoted;
    out << text;
  } else if (j.is_null()) {
    out << YAML::Null;
  } else {
    out << j.dump();  // numbers and booleans as JSON writes them
  }
}

}  // namespace

std::string JsonToYaml(std::string_view json) {
  Json j = Json::parse(json, nullptr, false);
  if (j.is_discarded()) return std::string(json);
  YAML::Emitter out;
  EmitYaml(out, j);
  return std::string(out.c_str()) + "\n";
}

Result<std::string> MergeJsonPatch(const std::optional<std::string>& current_json,
                                   std::string_view patch_json) {
  Json patch;
  try {
    patch = Json::parse(patch_json);
  } catch (const Json::exception& e) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string("the patch is not valid JSON: ") + e.what());
  }
  if (!patch.is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "the patch must be a JSON object");
  }
  Json current = Json::object();
  if (current_json && !current_json->empty()) {
    try {
      current = Json::parse(*current_json);
    } catch (const Json::exception& e) {
      return Fail(ErrorCode::kCorrupt,
                  std::string("the current config is not valid JSON: ") + e.what());
    }
    if (!current.is_object()) {
      return Fail(ErrorCode::kCorrupt, "the current config is not a JSON object");
    }
  }
  MergeInto(current, patch);
  return current.dump();
}

Result<std::string> YamlToJson(std::string_view text, std::string_view source) {
  auto root = internal::ParseYaml(text, source);
  if (!root) return Fail(ErrorCode::kInvalidArgument, root.error().message);
  return ToJson(*root).dump();
}

std::string JsonDiff(std::string_view before_json, std::string_view after_json) {
  const std::vector<std::string> a = Lines(before_json), b = Lines(after_json);
  if (a == b) return "";
  // Longest common subsequence over lines (configs are small).
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::string out;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      out += " " + a[i++] + "\n";
      ++j;
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out += "+" + b[j++] + "\n";
    } else {
      out += "-" + a[i++] + "\n";
    }
  }
  return out;
}

}  // namespace pgwarden::config
