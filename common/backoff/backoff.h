// Jittered exponential backoff ("full jitter"): the n-th delay is uniform in
// [initial/2, min(max, initial * 2^n)]. Not thread-safe; one per reconnect loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace wb {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed = std::random_device{}())
      : initial_(initial), max_(max), rng_(seed) {}

  absl::Duration Next() {
    absl::Duration ceiling = initial_;
    for (int i = 0; i < attempt_ && ceiling < max_; ++i) ceiling *= 2;
    ceiling = std::min(ceiling, max_);
    if (attempt_ < 62) ++attempt_;
    const int64_t lo = absl::ToInt64Milliseconds(initial_) / 2;
    const int64_t hi = std::max(lo, absl::ToInt64Milliseconds(ceiling));
    std::uniform_int_distribution<int64_t> dist(lo, hi);
    return absl::Milliseconds(dist(rng_));
  }
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  absl::Duration initial_, max_;
  std::mt19937_64 rng_;
  int attempt_ = 0;
};

}  // namespace wb
