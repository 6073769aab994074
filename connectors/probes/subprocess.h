// Runs a program for a connector: posix_spawn of an absolute path with an
// argument vector and an explicit environment, never a shell and never a
// PATH search. stdin is /dev/null; stdout and stderr are captured (bounded);
// every other descriptor of the agent is closed in the child; the child gets
// its own process group, which is killed (SIGKILL) when the time limit
// passes.
//
// Thread-safety: free function, safe to call from several threads at once.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace wb::connectors::probes {

struct SubprocessOptions {
  // Wall-clock limit for the whole run (measured on the monotonic clock).
  absl::Duration timeout = absl::Seconds(60);
  // The child's entire environment, "NAME=value" each. The agent's own
  // environment is never passed on.
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
  // Per stream; bytes beyond are read and discarded (and `truncated` set).
  size_t max_output_bytes = 1 << 20;
};

struct SubprocessResult {
  int exit_code = -1;  // exit status, or 128 + signal number
  bool timed_out = false;
  bool truncated = false;
  std::string out;
  std::string err;
};

// Errors: INVALID_ARGUMENT if argv is empty, argv[0] is not absolute, or any
// argument or environment entry contains a NUL byte (it would silently cut
// the argument short); an errno status if the program could not be
// started. A non-zero exit or a timeout is a result, not an error.
absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                               const SubprocessOptions& options = {});

// RunSubprocess, and an error unless the program exited 0 within the time
// limit: INTERNAL naming the program, the exit code and the first bytes of
// its stderr (printable ASCII only).
absl::StatusOr<SubprocessResult> RunToolOk(const std::vector<std::string>& argv,
                                           absl::Duration timeout);

// `s` with every byte outside printable ASCII replaced by '?', cut to
// max_len bytes: safe to put in evidence (valid UTF-8, no terminal escapes).
std::string PrintableAscii(absl::string_view s, size_t max_len = 1024);

// A private directory (mode 0700) for a tool's input files, removed with
// everything in it when the object dies. Move-only.
class ScratchDir {
 public:
  // Creates "<parent>/<prefix>.XXXXXX"; parent "" means $TMPDIR or /tmp.
  static absl::StatusOr<ScratchDir> Make(const std::string& parent, const std::string& prefix);
  ScratchDir(ScratchDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ScratchDir& operator=(ScratchDir&&) = delete;
  ScratchDir(const ScratchDir&) = delete;
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

// The time left until `deadline` on `now`'s clock, capped at `cap` and at
// least zero: for turning a CallContext deadline into a timeout.
absl::Duration TimeLeft(absl::Time deadline, absl::Time now, absl::Duration cap);

}  // namespace wb::connectors::probes
