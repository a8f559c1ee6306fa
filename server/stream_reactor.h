// The reactor of SampleStream. Messages are read one ahead of the one being sampled,
// sampled strictly in order (a step may depend on the previous step's tokens), and
// answered in order, with at most two responses waiting for a slow reader. An error
// ends the stream with its status after the responses of the earlier messages.
#ifndef TOKENSAMPLER_SERVER_STREAM_REACTOR_H_
#define TOKENSAMPLER_SERVER_STREAM_REACTOR_H_

#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace tokensampler::server {

class SamplerService;

// Starts one SampleStream call and returns its reactor, which deletes itself when gRPC
// is done with it. REQUIRES: the stream was counted by SamplerService::OpenStream
// (the reactor gives the count back) and the caller is authenticated.
grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StartStreamCall(
    SamplerService* service, grpc::CallbackServerContext* context);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_STREAM_REACTOR_H_
