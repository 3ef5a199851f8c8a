// `pgwarden edit-config`, the part without I/O: the merge patch built from the command line
// (--set key.path=value, --pg name=value, --apply YAML), as patronictl edit-config builds it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace pgwarden::cli {

struct EditConfigArgs {
  std::vector<std::string> set;          // "key.path=value"; the value is YAML ("null" deletes)
  std::vector<std::string> pg;           // "name=value": postgresql.parameters.<name>
  std::optional<std::string> apply;      // YAML text of a patch (a file's content, or stdin's)
  std::string apply_source = "--apply";  // names the YAML in messages
};

// The JSON merge patch the arguments describe: --apply first, then each --pg, then each --set
// (later ones win). kInvalidArgument naming the argument that is malformed, or when the
// arguments describe no change at all.
Result<std::string> BuildConfigPatch(const EditConfigArgs& args);

}  // namespace pgwarden::cli
