#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite.
#   scripts/test.sh            the suite CI runs
#   scripts/test.sh -R REGEX   only matching tests (passed to ctest; no fuzzing)
# Env: WB_BUILD_DIR (default: build-check), WB_BUILD_TYPE (default: Check,
#      -O1 without debug info: half the compile time of RelWithDebInfo),
#      WB_TEST_JOBS (ctest parallelism, default 2), WB_FUZZ_SECONDS (each
#      fuzzer's run after ctest, default 60; 0 skips; docs/fuzzing.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$(date +%s)

export WB_BUILD_DIR="${WB_BUILD_DIR:-$root/build-check}"
export WB_BUILD_TYPE="${WB_BUILD_TYPE:-Check}"
bash scripts/install-deps.sh
bash scripts/build.sh
echo "== built in $(( $(date +%s) - start )) s"

echo "== ctest"
cd "$WB_BUILD_DIR"
ctest --output-on-failure --timeout 600 -j "${WB_TEST_JOBS:-2}" "$@"
cd "$root"
if [ $# -eq 0 ] && [ "${WB_FUZZ_SECONDS:-60}" != "0" ]; then
  echo "== fuzz"
  fuzz_start=$(date +%s)
  bash scripts/fuzz.sh all "${WB_FUZZ_SECONDS:-60}"
  echo "== fuzzed in $(( $(date +%s) - fuzz_start )) s"
fi
echo "== total $(( $(date +%s) - start )) s"
