// What the unary calls whose rows run as a RowJob (Sample, GetDistribution, Verify) share:
// admission of the request against the memory budget, its parse, the cancellation flag
// their job checks, starting the job, and finishing with a logged error.
#ifndef TOKENSAMPLER_SERVER_JOB_REACTOR_H_
#define TOKENSAMPLER_SERVER_JOB_REACTOR_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/row_job.h"
#include "server/rpc_call.h"
#include "server/service.h"

namespace tokensampler::server {

// Deletes itself when gRPC is done with it (OnDone). `service` must outlive the call.
class JobReactor : public grpc::ServerUnaryReactor {
 public:
  // Client cancel, deadline or shutdown: the job skips the units it has not started.
  void OnCancel() override;
  void OnDone() override { delete this; }

 protected:
  // `rpc` names the method in logged errors (a literal).
  JobReactor(SamplerService* service, grpc::CallbackServerContext* context, absl::string_view rpc)
      : service_(service), context_(context), rpc_(rpc) {}
  // Gives back the request's memory budget bytes.
  ~JobReactor() override;

  // Admits the request (SamplerService::Admit: row count, memory budget) and parses it
  // into `*message`, then drops `*bytes`. They belong to gRPC's per-call holder, which
  // would keep them (about 0.5 MB for one V=128256 row) until OnDone; dropped here, a
  // call waiting for a worker holds one copy of its logits, not two.
  template <typename Message>
  absl::Status AdmitAndParse(grpc::ByteBuffer* bytes, Message* message) {
    absl::Status status = service_->Admit(*bytes, &reserved_);
    if (status.ok()) status = ParseMessage(*bytes, message);
    bytes->Clear();
    return status;
  }

  // Starts `*job` (StartRowJob); when the queue has no room, drops it and finishes with
  // RESOURCE_EXHAUSTED. The reactor may be gone when this returns: touch nothing after.
  template <typename Job>
  void StartJob(std::shared_ptr<Job>* job) {
    if (StartRowJob(service_->pool(), *job)) return;
    job->reset();
    FinishWith(QueueFullError(service_->pool()));
  }

  // Finishes the call with `status`, logging it (rate-limited) when it is an error.
  void FinishWith(const absl::Status& status);

  SamplerService* const service_;
  grpc::CallbackServerContext* const context_;
  // Set by OnCancel; the job reads it before every unit.
  const std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);

 private:
  const absl::string_view rpc_;
  int64_t reserved_ = 0;  // memory budget bytes held until the reactor is deleted
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_JOB_REACTOR_H_
