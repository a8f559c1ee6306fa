// A request message's work on the WorkerPool, in units (Sample and GetDistribution: one
// per row; Verify: one per (row, position)): the tasks that share the units out, the
// cancellation check, the rows in flight, and the one call of `done`.
#ifndef TOKENSAMPLER_SERVER_ROW_JOB_H_
#define TOKENSAMPLER_SERVER_ROW_JOB_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "sampler/sampler.h"
#include "sampler/verify.h"
#include "server/codec.h"
#include "server/worker_pool.h"

namespace tokensampler::server {

class SamplerService;

// Shared by the tasks of one message. Each task takes the next unit until none is left,
// so a slow unit holds up only the worker running it while the others take the rest.
// Cancellation (the reactor's OnCancel) is checked before every unit; units not run
// because of it are counted as skipped. `done` runs exactly once, on the task that
// finishes last, with the subclass's Outcome(), or CANCELLED when that is OK but the
// call was cancelled. A subclass says what a unit is and which units are still needed.
class RowJob {
 public:
  // What one task keeps from unit to unit, on its worker.
  struct Task {
    explicit Task(sampler::Sampler& worker_sampler)
        : sampler(worker_sampler), target(&worker_sampler) {}
    sampler::Sampler& sampler;      // the worker's
    sampler::SamplerTarget target;  // Verify: the position being decided
    sampler::VerifyScratch verify;  // Verify: the residual's running sums
  };

  // `rows` are counted in flight (SamplerService::AddRowsInFlight) from StartRowJob until
  // `done`; `cancelled` is set by the reactor's OnCancel (client cancel, deadline,
  // shutdown); `what` completes "call cancelled before its rows were ..." ("sampled").
  RowJob(SamplerService* service, std::shared_ptr<const std::atomic<bool>> cancelled, size_t rows,
         absl::string_view what, absl::AnyInvocable<void(absl::Status)> done);
  virtual ~RowJob() = default;
  RowJob(const RowJob&) = delete;
  RowJob& operator=(const RowJob&) = delete;

  // The number of units; fixed before StartRowJob.
  virtual size_t units() const = 0;

  // One task: runs units until none is left; the last task to finish calls `done`.
  void Run(sampler::Sampler& sampler);

 protected:
  enum class Need {
    kRun,   // run it (unless the call is cancelled)
    kSkip,  // not run, counted as skipped (the rest of a failed job)
    kNone,  // nothing to do (a row without logits, a position after its row stopped)
  };
  // Called from several tasks at once.
  virtual Need Needs(size_t unit) = 0;
  virtual void RunUnit(Task& task, size_t unit) = 0;
  // After the last unit: OK or the error the call ends with.
  virtual absl::Status Outcome() = 0;

 private:
  friend bool StartRowJob(WorkerPool& pool, std::shared_ptr<RowJob> job);

  SamplerService* const service_;  // counts skipped and in-flight rows
  const std::shared_ptr<const std::atomic<bool>> cancelled_;
  const size_t rows_in_flight_;
  const std::string what_;
  absl::AnyInvocable<void(absl::Status)> done_;
  std::atomic<size_t> next_unit_{0};  // the next unit a task takes
  std::atomic<size_t> remaining_{0};  // tasks still running
};

// Queues min(units, workers) tasks that share out the job's units. Returns false,
// without calling `done`, when the queue has no room for them. A single task may run
// (and call `done`) on the calling thread before this returns (WorkerPool::TryRunHere):
// callers must not touch their reactor after a true return. REQUIRES: at least one unit.
bool StartRowJob(WorkerPool& pool, std::shared_ptr<RowJob> job);

// The rows of a Sample, GetDistribution or SampleStream message: one unit per row, the
// results indexed like the rows. `done` gets OK, the error of the lowest failing row
// index ("rows[i]." prefixed), or CANCELLED. Rows without logits are left alone; after
// a failure the rest are skipped (counted).
class SampleJob final : public RowJob {
 public:
  enum class Kind { kSample, kDistribution };

  // `*rows` must stay alive until `done` returns.
  SampleJob(Kind kind, SamplerService* service, std::shared_ptr<const std::atomic<bool>> cancelled,
            const std::vector<DecodedRow>* rows, absl::AnyInvocable<void(absl::Status)> done);

  size_t units() const override { return rows_.size(); }

  // Indexed like the rows (kSample: samples; kDistribution: distributions; the other
  // stays empty).
  std::vector<sampler::SampleResult> samples;
  std::vector<sampler::DistributionResult> distributions;

 private:
  Need Needs(size_t unit) override;
  void RunUnit(Task& task, size_t unit) override;
  absl::Status Outcome() override;

  const Kind kind_;
  const std::vector<DecodedRow>& rows_;
  std::atomic<bool> failed_{false};
  absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);  // of the lowest failing row index
  size_t error_row_ ABSL_GUARDED_BY(mu_) = std::numeric_limits<size_t>::max();
};

// A SampleJob of `kind` over `*rows` (alive until `done` returns) for a call of `service`.
std::shared_ptr<SampleJob> MakeSampleJob(SampleJob::Kind kind, SamplerService* service,
                                         std::shared_ptr<const std::atomic<bool>> cancelled,
                                         const std::vector<DecodedRow>* rows,
                                         absl::AnyInvocable<void(absl::Status)> done);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_ROW_JOB_H_
