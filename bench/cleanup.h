// Last-resort cleanup for writeback-bench: the child processes and
// temporary directories alive right now, so that a run stopped by its
// deadline or by a signal still leaves nothing behind. Thread-safe.
#pragma once

#include <sys/types.h>

#include <string>

namespace wb::bench {

void RegisterChild(pid_t pid);
void UnregisterChild(pid_t pid);
void RegisterDir(const std::string& dir);
void UnregisterDir(const std::string& dir);
// SIGKILLs and reaps every registered child, removes every registered
// directory, and exits with `code`.
[[noreturn]] void CleanupAndExit(int code);

}  // namespace wb::bench
