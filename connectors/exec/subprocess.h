// Runs one program to completion for the exec connector: fork + execve with
// an argument vector and an explicit environment (never a shell, never PATH
// lookup), its own process group, optional user/group switch, stdin fed from
// a buffer, stdout captured up to a cap, stderr kept up to a cap, and a
// timeout.
//
// Process-group discipline: the child calls setpgid(0, 0) (the parent does
// too, to close the race), so the program and everything it starts share one
// group. On timeout or oversized output the whole group gets SIGKILL. When
// the program exits on its own, any process it left behind in its group is
// killed as well, before the program is reaped (so the group id cannot have
// been reused). A process that leaves the group (setsid/setpgid) escapes
// this; the exec contract forbids it (docs/connectors/exec.md).
//
// The program gets SIGKILL when the thread that started it ends (prctl
// PR_SET_PDEATHSIG), so an agent killed during an apply leaves no program
// running on: after the restart, the re-run of the interrupted apply
// (agent/executor) cannot race the old one. Only the program itself is
// signalled, not processes it started.
//
// Thread-safety: RunSubprocess may be called from several threads at once.
// It blocks SIGPIPE in the calling thread while it writes stdin.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace wb::connectors::exec {

struct SubprocessSpec {
  std::string program;            // absolute path, executed as is
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "NAME=value"; the complete environment
  std::string stdin_data;         // written to stdin, then stdin is closed
  std::string working_dir = "/";
  // When set, the child switches to this user/group (setgroups to just the
  // group, setgid, setuid) before execve. Needs the caller to be root.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  absl::Duration timeout = absl::Seconds(30);
  size_t max_stdout = 1 << 20;  // more than this ends the run (kOutputTooLarge)
  size_t max_stderr = 4096;     // kept; the rest is read and dropped
};

struct SubprocessResult {
  enum class End {
    kExited,          // exit_code is valid
    kSignaled,        // term_signal is valid
    kTimedOut,        // killed (with its group) at the timeout
    kOutputTooLarge,  // killed (with its group) once stdout passed max_stdout
  };
  End end = End::kExited;
  int exit_code = -1;
  int term_signal = 0;
  std::string out;             // at most max_stdout bytes
  std::string err;             // at most max_stderr bytes
  bool err_truncated = false;  // stderr had more than max_stderr bytes
};

// Errors only when the program could not be started (fork, pipes, the user
// switch or execve failed); everything after a successful execve is reported
// in the result.
absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessSpec& spec);

// "exited with status 3", "killed by signal 9", "timed out after 2s", ...
std::string DescribeEnd(const SubprocessResult& r, const SubprocessSpec& spec);

}  // namespace wb::connectors::exec
