// What every Sampler call does at its edge, shared by the service and its reactors:
// check the bearer token, parse a raw request, serialize a response, log a failed call,
// refuse work when the queue is full, and resolve Logits.shared_memory regions.
#ifndef TOKENSAMPLER_SERVER_RPC_CALL_H_
#define TOKENSAMPLER_SERVER_RPC_CALL_H_

#include <memory>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"
#include "server/auth.h"
#include "server/rpc_status.h"
#include "server/shared_memory.h"
#include "server/worker_pool.h"

namespace tokensampler::server {

class SamplerService;

using BidiStreamReactor = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

// Reactors that end a call at once with `status` (a refused call).
grpc::ServerUnaryReactor* RefusedUnaryCall(grpc::CallbackServerContext* context,
                                           const grpc::Status& status);
BidiStreamReactor* RefusedStreamCall(const grpc::Status& status);

// The first step of every Sampler RPC. When the server requires bearer tokens (`auth`
// set) and the call carries no valid one, the call ends at once with UNAUTHENTICATED,
// before its request is read, and unlogged (a scanner would fill the log; the metrics
// count calls by code). Otherwise returns `start()`, the call's reactor. `Reactor` is
// grpc::ServerUnaryReactor or BidiStreamReactor.
template <typename Reactor, typename Start>
Reactor* AuthenticatedCall(TokenAuthenticator* auth, grpc::CallbackServerContext* context,
                           Start start) {
  if (auth != nullptr) {
    if (absl::Status denied = auth->CheckCall(*context); !denied.ok()) {
      if constexpr (std::is_same_v<Reactor, BidiStreamReactor>) {
        return RefusedStreamCall(ToGrpcStatus(denied));
      } else {
        return RefusedUnaryCall(context, ToGrpcStatus(denied));
      }
    }
  }
  return start();
}

// Requests arrive as raw bytes so that a body that is not a valid message gets a clear
// INVALID_ARGUMENT (gRPC's typed handler would answer UNIMPLEMENTED with no message).
template <typename Message>
absl::Status ParseMessage(const grpc::ByteBuffer& bytes, Message* message) {
  grpc::ByteBuffer copy(bytes);  // shares the slices; Deserialize consumes its input
  if (!grpc::SerializationTraits<Message>::Deserialize(&copy, message).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request: not a valid ", Message::descriptor()->full_name(),
        " (protobuf parse failed; string fields must be UTF-8)"));
  }
  return absl::OkStatus();
}

template <typename Message>
absl::Status SerializeMessage(const Message& message, grpc::ByteBuffer* bytes) {
  bool own_buffer = false;
  grpc::Status status =
      grpc::SerializationTraits<Message>::Serialize(message, bytes, &own_buffer);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("response: ", status.error_message()));
  }
  return absl::OkStatus();
}

// One warn line per failed call, rate-limited (a client repeating a bad call must not
// fill the disk); a line after dropped ones says how many were dropped.
void LogRpcError(absl::string_view rpc, grpc::CallbackServerContext* context,
                 const grpc::Status& status);

// RESOURCE_EXHAUSTED naming the pool's queue_depth.
absl::Status QueueFullError(const WorkerPool& pool);

// Logits.shared_memory.region -> mapping for one call: checks the caller's access once,
// on the first row that names a region. Not thread-safe (one per decode).
class RegionResolver {
 public:
  RegionResolver(SamplerService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  // const for absl::FunctionRef; the check's result is a cache.
  absl::StatusOr<std::shared_ptr<const SharedMemoryMapping>> operator()(
      absl::string_view region) const;

 private:
  SamplerService* const service_;
  grpc::CallbackServerContext* const context_;
  mutable bool checked_ = false;
  mutable absl::Status access_;
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_RPC_CALL_H_
