#include "server/verify_reactor.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "sampler/verify.h"
#include "server/rpc_call.h"
#include "server/rpc_status.h"
#include "server/codec.h"
#include "server/service.h"
#include "server/shared_memory.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

// The positions of one Verify request on their way through the pool. A unit is one
// (row, position); units are taken in row-major order. A row's positions after its first
// rejected (or failed) one are never needed: a task skips a unit once an earlier position
// of its row is known to have stopped the row. Every position up to the row's first stop
// is always computed, so the result (and which error is reported) does not depend on the
// number of workers or their timing. `done` runs once, on the task that finishes last.
struct VerifyJob {
  SamplerService* service = nullptr;
  std::shared_ptr<const std::atomic<bool>> cancelled;
  const std::vector<DecodedVerifyRow>* rows = nullptr;  // alive until `done` returns
  std::vector<size_t> first_unit;                       // per row, then the total
  std::vector<sampler::PositionOutcome> outcomes;       // per unit
  // Per row: the lowest position that was rejected or failed so far (k + 1 = none).
  std::unique_ptr<std::atomic<size_t>[]> stop_at;
  absl::AnyInvocable<void(absl::Status)> done;

  std::atomic<size_t> next_unit{0};
  std::atomic<size_t> remaining{0};  // tasks still running
  std::mutex mu;
  // Per row: the error of its lowest failing position, and that position.
  std::vector<absl::Status> errors;
  std::vector<size_t> error_at;

  void Prepare() {
    const size_t n = rows->size();
    first_unit.resize(n + 1);
    stop_at = std::make_unique<std::atomic<size_t>[]>(n);
    errors.assign(n, absl::OkStatus());
    error_at.assign(n, std::numeric_limits<size_t>::max());
    size_t units = 0;
    for (size_t r = 0; r < n; ++r) {
      first_unit[r] = units;
      units += (*rows)[r].positions();
      stop_at[r].store((*rows)[r].positions());
    }
    first_unit[n] = units;
    outcomes.resize(units);
  }

  size_t units() const { return first_unit.back(); }

  void StopRowAt(size_t row, size_t position) {
    size_t seen = stop_at[row].load(std::memory_order_relaxed);
    while (position < seen &&
           !stop_at[row].compare_exchange_weak(seen, position, std::memory_order_relaxed)) {
    }
  }

  void RunUnit(sampler::SamplerTarget& target, sampler::VerifyScratch* scratch, size_t row_index,
               size_t position, sampler::PositionOutcome* outcome) {
    const DecodedVerifyRow& row = (*rows)[row_index];
    const size_t k = row.draft_token_ids.size();
    const sampler::SamplingParams params = row.ParamsAt(position);
    sampler::LogitsView logits = row.target_logits[position];
    absl::Status status;
    if (row.target_regions[position] != nullptr) {
      status =
          CopyRowToPrivate(*row.target_regions[position], logits, "logits.shared_memory", &logits);
    }
    const uint64_t step = row.row.step + position;
    if (status.ok()) status = target.Load(logits, params, step);
    if (status.ok()) {
      if (position < k) {
        sampler::DraftPosition draft;
        draft.token = row.draft_token_ids[position];
        if (!row.draft_probs.empty()) draft.probs = row.draft_probs[position];
        status = sampler::VerifyPosition(target, draft, params.seed, step, scratch, outcome);
      } else {
        status = sampler::BonusPosition(target, params.seed, step, outcome);
      }
    }
    if (!status.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (position < error_at[row_index]) {
        error_at[row_index] = position;
        errors[row_index] = RowError(row_index, sampler::PositionError(position, status));
      }
    }
    if (!status.ok() || !outcome->accepted) StopRowAt(row_index, position);
  }

  // One task: takes units one at a time until none is left.
  void Run(sampler::Sampler& sampler) {
    sampler::SamplerTarget target(&sampler);
    sampler::VerifyScratch scratch;
    size_t skipped = 0;
    size_t row = 0;
    const size_t total = units();
    for (size_t u; (u = next_unit.fetch_add(1, std::memory_order_relaxed)) < total;) {
      while (first_unit[row + 1] <= u) ++row;  // units are taken in increasing order
      const size_t position = u - first_unit[row];
      if (position > stop_at[row].load(std::memory_order_relaxed)) continue;
      if (cancelled->load()) {
        ++skipped;
        continue;
      }
      RunUnit(target, &scratch, row, position, &outcomes[u]);
    }
    if (skipped > 0) service->CountSkipped(skipped);
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      service->AddRowsInFlight(-static_cast<int64_t>(rows->size()));
      done(Outcome());
    }
  }

  // After the last task: the error of the lowest row whose first stop is a failure.
  absl::Status Outcome() {
    std::lock_guard<std::mutex> lock(mu);
    for (size_t r = 0; r < rows->size(); ++r) {
      if (!errors[r].ok() && error_at[r] == stop_at[r].load()) return errors[r];
    }
    if (cancelled->load()) {
      return absl::CancelledError("call cancelled before its rows were verified");
    }
    return absl::OkStatus();
  }

  void Assemble(size_t row, sampler::VerifyResult* out) const {
    const size_t stop = stop_at[row].load();
    sampler::AssembleVerifyResult(absl::MakeConstSpan(outcomes.data() + first_unit[row], stop + 1),
                                  out);
  }
};

class VerifyReactor final : public grpc::ServerUnaryReactor {
 public:
  VerifyReactor(SamplerService* service, grpc::CallbackServerContext* context,
                grpc::ByteBuffer* response)
      : service_(service), context_(context), response_(response) {}

  // As in Sample: the request bytes are dropped once parsed, so a call waiting for a
  // worker holds one copy of its logits.
  ~VerifyReactor() override { service_->ReleaseBytes(reserved_); }

  void Start(grpc::ByteBuffer* request_bytes) {
    absl::Status status = service_->Admit(*request_bytes, &reserved_);
    if (status.ok()) status = ParseMessage(*request_bytes, &request_);
    request_bytes->Clear();
    if (!status.ok()) return FinishWith(status);
    RegionResolver resolve_region(service_, context_);
    status = DecodeVerifyRequest(
        request_, service_->options().limits, [this] { return service_->PickSeed(); }, &rows_,
        resolve_region);
    if (!status.ok()) return FinishWith(status);
    if (rows_.empty()) {
      service_->CountServed(0);
      return FinishWith(SerializeMessage(response_message_, response_));
    }
    job_ = std::make_shared<VerifyJob>();
    job_->service = service_;
    job_->cancelled = cancelled_;
    job_->rows = &rows_;
    job_->done = [this](absl::Status s) { OnUnitsDone(std::move(s)); };
    job_->Prepare();
    if (!StartJob()) {
      job_.reset();
      return FinishWith(QueueFullError(service_->pool()));
    }
  }

  void OnCancel() override {
    cancelled_->store(true);
    service_->CountCancelled();
  }
  void OnDone() override { delete this; }

 private:
  // Queues min(units, workers) tasks; false (nothing queued) when the queue is full. A
  // single task may run, and finish the call, here (WorkerPool::TryRunHere).
  bool StartJob() {
    WorkerPool& pool = service_->pool();
    const size_t tasks = pool.TasksFor(job_->units());
    job_->remaining.store(tasks);
    std::vector<WorkerPool::Task> batch;
    batch.reserve(tasks);
    for (size_t t = 0; t < tasks; ++t) {
      batch.push_back([job = job_](sampler::Sampler& sampler) { job->Run(sampler); });
    }
    SamplerService* service = service_;
    const int64_t rows = static_cast<int64_t>(rows_.size());
    service->AddRowsInFlight(rows);
    if (tasks == 1 && pool.TryRunHere(batch[0])) return true;
    if (pool.TrySubmit(std::move(batch))) return true;
    service->AddRowsInFlight(-rows);
    return false;
  }

  // On the task that finished last.
  void OnUnitsDone(absl::Status status) {
    if (status.ok()) {
      sampler::VerifyResult result;
      for (const DecodedVerifyRow& row : rows_) {
        job_->Assemble(row.row.index, &result);
        EncodeVerifyResult(result, row.row.params.seed, row.row.step, row.row.sequence_id,
                           response_message_.add_results());
      }
      service_->CountServed(rows_.size());
      status = SerializeMessage(response_message_, response_);
    }
    rows_.clear();
    request_.Clear();
    response_message_.Clear();
    // Drop our reference to the job (and the cycle through `done`) before the reactor
    // can be deleted.
    std::shared_ptr<VerifyJob> job = std::move(job_);
    FinishWith(status);
  }

  void FinishWith(const absl::Status& status) {
    grpc::Status grpc_status = ToGrpcStatus(status);
    if (!grpc_status.ok()) LogRpcError("Verify", context_, grpc_status);
    Finish(std::move(grpc_status));
  }

  SamplerService* const service_;
  grpc::CallbackServerContext* const context_;
  grpc::ByteBuffer* const response_;
  v1::VerifyRequest request_;
  v1::VerifyResponse response_message_;
  std::vector<DecodedVerifyRow> rows_;
  std::shared_ptr<VerifyJob> job_;
  const std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  int64_t reserved_ = 0;  // memory budget bytes held until OnDone
};

}  // namespace

grpc::ServerUnaryReactor* StartVerify(SamplerService* service, grpc::CallbackServerContext* context,
                                      grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  auto* reactor = new VerifyReactor(service, context, response);
  reactor->Start(request);
  return reactor;
}

}  // namespace tokensampler::server
