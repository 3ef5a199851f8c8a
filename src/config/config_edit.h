// Editing a dynamic configuration as JSON: the merge patch of PATCH /config and
// `pgwarden edit-config`, and YAML text (a file for --apply, a --set value) as JSON.
// No nlohmann or yaml-cpp types here: values travel as JSON text.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace pgwarden::config {

// Applies the JSON merge patch `patch_json` (RFC 7396, Patroni's patch_config: null deletes a
// key, objects merge, any other value replaces) to `current_json` (nullopt or empty: {}).
// Returns the merged object as compact JSON. kInvalidArgument when the patch is not a JSON
// object; kCorrupt when the current value is not one.
Result<std::string> MergeJsonPatch(const std::optional<std::string>& current_json,
                                   std::string_view patch_json);

// YAML text (a document or a single scalar) as compact JSON. Unquoted scalars are typed as
// YAML 1.1 reads them (null / ~, true / false / on / off / yes / no, integers, decimals);
// anything else, and every quoted scalar, is a string. Error: kInvalidArgument naming `source`
// and the line.
Result<std::string> YamlToJson(std::string_view text, std::string_view source);

// A JSON document as block-style YAML, keys in sorted order (patronictl show-config's output).
// Text that is not JSON is returned unchanged.
std::string JsonToYaml(std::string_view json);

// Renders two JSON documents as indented text and returns a line diff ("-" removed, "+" added,
// " " kept), or "" when they are equal.
std::string JsonDiff(std::string_view before_json, std::string_view after_json);

}  // namespace pgwarden::config
