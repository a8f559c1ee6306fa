#include "server/verify_reactor.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "sampler/verify.h"
#include "server/codec.h"
#include "server/job_reactor.h"
#include "server/row_job.h"
#include "server/rpc_call.h"
#include "server/service.h"
#include "server/shared_memory.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

// The positions of one Verify request as a RowJob: a unit is one (row, position), in
// row-major order. A row's positions after its first rejected (or failed) one are never
// needed: a unit is passed over once an earlier position of its row is known to have
// stopped the row. Every position up to the row's first stop is always computed, so the
// result (and which error is reported) does not depend on the number of workers or their
// timing. `done` gets OK, the error of the lowest row whose first stop is a failure, or
// CANCELLED.
class VerifyJob final : public RowJob {
 public:
  // `*rows` must stay alive until `done` returns.
  VerifyJob(SamplerService* service, std::shared_ptr<const std::atomic<bool>> cancelled,
            const std::vector<DecodedVerifyRow>* rows, absl::AnyInvocable<void(absl::Status)> done)
      : RowJob(service, std::move(cancelled), rows->size(), "verified", std::move(done)),
        rows_(*rows),
        first_unit_(rows->size() + 1),
        stop_at_(std::make_unique<std::atomic<size_t>[]>(rows->size())),
        errors_(rows->size()),
        error_at_(rows->size(), std::numeric_limits<size_t>::max()) {
    size_t total = 0;
    for (size_t r = 0; r < rows_.size(); ++r) {
      first_unit_[r] = total;
      total += rows_[r].positions();
      stop_at_[r].store(rows_[r].positions());
    }
    first_unit_[rows_.size()] = total;
    outcomes_.resize(total);
  }

  size_t units() const override { return first_unit_.back(); }

  // After `done` with OK: row `row`'s result.
  void Assemble(size_t row, sampler::VerifyResult* out) const {
    const size_t stop = stop_at_[row].load();
    sampler::AssembleVerifyResult(
        absl::MakeConstSpan(outcomes_.data() + first_unit_[row], stop + 1), out);
  }

 private:
  size_t RowOf(size_t unit) const {
    return static_cast<size_t>(std::upper_bound(first_unit_.begin(), first_unit_.end(), unit) -
                               first_unit_.begin()) -
           1;
  }

  Need Needs(size_t unit) override {
    const size_t row = RowOf(unit);
    const size_t position = unit - first_unit_[row];
    return position > stop_at_[row].load(std::memory_order_relaxed) ? Need::kNone : Need::kRun;
  }

  void RunUnit(Task& task, size_t unit) override {
    const size_t r = RowOf(unit);
    const size_t position = unit - first_unit_[r];
    const DecodedVerifyRow& row = rows_[r];
    sampler::PositionOutcome& outcome = outcomes_[unit];
    // A target row in shared memory is read once, here, into this thread's private
    // buffer (as Sample's rows: shared_memory.h).
    sampler::LogitsView logits = row.target_logits[position];
    absl::Status status;
    if (row.target_regions[position] != nullptr) {
      status =
          CopyRowToPrivate(*row.target_regions[position], logits, "logits.shared_memory", &logits);
    }
    if (status.ok()) {
      status = sampler::ComputePosition(task.target, logits, row.ParamsAt(position),
                                        row.row.step + position, row.draft_token_ids,
                                        row.draft_probs, position, &task.verify, &outcome);
    }
    if (!status.ok()) {
      absl::MutexLock lock(&mu_);
      if (position < error_at_[r]) {
        error_at_[r] = position;
        errors_[r] = RowError(r, sampler::PositionError(position, status));
      }
    }
    if (!status.ok() || !outcome.accepted) StopRowAt(r, position);
  }

  absl::Status Outcome() override {
    absl::MutexLock lock(&mu_);
    for (size_t r = 0; r < rows_.size(); ++r) {
      if (!errors_[r].ok() && error_at_[r] == stop_at_[r].load()) return errors_[r];
    }
    return absl::OkStatus();
  }

  void StopRowAt(size_t row, size_t position) {
    size_t seen = stop_at_[row].load(std::memory_order_relaxed);
    while (position < seen &&
           !stop_at_[row].compare_exchange_weak(seen, position, std::memory_order_relaxed)) {
    }
  }

  const std::vector<DecodedVerifyRow>& rows_;
  std::vector<size_t> first_unit_;                  // per row, then the total
  std::vector<sampler::PositionOutcome> outcomes_;  // per unit
  // Per row: the lowest position that was rejected or failed so far (k + 1 = none).
  std::unique_ptr<std::atomic<size_t>[]> stop_at_;
  absl::Mutex mu_;
  // Per row: the error of its lowest failing position, and that position.
  std::vector<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> error_at_ ABSL_GUARDED_BY(mu_);
};

class VerifyReactor final : public JobReactor {
 public:
  VerifyReactor(SamplerService* service, grpc::CallbackServerContext* context,
                grpc::ByteBuffer* response)
      : JobReactor(service, context, "Verify"), response_(response) {}

  void Start(grpc::ByteBuffer* request_bytes) {
    absl::Status status = AdmitAndParse(request_bytes, &request_);
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
    job_ = std::make_shared<VerifyJob>(service_, cancelled_, &rows_,
                                       [this](absl::Status s) { OnUnitsDone(std::move(s)); });
    StartJob(&job_);
  }

 private:
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

  grpc::ByteBuffer* const response_;
  v1::VerifyRequest request_;
  v1::VerifyResponse response_message_;
  std::vector<DecodedVerifyRow> rows_;
  std::shared_ptr<VerifyJob> job_;
};

}  // namespace

grpc::ServerUnaryReactor* StartVerify(SamplerService* service, grpc::CallbackServerContext* context,
                                      grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  auto* reactor = new VerifyReactor(service, context, response);
  reactor->Start(request);
  return reactor;
}

}  // namespace tokensampler::server
