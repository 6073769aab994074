// Test support: child processes for real servers started by tests
// (PostgreSQL, redis-server, slapd). fork + execve with an argument vector,
// never a shell. For tests only.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace wb::connectors::testing {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is an absolute path
  // Environment of the child ("K=V"); empty: PATH=/usr/bin:/bin, LANG=C.UTF-8.
  std::vector<std::string> env;
  std::string log_file;     // stdout and stderr are appended here (required)
  std::string working_dir;  // "" = unchanged
  // Run as this user (the parent must be root); nullopt = as the parent.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
};

// A child process, killed (SIGKILL) and reaped by the destructor if still
// running. Not thread-safe.
class ChildProcess {
 public:
  static absl::StatusOr<ChildProcess> Spawn(const SpawnOptions& opts);
  ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_), status_(o.status_) { o.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it if it has).
  bool Running();
  // Exit code (or 128 + signal) once exited; waits up to `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // Sends `sig`, waits up to `grace` for the exit, then SIGKILL. Returns the
  // exit code.
  int Stop(int sig, absl::Duration grace);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  int status_ = -1;  // exit code once reaped
};

// Runs a program to completion (as `uid`/`gid` if given) and returns its
// output; an error naming the program and its output unless it exits 0.
absl::StatusOr<std::string> RunToCompletion(SpawnOptions opts,
                                            absl::Duration timeout = absl::Seconds(60));

// Runs `argv` (no shell) to completion within `timeout`, its stdout and
// stderr written to `log` (replaced); whatever it exits with.
struct ProgramRun {
  int code = -1;    // exit code; -1: did not start, or killed at the timeout
  std::string out;  // the log: stdout and stderr (or why it did not start)
};
ProgramRun RunLogged(const std::vector<std::string>& argv, const std::string& log,
                     absl::Duration timeout = absl::Seconds(60));

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and
// released). Servers that cannot take port 0 use it; callers retry on a
// collision.
absl::StatusOr<int> PickFreePort();

// uid/gid of a system user (e.g. "postgres").
absl::StatusOr<std::pair<uid_t, gid_t>> LookupUser(const std::string& name);

// The whole file, or "" if it cannot be read (for error messages).
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace wb::connectors::testing
