#!/usr/bin/env bash
# Configures and builds Writeback with CMake + Ninja + ccache.
#   scripts/build.sh [TARGET...]      (default: everything)
# Env: WB_BUILD_DIR (default: build), WB_BUILD_TYPE (default: RelWithDebInfo),
#      WB_CMAKE_ARGS (extra cmake arguments).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${WB_BUILD_DIR:-$root/build}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Paths under the checkout are hashed relative to the build directory, so
# another checkout (a git worktree) reuses the same cache entries.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
if [ ! -f "$build/build.ninja" ]; then
  # shellcheck disable=SC2086
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${WB_BUILD_TYPE:-RelWithDebInfo}" \
    ${WB_CMAKE_ARGS:-} >/dev/null
fi
jobs="${WB_JOBS:-$(nproc)}"
if [ $# -gt 0 ]; then
  ninja -C "$build" -j "$jobs" "$@"
else
  ninja -C "$build" -j "$jobs"
fi
