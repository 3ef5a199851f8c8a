#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds pgwarden and runs the whole test suite:
#   1. a normal build, then every test (unit + integration against real etcd / PostgreSQL 15);
#   2. a build with AddressSanitizer + UndefinedBehaviorSanitizer, then the unit tests again.
# Usage: scripts/test.sh [--unit | --integration] [--no-sanitize]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

label=""
sanitize=1
for arg in "$@"; do
  case "$arg" in
    --unit) label="unit" ;;
    --integration) label="integration" ;;
    --no-sanitize) sanitize=0 ;;
    *) echo "usage: $0 [--unit | --integration] [--no-sanitize]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh

jobs="$(nproc)"
# Let clones in other folders (CI's) reuse the compiler cache: paths under the root are
# hashed relative to it.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
started=$(date +%s)
echo "== build (Release, -O2)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"

echo "== tests${label:+ ($label)}"
ctest --test-dir build --output-on-failure -j "$jobs" ${label:+-L "$label"}

if [ "$sanitize" = 1 ] && [ "$label" != "integration" ]; then
  echo "== build (ASan + UBSan), unit tests only"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DPGWARDEN_SANITIZE=ON >/dev/null
  cmake --build build-asan -j "$jobs" --target unit-tests
  echo "== unit tests under ASan + UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -L unit
fi
echo "== all done in $(( $(date +%s) - started )) s"
