#include "server/batch_reactor.h"

#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "server/codec.h"
#include "server/job_reactor.h"
#include "server/row_job.h"
#include "server/rpc_call.h"
#include "server/service.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

class BatchReactor final : public JobReactor {
 public:
  BatchReactor(SamplerService* service, grpc::CallbackServerContext* context, bool distribution,
               grpc::ByteBuffer* response)
      : JobReactor(service, context, distribution ? "GetDistribution" : "Sample"),
        response_(response),
        samples_(distribution ? nullptr : &sample_response_),
        distributions_(distribution ? &distribution_response_ : nullptr) {}

  void Start(grpc::ByteBuffer* request_bytes) {
    absl::Status status = AdmitAndParse(request_bytes, &request_);
    if (!status.ok()) return FinishWith(status);
    RegionResolver resolve_region(service_, context_);
    status = DecodeRequest(
        request_, service_->options().limits, RequestKind::kStateless,
        [this] { return service_->PickSeed(); }, &rows_, resolve_region);
    if (!status.ok()) return FinishWith(status);
    if (rows_.empty()) {
      service_->CountServed(0);
      return FinishWith(Serialize());
    }
    job_ = MakeSampleJob(
        samples_ != nullptr ? SampleJob::Kind::kSample : SampleJob::Kind::kDistribution, service_,
        cancelled_, &rows_, [this](absl::Status s) { OnRowsDone(std::move(s)); });
    StartJob(&job_);
  }

 private:
  // On the worker that finished the last row.
  void OnRowsDone(absl::Status status) {
    if (status.ok()) {
      for (const DecodedRow& row : rows_) {
        if (samples_ != nullptr) {
          EncodeSampleResult(job_->samples[row.index], row.params.seed, row.step,
                             row.sequence_id, samples_->add_results());
        } else {
          EncodeDistribution(job_->distributions[row.index], row.sequence_id,
                             distributions_->add_distributions());
        }
      }
      service_->CountServed(rows_.size());
      service_->CountSampled(rows_);
      status = Serialize();
    }
    // The logits are not needed any more: free them now rather than when gRPC is done
    // sending the response and calls OnDone.
    rows_.clear();
    request_.Clear();
    sample_response_.Clear();        // serialized into response_ already
    distribution_response_.Clear();
    // The job keeps itself alive through its tasks; drop our reference (and the cycle
    // through `done`) before the reactor can be deleted.
    std::shared_ptr<SampleJob> job = std::move(job_);
    FinishWith(status);
  }

  absl::Status Serialize() {
    return samples_ != nullptr ? SerializeMessage(*samples_, response_)
                               : SerializeMessage(*distributions_, response_);
  }

  grpc::ByteBuffer* const response_;
  v1::SampleRequest request_;
  v1::SampleResponse sample_response_;
  v1::DistributionResponse distribution_response_;
  v1::SampleResponse* const samples_;              // Sample, else nullptr
  v1::DistributionResponse* const distributions_;  // GetDistribution, else nullptr
  std::vector<DecodedRow> rows_;
  std::shared_ptr<SampleJob> job_;
};

}  // namespace

grpc::ServerUnaryReactor* StartBatchCall(SamplerService* service,
                                         grpc::CallbackServerContext* context,
                                         bool distribution, const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) {
  auto* reactor = new BatchReactor(service, context, distribution, response);
  // The holder's request is not const (gRPC gives a const view); Start drops its bytes.
  reactor->Start(const_cast<grpc::ByteBuffer*>(request));
  return reactor;
}

}  // namespace tokensampler::server
