// Injected time. Production code takes a Clock*; tests pass a FakeClock.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace wb {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  int64_t NowUnixMs() const { return absl::ToUnixMillis(Now()); }
};

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // Process-wide instance; never destroyed.
  static SystemClock* Get() {
    static auto* c = new SystemClock();
    return c;
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time t = absl::FromUnixSeconds(1'800'000'000))
      : ms_(absl::ToUnixMillis(t)) {}
  absl::Time Now() const override { return absl::FromUnixMillis(ms_.load()); }
  void Set(absl::Time t) { ms_.store(absl::ToUnixMillis(t)); }
  void Advance(absl::Duration d) { ms_.fetch_add(absl::ToInt64Milliseconds(d)); }

 private:
  std::atomic<int64_t> ms_;
};

}  // namespace wb
