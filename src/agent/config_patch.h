// The dynamic-config edits behind PATCH /config and PUT /config: a JSON merge patch (RFC 7396,
// as Patroni's patch_config: null deletes a key, objects merge, anything else replaces), the
// validation of the result by the config module's parser, and the compare-and-swap write of
// etcd's `config` key.
//
// Pure functions plus one that talks to a dcs::Dcs (any implementation), so every path,
// including a lost compare-and-swap, is unit-tested over MemoryDcs.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "dcs/dcs.h"

namespace pgwarden::agent {

// Applies the merge patch `patch_json` (a JSON object) to `current_json` (a JSON object; empty
// or nullopt: {}). Returns the merged object, serialized. kInvalidArgument when the patch is not
// a JSON object; kCorrupt when the current value is not one.
Result<std::string> MergeConfigPatch(const std::optional<std::string>& current_json,
                                     std::string_view patch_json);

// Checks `config_json` with config::DynamicConfigFromJson (plus `extra_check`, when given, on
// the same text). kInvalidArgument with every problem, each naming its key, one per line.
using ConfigCheck = std::function<std::optional<std::string>(const std::string& config_json)>;
Result<void> ValidateConfigJson(const std::string& config_json,
                                const ConfigCheck& extra_check = {});

// Reads `key`, computes the new value with `edit(current)` (nullopt: the key is absent), and
// writes it only if the key's mod revision is still the one read. A lost compare is retried
// with a fresh read, up to `attempts` times in all; then kConflict. Errors of `edit` are
// returned as they are (nothing is written). Returns the value written.
using ConfigEdit = std::function<Result<std::string>(const std::optional<std::string>& current)>;
Result<std::string> CompareAndSwapConfig(dcs::Dcs& dcs, const std::string& key,
                                         const ConfigEdit& edit, int attempts = 5);

// PATCH /config: merges `patch_json` into the value of `key`, validates the result (config
// parser + `check`) and writes it with a compare-and-swap. kNotFound when the key is absent
// (Patroni: 503), kInvalidArgument for a bad patch or result (400, nothing written), kConflict
// when the key kept changing. Returns the config written.
Result<std::string> PatchConfigKey(dcs::Dcs& dcs, const std::string& key,
                                   const std::string& patch_json, const ConfigCheck& check = {});
// PUT /config: replaces the value of `key` with `config_json` once validated alike.
Result<std::string> ReplaceConfigKey(dcs::Dcs& dcs, const std::string& key,
                                     const std::string& config_json, const ConfigCheck& check = {});

}  // namespace pgwarden::agent
