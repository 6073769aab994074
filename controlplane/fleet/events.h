// The live event feed of the control plane (wbctl events tail, decision
// watch, the dashboard): a bounded in-memory ring of writeback.v1.Event.
//
// Events describe durable changes (they are published after the store write
// succeeded) but the feed itself is not durable: it starts empty when the
// process starts, keeps the last `capacity` events, and a reader that falls
// behind by more than that is told how many it missed. The durable history
// is the store (and the audit chain).
//
// Thread-safe. Listeners run synchronously inside Publish, on the
// publishing thread, in registration order: they must be quick, must not
// block and must not publish.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "writeback/v1/admin_service.pb.h"

namespace wb::controlplane {

class EventBus {
 public:
  // `clock` must outlive the bus.
  explicit EventBus(const Clock* clock, size_t capacity = 10000);

  // Stamps seq (and at_unix_ms if 0), keeps the event, runs the listeners
  // and wakes waiting readers. Returns the stamped event. After Close the
  // event is still stamped and kept.
  writeback::v1::Event Publish(writeback::v1::Event e);

  // Events with seq > after_seq still held, oldest first, at most `max`.
  // `*dropped` (if not null) is set to how many events after after_seq are
  // no longer held.
  std::vector<writeback::v1::Event> Since(uint64_t after_seq, size_t max,
                                          uint64_t* dropped = nullptr) const;
  // The last `n` events held, oldest first.
  std::vector<writeback::v1::Event> Last(size_t n) const;

  // Blocks until an event with seq > after_seq exists (true), or the bus is
  // closed or `timeout` passed (false).
  bool WaitNewer(uint64_t after_seq, absl::Duration timeout) const;

  uint64_t last_seq() const;
  // Wakes every waiter; WaitNewer returns false from now on.
  void Close();
  bool closed() const;

  using Listener = std::function<void(const writeback::v1::Event&)>;
  void AddListener(Listener l);

 private:
  const Clock* const clock_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<writeback::v1::Event> ring_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Listeners are only added before events flow; read without the lock
  // after that would race, so they are guarded too.
  std::vector<Listener> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wb::controlplane
