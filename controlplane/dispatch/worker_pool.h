// A fixed set of threads running queued jobs in FIFO order. Jobs may block
// (store writes); they must not wait for other jobs of the same pool.
// Thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace wb::controlplane {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  // Calls Shutdown().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`. After Shutdown() has returned, runs it on the calling
  // thread instead, so that no job is ever lost.
  void Schedule(std::function<void()> job);

  // Runs every queued job (including jobs they schedule), then joins the
  // threads. Idempotent.
  void Shutdown();

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace wb::controlplane
