#include "controlplane/dispatch/worker_pool.h"

namespace wb::controlplane {

WorkerPool::WorkerPool(int threads) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() { Shutdown(); }

void WorkerPool::Schedule(std::function<void()> job) {
  {
    absl::MutexLock l(&mu_);
    if (!joined_) {
      jobs_.push_back(std::move(job));
      return;
    }
  }
  job();
}

void WorkerPool::Loop() {
  while (true) {
    std::function<void()> job;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !jobs_.empty() || stopping_; };
      mu_.Await(absl::Condition(&ready));
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void WorkerPool::Shutdown() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
  std::deque<std::function<void()>> rest;
  {
    absl::MutexLock l(&mu_);
    joined_ = true;
    rest.swap(jobs_);
  }
  // Jobs queued after the last worker looked (none in practice).
  for (auto& job : rest) job();
}

}  // namespace wb::controlplane
