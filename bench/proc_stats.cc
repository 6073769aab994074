#include "bench/proc_stats.h"

#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace wb::bench {

absl::StatusOr<ProcSample> ReadProc(pid_t pid) {
  const std::string dir = pid == 0 ? "/proc/self" : absl::StrCat("/proc/", pid);
  std::ifstream stat(dir + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return absl::NotFoundError(absl::StrCat(dir, "/stat: unreadable"));
  // The command name (field 2) may hold spaces: fields count from the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return absl::InternalError(absl::StrCat(dir, "/stat: malformed"));
  std::vector<std::string> f = absl::StrSplit(line.substr(close + 2), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state); utime is field 14, stime field 15.
  int64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) || !absl::SimpleAtoi(f[12], &stime)) {
    return absl::InternalError(absl::StrCat(dir, "/stat: no utime/stime"));
  }
  ProcSample s;
  s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status(dir + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream in(line.substr(6));
      int64_t kb = 0;
      in >> kb;
      s.rss_bytes = kb * 1024;
    }
  }
  if (pid == 0) {
    // Finer than clock ticks for the calling process.
    timespec ts{};
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) {
      s.cpu_seconds = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    }
  }
  return s;
}

}  // namespace wb::bench
