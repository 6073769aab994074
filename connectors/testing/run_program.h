// Runs a helper program from a connector test (ssh-keygen, psql, ...):
// posix_spawnp with an argument vector, never a shell. stdin is /dev/null;
// stdout and stderr are captured. For tests only (blocks until the program
// exits). Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace wb::connectors::testing {

struct ProgramResult {
  int exit_code = -1;  // exit status, or 128 + signal number
  std::string out;
  std::string err;
};

// argv[0] is looked up in PATH if it has no '/'. Errors only if the program
// could not be started; a non-zero exit is reported in exit_code.
absl::StatusOr<ProgramResult> RunProgram(const std::vector<std::string>& argv);

// RunProgram, and an error (with stderr) unless it exited 0. Returns stdout.
absl::StatusOr<std::string> RunProgramOk(const std::vector<std::string>& argv);

}  // namespace wb::connectors::testing
