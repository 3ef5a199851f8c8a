#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds pgwarden and runs its main job.
# `pgwarden demo` (docs/demo.md) starts etcd, three PostgreSQL members with their agents and the
# proxy on loopback, runs a live application through a switchover and a host crash, prints a
# summary and stops everything. Arguments are passed on (e.g. --keep, --events crash).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
echo "== building pgwarden"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target pgwarden
if ./build/src/pgwarden demo --help >/dev/null 2>&1; then
  exec ./build/src/pgwarden demo "$@"
fi
./build/src/pgwarden --version
./build/src/pgwarden --help
