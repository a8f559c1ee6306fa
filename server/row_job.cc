#include "server/row_job.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/service.h"
#include "server/shared_memory.h"

namespace tokensampler::server {

RowJob::RowJob(SamplerService* service, std::shared_ptr<const std::atomic<bool>> cancelled,
               size_t rows, absl::string_view what, absl::AnyInvocable<void(absl::Status)> done)
    : service_(service),
      cancelled_(std::move(cancelled)),
      rows_in_flight_(rows),
      what_(what),
      done_(std::move(done)) {}

void RowJob::Run(sampler::Sampler& sampler) {
  Task task(sampler);
  size_t skipped = 0;
  const size_t n = units();
  for (size_t u; (u = next_unit_.fetch_add(1, std::memory_order_relaxed)) < n;) {
    const Need need = Needs(u);
    if (need == Need::kNone) continue;
    if (need == Need::kSkip || cancelled_->load()) {
      ++skipped;
      continue;
    }
    RunUnit(task, u);
  }
  if (skipped > 0) service_->CountSkipped(skipped);
  if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    service_->AddRowsInFlight(-static_cast<int64_t>(rows_in_flight_));
    absl::Status status = Outcome();
    if (status.ok() && cancelled_->load()) {
      status = absl::CancelledError(absl::StrCat("call cancelled before its rows were ", what_));
    }
    done_(std::move(status));
  }
}

bool StartRowJob(WorkerPool& pool, std::shared_ptr<RowJob> job) {
  const size_t tasks = pool.TasksFor(job->units());
  job->remaining_.store(tasks);
  std::vector<WorkerPool::Task> batch;
  batch.reserve(tasks);
  for (size_t t = 0; t < tasks; ++t) {
    batch.push_back([job](sampler::Sampler& sampler) { job->Run(sampler); });
  }
  SamplerService* service = job->service_;
  const int64_t rows = static_cast<int64_t>(job->rows_in_flight_);
  job.reset();  // the tasks hold the job
  service->AddRowsInFlight(rows);
  if (tasks == 1 && pool.TryRunHere(batch[0])) return true;
  if (pool.TrySubmit(std::move(batch))) return true;
  service->AddRowsInFlight(-rows);
  return false;
}

SampleJob::SampleJob(Kind kind, SamplerService* service,
                     std::shared_ptr<const std::atomic<bool>> cancelled,
                     const std::vector<DecodedRow>* rows,
                     absl::AnyInvocable<void(absl::Status)> done)
    : RowJob(service, std::move(cancelled), rows->size(), "sampled", std::move(done)),
      kind_(kind),
      rows_(*rows) {
  if (kind_ == Kind::kSample) {
    samples.resize(rows_.size());
  } else {
    distributions.resize(rows_.size());
  }
}

RowJob::Need SampleJob::Needs(size_t unit) {
  if (!rows_[unit].has_logits) return Need::kNone;
  return failed_.load(std::memory_order_relaxed) ? Need::kSkip : Need::kRun;
}

void SampleJob::RunUnit(Task& task, size_t unit) {
  const DecodedRow& row = rows_[unit];
  // A row in shared memory is read once, here on the worker, into this thread's
  // private buffer; the sampler never reads the owner's mapping (shared_memory.h).
  sampler::LogitsView logits = row.logits;
  absl::Status status;
  if (row.shared_memory != nullptr) {
    status = CopyRowToPrivate(*row.shared_memory, row.logits, "logits.shared_memory", &logits);
  }
  if (status.ok()) {
    status = kind_ == Kind::kSample
                 ? task.sampler.Sample(logits, row.params, row.step, &samples[unit])
                 : task.sampler.Distribution(logits, row.params, row.step, &distributions[unit]);
  }
  if (status.ok()) return;
  failed_.store(true, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  if (unit < error_row_) {
    error_row_ = unit;
    error_ = RowError(unit, status);
  }
}

absl::Status SampleJob::Outcome() {
  absl::MutexLock lock(&mu_);
  return error_;
}

std::shared_ptr<SampleJob> MakeSampleJob(SampleJob::Kind kind, SamplerService* service,
                                         std::shared_ptr<const std::atomic<bool>> cancelled,
                                         const std::vector<DecodedRow>* rows,
                                         absl::AnyInvocable<void(absl::Status)> done) {
  return std::make_shared<SampleJob>(kind, service, std::move(cancelled), rows, std::move(done));
}

}  // namespace tokensampler::server
