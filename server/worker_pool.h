// A fixed set of sampling threads fed from one bounded FIFO queue. Each worker owns one
// sampler::Sampler for its lifetime, so the pipeline's scratch memory is reused from
// task to task. gRPC's reaction threads only enqueue; they never sample.
#ifndef TOKENSAMPLER_SERVER_WORKER_POOL_H_
#define TOKENSAMPLER_SERVER_WORKER_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "sampler/sampler.h"

namespace tokensampler::server {

// Thread-safe.
class WorkerPool {
 public:
  // Runs on a worker thread with that worker's Sampler.
  using Task = absl::AnyInvocable<void(sampler::Sampler&)>;

  // Starts `threads` workers (0 = std::thread::hardware_concurrency(), at least 1).
  // At most `queue_depth` tasks (>= 1) wait for a worker at any time.
  WorkerPool(int threads, int queue_depth);
  // Runs every task already queued, then joins the workers.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Enqueues all of `tasks` or none: returns false (tasks dropped, never run) when they
  // do not fit in the free queue slots.
  bool TrySubmit(std::vector<Task> tasks);

  // Stops workers from taking new tasks until Resume(); running tasks finish. Queued
  // tasks keep their slots. For tests that need a full queue or a queued call.
  void Pause();
  void Resume();

  int threads() const { return static_cast<int>(threads_.size()); }
  int queue_depth() const { return queue_depth_; }
  // Tasks waiting for a worker right now.
  size_t queued() const;

  // The number of workers a request's rows are split over: min(rows, threads()).
  size_t TasksFor(size_t rows) const;

 private:
  void Run();

  const int queue_depth_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool paused_ = false;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The worker count for a --workers value: `requested`, or the CPU count when 0.
int ResolveWorkerCount(int requested);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_WORKER_POOL_H_
