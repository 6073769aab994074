#include "bench/cleanup.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>

namespace wb::bench {
namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}
std::set<pid_t>& Children() {
  static std::set<pid_t> s;
  return s;
}
std::set<std::string>& Dirs() {
  static std::set<std::string> s;
  return s;
}

}  // namespace

void RegisterChild(pid_t pid) {
  std::lock_guard<std::mutex> l(Mu());
  if (pid > 0) Children().insert(pid);
}
void UnregisterChild(pid_t pid) {
  std::lock_guard<std::mutex> l(Mu());
  Children().erase(pid);
}
void RegisterDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(Mu());
  Dirs().insert(dir);
}
void UnregisterDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(Mu());
  Dirs().erase(dir);
}

void CleanupAndExit(int code) {
  std::lock_guard<std::mutex> l(Mu());
  for (pid_t pid : Children()) {
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
  }
  for (const auto& d : Dirs()) {
    std::error_code ec;
    std::filesystem::remove_all(d, ec);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);
}

}  // namespace wb::bench
