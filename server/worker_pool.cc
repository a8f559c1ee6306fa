#include "server/worker_pool.h"

#include <algorithm>
#include <utility>

namespace tokensampler::server {

int ResolveWorkerCount(int requested) {
  if (requested > 0) return requested;
  const unsigned cpus = std::thread::hardware_concurrency();
  return cpus == 0 ? 1 : static_cast<int>(cpus);
}

WorkerPool::WorkerPool(int threads, int queue_depth)
    : queue_depth_(std::max(queue_depth, 1)) {
  const int n = ResolveWorkerCount(threads);
  threads_.reserve(n);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Run(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    paused_ = false;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

bool WorkerPool::TrySubmit(std::vector<Task> tasks) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() + tasks.size() > static_cast<size_t>(queue_depth_)) return false;
    for (Task& task : tasks) queue_.push_back(std::move(task));
  }
  if (tasks.size() == 1) {
    cv_.notify_one();
  } else {
    cv_.notify_all();
  }
  return true;
}

void WorkerPool::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = true;
}

void WorkerPool::Resume() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t WorkerPool::TasksFor(size_t rows) const {
  return std::min(rows, threads_.size());
}

void WorkerPool::Run() {
  sampler::Sampler sampler;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return (!paused_ && !queue_.empty()) || (stopping_ && queue_.empty()); });
    if (queue_.empty()) return;  // stopping, nothing left
    Task task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task(sampler);
    task = nullptr;  // release captured state outside the lock
    lock.lock();
  }
}

}  // namespace tokensampler::server
