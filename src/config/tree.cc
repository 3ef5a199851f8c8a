// YAML and JSON to the internal tree. yaml-cpp and nlohmann-json exceptions stop here.
#include "config/tree.h"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

namespace pgwarden::config::internal {
namespace {

constexpr int kMaxDepth = 64;  // deeper documents are not configs; also bounds recursion

Mark FromYamlMark(const YAML::Mark& m) {
  if (m.line < 0) return Mark{};
  return Mark{m.line + 1, m.column + 1};
}

Result<Node> FromYaml(const YAML::Node& y, std::string_view source, int depth) {
  Node n;
  n.mark = FromYamlMark(y.Mark());
  if (depth > kMaxDepth) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string(source) + ":" + std::to_string(n.mark.line) + ":" +
                    std::to_string(n.mark.column) + ": document nested too deeply");
  }
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      n.kind = Node::Kind::kNull;
      break;
    case YAML::NodeType::Scalar:
      n.kind = Node::Kind::kScalar;
      n.scalar = y.Scalar();
      n.quoted = y.Tag() == "!";  // yaml-cpp tags quoted scalars "!", plain ones "?"
      break;
    case YAML::NodeType::Sequence:
      n.kind = Node::Kind::kSequence;
      for (const YAML::Node& item : y) {
        Result<Node> child = FromYaml(item, source, depth + 1);
        if (!child) return child;
        n.items.push_back(std::move(*child));
      }
      break;
    case YAML::NodeType::Map: {
      n.kind = Node::Kind::kMap;
      // YAML merge keys (`<<: *anchor`, `<<: [*a, *b]`): yaml-cpp leaves them to us. Keys given
      // in the map itself win; among merged maps the first wins.
      std::vector<YAML::Node> merges;
      for (auto it = y.begin(); it != y.end(); ++it) {
        if (it->first.IsScalar() && it->first.Scalar() == "<<" && it->first.Tag() != "!") {
          if (it->second.IsMap()) {
            merges.push_back(it->second);
            continue;
          }
          if (it->second.IsSequence()) {
            bool all_maps = true;
            for (const YAML::Node& m : it->second) all_maps = all_maps && m.IsMap();
            if (all_maps) {
              for (const YAML::Node& m : it->second) merges.push_back(m);
              continue;
            }
          }
        }
        MapEntry entry;
        entry.key_mark = FromYamlMark(it->first.Mark());
        if (it->first.IsScalar()) {
          entry.key = it->first.Scalar();
        } else {
          return Fail(ErrorCode::kInvalidArgument,
                      std::string(source) + ":" + std::to_string(entry.key_mark.line) + ":" +
                          std::to_string(entry.key_mark.column) +
                          ": keys must be plain names, not lists or maps");
        }
        Result<Node> child = FromYaml(it->second, source, depth + 1);
        if (!child) return child;
        entry.value = std::make_unique<Node>(std::move(*child));
        n.entries.push_back(std::move(entry));
      }
      for (const YAML::Node& merged : merges) {
        Result<Node> m = FromYaml(merged, source, depth + 1);
        if (!m) return m;
        for (MapEntry& e : m->entries) {
          if (n.Find(e.key) == nullptr) n.entries.push_back(std::move(e));
        }
      }
      break;
    }
  }
  return n;
}

Result<Node> FromJson(const nlohmann::json& j, int depth) {
  Node n;
  if (depth > kMaxDepth) return Fail(ErrorCode::kCorrupt, "document nested too deeply");
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      n.kind = Node::Kind::kNull;
      break;
    case nlohmann::json::value_t::string:
      n.kind = Node::Kind::kScalar;
      n.scalar = j.get<std::string>();
      n.quoted = true;
      break;
    case nlohmann::json::value_t::boolean:
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
    case nlohmann::json::value_t::binary:
      n.kind = Node::Kind::kScalar;
      n.scalar = j.dump();
      break;
    case nlohmann::json::value_t::array:
      n.kind = Node::Kind::kSequence;
      for (const auto& item : j) {
        Result<Node> child = FromJson(item, depth + 1);
        if (!child) return child;
        n.items.push_back(std::move(*child));
      }
      break;
    case nlohmann::json::value_t::object:
      n.kind = Node::Kind::kMap;
      for (const auto& [key, value] : j.items()) {
        MapEntry entry;
        entry.key = key;
        Result<Node> child = FromJson(value, depth + 1);
        if (!child) return child;
        entry.value = std::make_unique<Node>(std::move(*child));
        n.entries.push_back(std::move(entry));
      }
      break;
  }
  return n;
}

}  // namespace

const MapEntry* Node::Find(std::string_view key) const {
  for (const MapEntry& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::string_view KindName(Node::Kind kind) {
  switch (kind) {
    case Node::Kind::kNull:
      return "nothing (null)";
    case Node::Kind::kScalar:
      return "a single value";
    case Node::Kind::kSequence:
      return "a list";
    case Node::Kind::kMap:
      return "a map";
  }
  return "?";
}

Result<Node> ParseYaml(std::string_view text, std::string_view source) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return FromYaml(root, source, 0);
  } catch (const YAML::Exception& e) {
    Mark m = FromYamlMark(e.mark);
    std::string where = std::string(source);
    if (m.known()) where += ":" + std::to_string(m.line) + ":" + std::to_string(m.column);
    return Fail(ErrorCode::kInvalidArgument, where + ": invalid YAML: " + e.msg);
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInvalidArgument, std::string(source) + ": invalid YAML: " + e.what());
  }
}

Result<Node> ParseJson(std::string_view text, std::string_view source) {
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    Result<Node> n = FromJson(j, 0);
    if (!n) return Fail(ErrorCode::kCorrupt, std::string(source) + ": " + n.error().message);
    return n;
  } catch (const nlohmann::json::exception& e) {
    return Fail(ErrorCode::kCorrupt, std::string(source) + ": invalid JSON: " + e.what());
  }
}

}  // namespace pgwarden::config::internal
