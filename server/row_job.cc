#include "server/row_job.h"

#include <utility>

#include "server/service.h"
#include "server/shared_memory.h"

namespace tokensampler::server {

void RowJob::Run(sampler::Sampler& sampler) {
  size_t skipped = 0;
  const size_t n = rows->size();
  for (size_t i; (i = next_row.fetch_add(1, std::memory_order_relaxed)) < n;) {
    const DecodedRow& row = (*rows)[i];
    if (!row.has_logits) continue;
    if (failed.load(std::memory_order_relaxed) || cancelled->load()) {
      ++skipped;
      continue;
    }
    // A row in shared memory is read once, here on the worker, into this thread's
    // private buffer; the sampler never reads the owner's mapping (shared_memory.h).
    sampler::LogitsView logits = row.logits;
    absl::Status status;
    if (row.shared_memory != nullptr) {
      status = CopyRowToPrivate(*row.shared_memory, row.logits, "logits.shared_memory", &logits);
    }
    if (status.ok()) {
      status = kind == Kind::kSample
                   ? sampler.Sample(logits, row.params, row.step, &samples[i])
                   : sampler.Distribution(logits, row.params, row.step, &distributions[i]);
    }
    if (!status.ok()) {
      failed.store(true, std::memory_order_relaxed);
      absl::MutexLock lock(&mu);
      if (i < error_row) {
        error_row = i;
        error = RowError(i, status);
      }
    }
  }
  if (skipped > 0) service->CountSkipped(skipped);
  if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    service->AddRowsInFlight(-static_cast<int64_t>(n));
    absl::Status status;
    {
      absl::MutexLock lock(&mu);
      status = error;
    }
    if (status.ok() && cancelled->load()) {
      status = absl::CancelledError("call cancelled before its rows were sampled");
    }
    done(std::move(status));
  }
}

std::shared_ptr<RowJob> MakeRowJob(RowJob::Kind kind, SamplerService* service,
                                   std::shared_ptr<const std::atomic<bool>> cancelled,
                                   const std::vector<DecodedRow>* rows,
                                   absl::AnyInvocable<void(absl::Status)> done) {
  auto job = std::make_shared<RowJob>();
  job->kind = kind;
  job->service = service;
  job->cancelled = std::move(cancelled);
  job->rows = rows;
  job->done = std::move(done);
  return job;
}

bool StartRowJob(WorkerPool& pool, std::shared_ptr<RowJob> job) {
  const size_t n = job->rows->size();
  if (job->kind == RowJob::Kind::kSample) {
    job->samples.resize(n);
  } else {
    job->distributions.resize(n);
  }
  const size_t tasks = pool.TasksFor(n);
  job->remaining.store(tasks);
  std::vector<WorkerPool::Task> batch;
  batch.reserve(tasks);
  for (size_t t = 0; t < tasks; ++t) {
    batch.push_back([job](sampler::Sampler& sampler) { job->Run(sampler); });
  }
  SamplerService* service = job->service;
  job.reset();  // the tasks hold the job
  service->AddRowsInFlight(static_cast<int64_t>(n));
  if (tasks == 1 && pool.TryRunHere(batch[0])) return true;
  if (pool.TrySubmit(std::move(batch))) return true;
  service->AddRowsInFlight(-static_cast<int64_t>(n));
  return false;
}

}  // namespace tokensampler::server
