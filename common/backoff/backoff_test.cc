#include "common/backoff/backoff.h"

#include "gtest/gtest.h"

namespace wb {
namespace {

TEST(Backoff, GrowsWithinBoundsAndResets) {
  Backoff b(absl::Milliseconds(100), absl::Seconds(2), /*seed=*/42);
  absl::Duration max_seen;
  for (int i = 0; i < 50; ++i) {
    absl::Duration d = b.Next();
    EXPECT_GE(d, absl::Milliseconds(50));
    EXPECT_LE(d, absl::Seconds(2));
    max_seen = std::max(max_seen, d);
  }
  EXPECT_GT(max_seen, absl::Milliseconds(800));  // it did grow
  b.Reset();
  EXPECT_LE(b.Next(), absl::Milliseconds(100));
}

TEST(Backoff, JitterDiffersBetweenSeeds) {
  Backoff a(absl::Milliseconds(100), absl::Seconds(30), 1),
      b(absl::Milliseconds(100), absl::Seconds(30), 2);
  int differ = 0;
  for (int i = 0; i < 10; ++i) differ += a.Next() != b.Next();
  EXPECT_GT(differ, 0);
}

}  // namespace
}  // namespace wb
