#!/usr/bin/env bash
# Checks that dependencies point inward (docs/ARCHITECTURE.md):
#   common <- core <- {cluster, dcs, postgres, config} <- {agent, api, proxy, cli} <- main
#   launch (starts local clusters' processes) sits beside the adapters: common and dcs only;
#   demo sits on top, beside main (it drives a whole cluster: it may use every module).
# A module may include only its own headers, those of the layers below it, and system or
# third-party headers. The core in particular may include nothing but common/ and core/,
# and no third-party library at all.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/src"

declare -A allowed=(
  [common]="common"
  [core]="common core"
  [dcs]="common dcs"
  [postgres]="common postgres"
  [config]="common core config"
  [cluster]="common core dcs cluster"
  [api]="common api"
  [agent]="common core dcs cluster postgres config api agent"
  [proxy]="common core dcs cluster config proxy"
  [cli]="common core dcs cluster config api cli"
  [launch]="common dcs launch"
  [demo]="common core dcs cluster postgres config api cli launch demo"
)
status=0
for module in "${!allowed[@]}"; do
  [ -d "$module" ] || continue
  while IFS= read -r line; do
    file="${line%%:*}"
    inc="$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$line")"
    top="${inc%%/*}"
    [ "$top" = "$inc" ] && continue  # same-directory include
    if [[ " ${allowed[$module]} " != *" $top "* ]]; then
      echo "layering: $file includes \"$inc\": $module may not depend on $top"
      status=1
    fi
  done < <(grep -rHn '#include "' "$module" || true)
done
# The core is pure: no third-party headers, no I/O headers.
if grep -rHnE '#include <(nlohmann|yaml-cpp|spdlog|fmt|boost|libpq|CLI|thread|fstream|iostream|mutex|filesystem)' core 2>/dev/null; then
  echo "layering: src/core must not include I/O, thread or third-party headers (above)"
  status=1
fi
[ "$status" = 0 ] && echo "layering: ok"
exit "$status"
