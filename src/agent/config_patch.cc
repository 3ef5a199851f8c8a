#include "agent/config_patch.h"

#include "config/config_edit.h"
#include "config/dynamic_config.h"

namespace pgwarden::agent {
Result<std::string> MergeConfigPatch(const std::optional<std::string>& current_json,
                                     std::string_view patch_json) {
  return config::MergeJsonPatch(current_json, patch_json);
}

Result<void> ValidateConfigJson(const std::string& config_json, const ConfigCheck& extra_check) {
  auto loaded = config::DynamicConfigFromJson(config_json, "config");
  if (!loaded) return Fail(ErrorCode::kInvalidArgument, loaded.error().message);
  if (extra_check) {
    if (auto problem = extra_check(config_json)) {
      return Fail(ErrorCode::kInvalidArgument, *problem);
    }
  }
  return Ok();
}

Result<std::string> CompareAndSwapConfig(dcs::Dcs& dcs, const std::string& key,
                                         const ConfigEdit& edit, int attempts) {
  for (int attempt = 0; attempt < attempts; ++attempt) {
    auto read = dcs.Get(key);
    if (!read) return Fail(read.error());
    std::optional<std::string> current;
    dcs::Revision revision = 0;
    if (!read->kvs.empty()) {
      current = read->kvs.front().value;
      revision = read->kvs.front().mod_revision;
    }
    auto next = edit(current);
    if (!next) return Fail(next.error());
    const dcs::Compare compare =
        revision == 0 ? dcs::Compare::Absent(key) : dcs::Compare::ModRevisionEquals(key, revision);
    auto txn = dcs.Txn({compare}, {dcs::PutOp{key, *next, 0}});
    if (!txn) return Fail(txn.error());
    if (txn->succeeded) return *next;
  }
  return Fail(ErrorCode::kConflict, "the config key kept changing under us (" +
                                        std::to_string(attempts) +
                                        " compare-and-swap attempts failed): try again");
}

Result<std::string> PatchConfigKey(dcs::Dcs& dcs, const std::string& key,
                                   const std::string& patch_json, const ConfigCheck& check) {
  return CompareAndSwapConfig(
      dcs, key, [&](const std::optional<std::string>& current) -> Result<std::string> {
        if (!current) {
          return Fail(ErrorCode::kNotFound, "the cluster has no config key yet: nothing to patch");
        }
        auto merged = MergeConfigPatch(current, patch_json);
        if (!merged) return Fail(merged.error());
        if (auto valid = ValidateConfigJson(*merged, check); !valid) return Fail(valid.error());
        return merged;
      });
}

Result<std::string> ReplaceConfigKey(dcs::Dcs& dcs, const std::string& key,
                                     const std::string& config_json, const ConfigCheck& check) {
  auto normalized = MergeConfigPatch(std::nullopt, config_json);  // parses; must be an object
  if (!normalized) return Fail(normalized.error());
  if (auto valid = ValidateConfigJson(*normalized, check); !valid) return Fail(valid.error());
  return CompareAndSwapConfig(
      dcs, key,
      [&](const std::optional<std::string>&) -> Result<std::string> { return normalized; });
}

}  // namespace pgwarden::agent
