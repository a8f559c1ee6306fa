// A fixed set of sampling threads fed from one bounded FIFO queue, and one
// sampler::Sampler per thread (a "slot"), so the pipeline's scratch memory is reused from
// task to task. At most threads() tasks sample at once. gRPC's reaction threads only
// enqueue, unless the pool lets callers run a task themselves (TryRunHere).
#ifndef TOKENSAMPLER_SERVER_WORKER_POOL_H_
#define TOKENSAMPLER_SERVER_WORKER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "sampler/sampler.h"

namespace tokensampler::server {

// Thread-safe.
class WorkerPool {
 public:
  // Runs on a worker thread with that worker's Sampler.
  using Task = absl::AnyInvocable<void(sampler::Sampler&)>;

  // Starts `threads` workers (0 = std::thread::hardware_concurrency(), at least 1).
  // At most `queue_depth` tasks (>= 1) wait for a worker at any time. With
  // `caller_runs`, TryRunHere may run a task on the calling thread.
  WorkerPool(int threads, int queue_depth, bool caller_runs = false);
  // Runs every task already queued, joins the workers, and waits for callers still
  // inside TryRunHere.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Enqueues all of `tasks` or none: returns false (tasks dropped, never run) when they
  // do not fit in the free queue slots.
  bool TrySubmit(std::vector<Task> tasks);

  // Runs `task` now on the calling thread with a free slot's Sampler, and returns true,
  // if the pool was built with caller_runs, is not paused, and has a free slot and no
  // queued task (queued tasks go first); else returns false and leaves `task` alone.
  // Saves the hand-off to a worker thread and back; the slot bound (at most threads()
  // tasks sampling) holds either way.
  bool TryRunHere(Task& task);

  // Stops workers from taking new tasks until Resume(); running tasks finish. Queued
  // tasks keep their slots. For tests that need a full queue or a queued call.
  void Pause();
  void Resume();

  int threads() const { return static_cast<int>(threads_.size()); }
  int queue_depth() const { return queue_depth_; }
  // Tasks waiting for a worker right now.
  size_t queued() const;
  // Tasks TryRunHere ran so far.
  uint64_t ran_here() const;

  // The number of workers a request's rows are split over: min(rows, threads()).
  size_t TasksFor(size_t rows) const;

 private:
  void Run(size_t own_slot);
  // The first free slot from `preferred` on, wrapping; marks it busy.
  // REQUIRES: free_slots_ > 0.
  size_t TakeSlot(size_t preferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int queue_depth_;
  const bool caller_runs_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Slot i's Sampler; worker i uses slot i unless a caller borrowed it (then any free
  // one), so without caller_runs each worker keeps its own Sampler, warm in its cache.
  std::vector<std::unique_ptr<sampler::Sampler>> samplers_;
  std::vector<bool> busy_ ABSL_GUARDED_BY(mu_);
  size_t free_slots_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t ran_here_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

// The worker count for a --workers value: `requested`, or the CPU count when 0.
int ResolveWorkerCount(int requested);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_WORKER_POOL_H_
