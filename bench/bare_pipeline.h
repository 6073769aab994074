// The bare pipeline of ../shared/perf-limits (its README): built once with
// its own build.sh in a copy under `build_dir` (the shared sources are not
// touched), then its end-to-end mode run once on free loopback ports —
// sign, group-committed synced RocksDB write, mTLS push to 100 agents,
// agent verify, result write — and its RESULT line parsed. The denominator
// of the throughput goal P1.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace wb::bench {

struct BareResult {
  double msgs_per_s = 0;            // tasks/s end to end
  double server_cpu_us_per_op = 0;  // server CPU per task
  double client_cpu_us_per_op = 0;  // agents' CPU per task
  std::string result_line;          // the RESULT line as printed
  std::string command;              // what ran (for the report)
};

// `src_dir` holds build.sh and src/; `build_dir` is where the copy and its
// binaries live (kept between runs); `work_dir` holds the server's data and
// logs (removed by the caller). Every child is reaped before returning.
absl::StatusOr<BareResult> RunBarePipeline(const std::string& src_dir, const std::string& build_dir,
                                           const std::string& work_dir, absl::Duration timeout);

// Parses "RESULT k=v k=v ..." (the first such line in `text`).
absl::StatusOr<BareResult> ParseBareResult(const std::string& text);

}  // namespace wb::bench
