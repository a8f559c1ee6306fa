// The one conversion from the project's absl::Status to the grpc::Status an RPC ends
// with. Codes map one to one; UNKNOWN (never meant for clients) becomes INTERNAL.
// Messages are capped (kMaxStatusMessageBytes): a status travels in HTTP/2 trailers,
// and a client-supplied string echoed into one (an 8 KiB sequence_id) must neither blow
// the metadata limit (turning INVALID_ARGUMENT into RESOURCE_EXHAUSTED) nor fill a log.
#ifndef TOKENSAMPLER_SERVER_RPC_STATUS_H_
#define TOKENSAMPLER_SERVER_RPC_STATUS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace tokensampler::server {

inline constexpr size_t kMaxStatusMessageBytes = 1024;
grpc::Status ToGrpcStatus(const absl::Status& status);

// "INVALID_ARGUMENT", ... as in the gRPC status code names.
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_RPC_STATUS_H_
