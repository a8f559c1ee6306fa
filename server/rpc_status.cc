#include "server/rpc_status.h"

#include <string>

#include "server/client_text.h"

namespace tokensampler::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  grpc::StatusCode code = static_cast<grpc::StatusCode>(status.code());
  if (status.code() == absl::StatusCode::kUnknown ||
      static_cast<int>(status.code()) > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    code = grpc::StatusCode::INTERNAL;
  }
  return grpc::Status(code, TruncateForStatus(status.message(), kMaxStatusMessageBytes));
}

std::string GrpcCodeName(grpc::StatusCode code) {
  // gRPC and absl number their codes alike.
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "INTERNAL" : name;
}

}  // namespace tokensampler::server
