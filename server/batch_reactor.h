// The reactor of the unary sampling calls, Sample and GetDistribution: admit and parse
// the request, decode its rows, sample them on the WorkerPool (or on the calling thread,
// see StartRowJob), encode the response in row order, finish.
#ifndef TOKENSAMPLER_SERVER_BATCH_REACTOR_H_
#define TOKENSAMPLER_SERVER_BATCH_REACTOR_H_

#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"

namespace tokensampler::server {

class SamplerService;

// Starts one Sample (`distribution` false: SampleRequest -> SampleResponse) or
// GetDistribution (true: SampleRequest -> DistributionResponse) call and returns its
// reactor, which deletes itself when gRPC is done with it. The request's bytes are
// dropped once parsed. Errors finish the call with the first failing row's status
// ("rows[i]." prefixed), RESOURCE_EXHAUSTED for a full queue or the memory budget, or
// CANCELLED. Authentication is the caller's.
grpc::ServerUnaryReactor* StartBatchCall(SamplerService* service,
                                         grpc::CallbackServerContext* context,
                                         bool distribution, const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_BATCH_REACTOR_H_
