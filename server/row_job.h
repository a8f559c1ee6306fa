// The rows of one request message on their way through the WorkerPool: the tasks that
// share them out, the results, and the first error.
#ifndef TOKENSAMPLER_SERVER_ROW_JOB_H_
#define TOKENSAMPLER_SERVER_ROW_JOB_H_

#include <atomic>
#include <cstddef>
#include <limits>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "sampler/sampler.h"
#include "server/codec.h"
#include "server/worker_pool.h"

namespace tokensampler::server {

class SamplerService;

// Shared by the tasks of one message; `done` runs exactly once, on the task that
// finishes last. Fill the fields up to `done`, then StartRowJob.
struct RowJob {
  enum class Kind { kSample, kDistribution };

  Kind kind = Kind::kSample;
  SamplerService* service = nullptr;  // counts skipped and in-flight rows
  // Set by the reactor's OnCancel (client cancel, deadline, shutdown); checked before
  // every row.
  std::shared_ptr<const std::atomic<bool>> cancelled;
  const std::vector<DecodedRow>* rows = nullptr;  // alive until `done` returns
  // Indexed like *rows (kSample: samples; kDistribution: distributions).
  std::vector<sampler::SampleResult> samples;
  std::vector<sampler::DistributionResult> distributions;
  // OK; the error of the lowest failing row index ("rows[i]." prefixed); or CANCELLED
  // when the call was cancelled before its rows were sampled.
  absl::AnyInvocable<void(absl::Status)> done;

  std::atomic<size_t> next_row{0};   // the next row a task takes
  std::atomic<size_t> remaining{0};  // tasks still running
  std::atomic<bool> failed{false};
  absl::Mutex mu;
  absl::Status error ABSL_GUARDED_BY(mu);  // of the lowest failing row index
  size_t error_row ABSL_GUARDED_BY(mu) = std::numeric_limits<size_t>::max();

  // One task: takes rows one at a time until none is left, so a slow row holds up
  // only the worker sampling it while the others take the rest. Rows without logits
  // are left alone; after a failure or a cancellation the rest are skipped (counted).
  void Run(sampler::Sampler& sampler);
};

// A job of `kind` over `*rows` (alive until `done` returns) for a call of `service`.
std::shared_ptr<RowJob> MakeRowJob(RowJob::Kind kind, SamplerService* service,
                                   std::shared_ptr<const std::atomic<bool>> cancelled,
                                   const std::vector<DecodedRow>* rows,
                                   absl::AnyInvocable<void(absl::Status)> done);

// Queues min(rows, workers) tasks that share out the job's rows. Returns false, without
// calling `done`, when the queue has no room for them. A single task may run (and call
// `done`) on the calling thread before this returns (WorkerPool::TryRunHere): callers
// must not touch their reactor after a true return. REQUIRES: at least one row.
bool StartRowJob(WorkerPool& pool, std::shared_ptr<RowJob> job);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_ROW_JOB_H_
