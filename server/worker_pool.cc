#include "server/worker_pool.h"

#include <algorithm>
#include <utility>

namespace tokensampler::server {

int ResolveWorkerCount(int requested) {
  if (requested > 0) return requested;
  const unsigned cpus = std::thread::hardware_concurrency();
  return cpus == 0 ? 1 : static_cast<int>(cpus);
}

WorkerPool::WorkerPool(int threads, int queue_depth, bool caller_runs)
    : queue_depth_(std::max(queue_depth, 1)), caller_runs_(caller_runs) {
  const int n = ResolveWorkerCount(threads);
  for (int i = 0; i < n; ++i) samplers_.push_back(std::make_unique<sampler::Sampler>());
  {
    absl::MutexLock lock(&mu_);
    busy_.assign(n, false);
    free_slots_ = n;
  }
  threads_.reserve(n);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this, i] { Run(i); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    paused_ = false;
  }
  cv_.SignalAll();
  for (std::thread& t : threads_) t.join();
  // A caller may still be giving its slot back (its task can finish the RPC, and so let
  // the server shut down, before TryRunHere returns).
  absl::MutexLock lock(&mu_);
  while (free_slots_ != busy_.size()) cv_.Wait(&mu_);
}

bool WorkerPool::TrySubmit(std::vector<Task> tasks) {
  {
    absl::MutexLock lock(&mu_);
    if (queue_.size() + tasks.size() > static_cast<size_t>(queue_depth_)) return false;
    for (Task& task : tasks) queue_.push_back(std::move(task));
  }
  if (tasks.size() == 1) {
    cv_.Signal();
  } else {
    cv_.SignalAll();
  }
  return true;
}

bool WorkerPool::TryRunHere(Task& task) {
  if (!caller_runs_) return false;
  size_t slot;
  {
    absl::MutexLock lock(&mu_);
    if (paused_ || stopping_ || !queue_.empty() || free_slots_ == 0) return false;
    slot = TakeSlot(0);
    ++ran_here_;
  }
  task(*samplers_[slot]);
  task = nullptr;  // release captured state before the slot
  absl::MutexLock lock(&mu_);
  busy_[slot] = false;
  ++free_slots_;
  // A task queued meanwhile may be waiting for this slot, and the destructor waits for
  // every slot. Notified under the lock: once it is released the pool may be gone.
  if (!queue_.empty() || stopping_) cv_.SignalAll();
  return true;
}

void WorkerPool::Pause() {
  absl::MutexLock lock(&mu_);
  paused_ = true;
}

void WorkerPool::Resume() {
  {
    absl::MutexLock lock(&mu_);
    paused_ = false;
  }
  cv_.SignalAll();
}

size_t WorkerPool::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

uint64_t WorkerPool::ran_here() const {
  absl::MutexLock lock(&mu_);
  return ran_here_;
}

size_t WorkerPool::TasksFor(size_t rows) const {
  return std::min(rows, threads_.size());
}

size_t WorkerPool::TakeSlot(size_t preferred) {
  size_t slot = preferred;
  while (busy_[slot]) slot = (slot + 1) % busy_.size();
  busy_[slot] = true;
  --free_slots_;
  return slot;
}

void WorkerPool::Run(size_t own_slot) {
  absl::MutexLock lock(&mu_);
  while (true) {
    while (!((!paused_ && !queue_.empty() && free_slots_ > 0) ||
             (stopping_ && queue_.empty()))) {
      cv_.Wait(&mu_);
    }
    if (queue_.empty()) return;  // stopping, nothing left
    Task task = std::move(queue_.front());
    queue_.pop_front();
    const size_t slot = TakeSlot(own_slot);
    mu_.Unlock();
    task(*samplers_[slot]);
    task = nullptr;  // release captured state outside the lock
    mu_.Lock();
    busy_[slot] = false;
    ++free_slots_;
  }
}

}  // namespace tokensampler::server
