#include "controlplane/fleet/events.h"

#include <algorithm>

namespace wb::controlplane {

using writeback::v1::Event;

EventBus::EventBus(const Clock* clock, size_t capacity)
    : clock_(clock), capacity_(std::max<size_t>(1, capacity)) {}

Event EventBus::Publish(Event e) {
  std::vector<Listener> listeners;
  {
    absl::MutexLock l(&mu_);
    e.set_seq(++last_seq_);
    if (e.at_unix_ms() == 0) e.set_at_unix_ms(clock_->NowUnixMs());
    ring_.push_back(e);
    while (ring_.size() > capacity_) ring_.pop_front();
    listeners = listeners_;
  }
  // Outside the lock: a listener may read the bus.
  for (const auto& fn : listeners) fn(e);
  return e;
}

std::vector<Event> EventBus::Since(uint64_t after_seq, size_t max, uint64_t* dropped) const {
  absl::MutexLock l(&mu_);
  std::vector<Event> out;
  uint64_t first_held = ring_.empty() ? last_seq_ + 1 : ring_.front().seq();
  if (dropped != nullptr) *dropped = first_held > after_seq + 1 ? first_held - after_seq - 1 : 0;
  if (ring_.empty() || after_seq >= last_seq_) return out;
  // Events are contiguous by seq: index of after_seq + 1.
  size_t start = after_seq + 1 > first_held ? static_cast<size_t>(after_seq + 1 - first_held) : 0;
  for (size_t i = start; i < ring_.size() && out.size() < max; ++i) out.push_back(ring_[i]);
  return out;
}

std::vector<Event> EventBus::Last(size_t n) const {
  absl::MutexLock l(&mu_);
  const size_t start = ring_.size() > n ? ring_.size() - n : 0;
  return std::vector<Event>(ring_.begin() + static_cast<std::ptrdiff_t>(start), ring_.end());
}

bool EventBus::WaitNewer(uint64_t after_seq, absl::Duration timeout) const {
  absl::MutexLock l(&mu_);
  auto ready = [&]()
                   ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || last_seq_ > after_seq; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  return !closed_ && last_seq_ > after_seq;
}

uint64_t EventBus::last_seq() const {
  absl::MutexLock l(&mu_);
  return last_seq_;
}

void EventBus::Close() {
  absl::MutexLock l(&mu_);
  closed_ = true;
}

bool EventBus::closed() const {
  absl::MutexLock l(&mu_);
  return closed_;
}

void EventBus::AddListener(Listener fn) {
  absl::MutexLock l(&mu_);
  listeners_.push_back(std::move(fn));
}

}  // namespace wb::controlplane
