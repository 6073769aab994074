#!/usr/bin/env bash
# Installs every Debian 12 package Writeback needs to build, test and run.
# Idempotent: installs only what is missing. Usage: scripts/install-deps.sh [--runtime-only]
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build ccache pkg-config clang-14 clang-format-14 libclang-rt-14-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev librocksdb-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libspdlog-dev libfmt-dev libcli11-dev libyaml-cpp-dev nlohmann-json3-dev
  prometheus-cpp-dev libcpp-httplib-dev
  libcurl4-openssl-dev libpq-dev libhiredis-dev libldap2-dev
)
TEST_PKGS=(
  openssh-server openssh-client passwd sudo util-linux iproute2 nftables
  postgresql-15 redis-server slapd ldap-utils
  python3 python3-grpcio openssl procps
  chromium
)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Never start services on install: tests start every server themselves.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
