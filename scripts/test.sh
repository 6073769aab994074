#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite.
#   scripts/test.sh            the suite CI runs
#   scripts/test.sh -R REGEX   only matching tests (passed to ctest)
# Env: WB_BUILD_DIR, WB_TEST_JOBS (ctest parallelism, default 2).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$(date +%s)

bash scripts/install-deps.sh
bash scripts/build.sh
build="${WB_BUILD_DIR:-$root/build}"

echo "== ctest"
cd "$build"
ctest --output-on-failure --timeout 600 -j "${WB_TEST_JOBS:-2}" "$@"
echo "== total $(( $(date +%s) - start )) s"
