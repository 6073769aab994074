#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer in ./build-fuzz and runs each for SECONDS.
#   scripts/fuzz.sh [--update-corpus] [TARGET|all] [SECONDS]
#     TARGET          task_envelope, result_verify, connector_params,
#                     trust_policy (when built), or all (default)
#     SECONDS         per target, default 60 (-max_total_time)
#     --update-corpus merge what the run found into tests/fuzz/corpus/<target>
#                     (minimised with -merge=1); otherwise the committed
#                     corpus is never changed: each run works on a copy.
# Runs two fuzzers at a time (WB_FUZZ_PARALLEL, default 2). Fails if any
# fuzzer crashed, leaked, timed out or ran out of memory, and prints the
# reproducer's path. Logs and reproducers: build-fuzz/fuzz-runs/<target>/.
# Env: WB_FUZZ_BUILD_DIR (default build-fuzz), WB_JOBS (build jobs, default
# nproc). docs/fuzzing.md has the details.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${WB_FUZZ_BUILD_DIR:-$root/build-fuzz}"
update=0
if [ "${1:-}" = "--update-corpus" ]; then
  update=1
  shift
fi
which="${1:-all}"
seconds="${2:-60}"
parallel="${WB_FUZZ_PARALLEL:-2}"
start=$(date +%s)

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
if [ ! -f "$build/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Check \
    -DWB_FUZZ=ON >/dev/null
fi
if [ "$which" = "all" ]; then
  ninja -C "$build" -j "${WB_JOBS:-$(nproc)}" wb_fuzzers
  targets=()
  for f in "$build"/tests/fuzz/fuzz_*; do
    [ -x "$f" ] && targets+=("$(basename "$f" | sed 's/^fuzz_//')")
  done
else
  ninja -C "$build" -j "${WB_JOBS:-$(nproc)}" "fuzz_$which"
  targets=("$which")
fi
echo "== fuzz: built ${#targets[@]} targets in $(( $(date +%s) - start )) s: ${targets[*]}"

runs="$build/fuzz-runs"
run_one() {
  local t="$1" dir="$runs/$1"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$root/tests/fuzz/corpus/$t/"* "$dir/corpus/" 2>/dev/null || true
  local rc=0
  UBSAN_OPTIONS=print_stacktrace=1 "$build/tests/fuzz/fuzz_$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  echo "$rc" >"$dir/rc"
}

fuzz_start=$(date +%s)
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  echo "== fuzz: $t for $seconds s"
  run_one "$t" &
done
wait

failed=0
for t in "${targets[@]}"; do
  dir="$runs/$t"
  rc="$(cat "$dir/rc" 2>/dev/null || echo 1)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)"
  units="$(find "$dir/corpus" -type f | wc -l)"
  if [ "$rc" != "0" ] || [ -n "$(ls -A "$dir/artifacts")" ]; then
    failed=1
    echo "== fuzz: $t FAILED (exit $rc); log: $dir/log"
    grep -E "ERROR: |runtime error:|fuzz property violated|SUMMARY:" "$dir/log" | head -5 || true
    for a in "$dir"/artifacts/*; do
      [ -e "$a" ] && echo "   reproducer: $a  (replay: $build/tests/fuzz/fuzz_$t $a)"
    done
  else
    echo "== fuzz: $t ok: ${execs:-?} runs, ${rate:-?} execs/s, corpus $units inputs, 0 crashes"
  fi
  if [ "$update" = 1 ] && [ "$rc" = "0" ]; then
    committed="$root/tests/fuzz/corpus/$t"
    merged="$dir/merged"
    rm -rf "$merged"
    mkdir -p "$merged" "$committed"
    # The generated seeds (seed-*) stay; of the rest, only inputs that reach
    # an edge nothing smaller reaches (-use_counters=0: edges, not hit counts,
    # which keeps the committed corpus to a few hundred files).
    cp "$committed"/seed-* "$merged/" 2>/dev/null || true
    "$build/tests/fuzz/fuzz_$t" -merge=1 -use_counters=0 "$merged" "$committed" "$dir/corpus" \
      >"$dir/merge.log" 2>&1
    rm -f "$committed"/*
    cp "$merged"/* "$committed/"
    echo "== fuzz: $t corpus updated: $(find "$committed" -type f | wc -l) inputs"
  fi
done
echo "== fuzz: ran in $(( $(date +%s) - fuzz_start )) s, total $(( $(date +%s) - start )) s"
exit "$failed"
