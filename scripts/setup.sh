#!/usr/bin/env bash
# Installs everything pgwarden needs to build, test and run its demo on Debian 12.
# Idempotent: installs only what is missing. Uses sudo when not run as root.
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config ccache
  libboost1.81-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libcli11-dev libexpected-dev libpq-dev libgtest-dev libgmock-dev
  # runtime: PostgreSQL 15 server programs and etcd
  postgresql-15 postgresql-client-15 etcd-server etcd-client
  # tests and tools
  iproute2 procps
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's packages start a default cluster and etcd as services on install (where an init
# system runs). pgwarden's tests and demo start their own servers on free ports and do not
# use those; nothing here depends on them running or not.
echo "setup: all dependencies present"
