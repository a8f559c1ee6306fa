#include "server/job_reactor.h"

#include <utility>

#include "server/rpc_status.h"

namespace tokensampler::server {

JobReactor::~JobReactor() { service_->ReleaseBytes(reserved_); }

void JobReactor::OnCancel() {
  cancelled_->store(true);
  service_->CountCancelled();
}

void JobReactor::FinishWith(const absl::Status& status) {
  grpc::Status grpc_status = ToGrpcStatus(status);
  if (!grpc_status.ok()) LogRpcError(rpc_, context_, grpc_status);
  Finish(std::move(grpc_status));
}

}  // namespace tokensampler::server
