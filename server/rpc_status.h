// The one conversion from the project's absl::Status to the grpc::Status an RPC ends
// with. Codes map one to one; UNKNOWN (never meant for clients) becomes INTERNAL.
#ifndef TOKENSAMPLER_SERVER_RPC_STATUS_H_
#define TOKENSAMPLER_SERVER_RPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace tokensampler::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

// "INVALID_ARGUMENT", ... as in the gRPC status code names.
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_RPC_STATUS_H_
