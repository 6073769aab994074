// Named crash points for fault-injection tests (docs/delivery.md lists them).
//
//   WB_CRASH_POINT("cp.after_decision_write");
//
// Inert unless the environment variable WRITEBACK_CRASH_POINTS names the
// point when the process first reaches any crash point (the variable is read
// once per process). Its value is a comma-separated list of `name` (crash on
// the first hit) or `name:N` (crash on the N-th hit, N >= 1). On a crash the
// process writes one line "crash point <name> hit" to stderr and kills itself
// with SIGKILL: no destructor, no flush, no atexit handler runs, exactly as if
// the machine had lost power at that line (for the process; the kernel still
// holds what was written, which is what fsync-on-return guarantees anyway).
//
// Compiled in always; the cost when disabled is one atomic load per hit.
// Thread-safe.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace wb::faults {

inline constexpr char kEnvVar[] = "WRITEBACK_CRASH_POINTS";

// A parsed WRITEBACK_CRASH_POINTS value. Not copyable (hit counters).
class CrashPlan {
 public:
  // Parses `spec`; malformed entries (empty name, N not a positive integer)
  // are ignored, so a typo never crashes a process by accident.
  explicit CrashPlan(absl::string_view spec) {
    for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
      item = absl::StripAsciiWhitespace(item);
      uint64_t n = 1;
      if (size_t colon = item.find(':'); colon != absl::string_view::npos) {
        if (!absl::SimpleAtoi(item.substr(colon + 1), &n) || n == 0) continue;
        item = item.substr(0, colon);
      }
      if (item.empty()) continue;
      points_.push_back(std::make_unique<Point>(std::string(item), n));
    }
  }
  CrashPlan(const CrashPlan&) = delete;
  CrashPlan& operator=(const CrashPlan&) = delete;

  bool empty() const { return points_.empty(); }

  // Counts a hit of `name`; true when this hit is the one to crash on.
  bool Hit(absl::string_view name) {
    for (auto& p : points_) {
      if (p->name == name) return p->hits.fetch_add(1) + 1 == p->crash_on;
    }
    return false;
  }

 private:
  struct Point {
    Point(std::string n, uint64_t c) : name(std::move(n)), crash_on(c) {}
    std::string name;
    uint64_t crash_on;
    std::atomic<uint64_t> hits{0};
  };
  std::vector<std::unique_ptr<Point>> points_;
};

// The process's plan, from the environment (read on first use, never freed).
inline CrashPlan& ProcessPlan() {
  static CrashPlan* plan = [] {
    const char* v = std::getenv(kEnvVar);
    return new CrashPlan(v == nullptr ? "" : v);
  }();
  return *plan;
}

// Kills the process abruptly if the plan says so.
inline void CrashPoint(absl::string_view name) {
  CrashPlan& plan = ProcessPlan();
  if (plan.empty() || !plan.Hit(name)) return;
  std::string line = "crash point ";
  line.append(name.data(), name.size());
  line += " hit\n";
  (void)!write(STDERR_FILENO, line.data(), line.size());
  kill(getpid(), SIGKILL);
  _exit(137);  // not reached
}

}  // namespace wb::faults

#define WB_CRASH_POINT(name) ::wb::faults::CrashPoint(name)
