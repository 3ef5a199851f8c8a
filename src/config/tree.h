// Internal to the config module. A parsed document as a small tree that both the YAML and the
// JSON readers produce, so one set of section readers (reader.h) serves both, and positions
// (line/column, 1-based) travel with every value. No yaml-cpp / nlohmann types here.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace pgwarden::config::internal {

struct Mark {
  int line = 0;  // 1-based; 0: unknown (JSON, or a key that is not in the file)
  int column = 0;
  bool known() const { return line > 0; }
};

struct Node;

struct MapEntry {
  std::string key;
  Mark key_mark;
  std::unique_ptr<Node> value;
};

struct Node {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  Mark mark;
  std::string scalar;             // kScalar: the text ("5", "true", "on", "UTF8")
  bool quoted = false;            // kScalar: a quoted YAML string or a JSON string
  std::vector<Node> items;        // kSequence
  std::vector<MapEntry> entries;  // kMap, in document order (duplicates kept)

  // The entry for `key` (first one), or nullptr.
  const MapEntry* Find(std::string_view key) const;
};

std::string_view KindName(Node::Kind kind);  // "a map", "a list", "a value", "null"

// Parses YAML text. Error message: "<source>:<line>:<col>: invalid YAML: <what>".
Result<Node> ParseYaml(std::string_view text, std::string_view source);
// Parses JSON text. Error (kCorrupt) message: "<source>: invalid JSON: <what>".
Result<Node> ParseJson(std::string_view text, std::string_view source);

}  // namespace pgwarden::config::internal
