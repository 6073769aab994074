// Polling with a deadline, for tests: never sleep for a fixed time to wait
// for something; poll until it holds or the deadline passes.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace wb::testing {

// Returns true as soon as `cond()` is true; false if `timeout` passes first.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20),
                    std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace wb::testing
