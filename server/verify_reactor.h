// The Verify RPC: decode a VerifyRequest, compute every row's positions on the worker
// pool (each task takes the next (row, position) until none is left, so the positions
// of one row spread over the workers like Sample's rows), assemble, encode, finish.
#ifndef TOKENSAMPLER_SERVER_VERIFY_REACTOR_H_
#define TOKENSAMPLER_SERVER_VERIFY_REACTOR_H_

#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace tokensampler::server {

class SamplerService;

// Starts one Verify call and returns its reactor (it deletes itself when gRPC is done).
// Drops `request`'s bytes once parsed. `service` must outlive the call.
grpc::ServerUnaryReactor* StartVerify(SamplerService* service, grpc::CallbackServerContext* context,
                                      grpc::ByteBuffer* request, grpc::ByteBuffer* response);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_VERIFY_REACTOR_H_
