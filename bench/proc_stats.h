// CPU time and resident memory of a process, read from /proc (Linux).
// Thread-safe (no state).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace wb::bench {

struct ProcSample {
  double cpu_seconds = 0;  // utime + stime of every thread, reaped children excluded
  int64_t rss_bytes = 0;   // VmRSS
};

// `pid` = 0 reads the calling process.
absl::StatusOr<ProcSample> ReadProc(pid_t pid);

}  // namespace wb::bench
