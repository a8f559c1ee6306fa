// Helpers every Sampler RPC handler shares: raw request bytes to a message and back,
// the rpc_error log line, the queue-full error.
#ifndef TOKENSAMPLER_SERVER_CALL_UTIL_H_
#define TOKENSAMPLER_SERVER_CALL_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/log.h"
#include "server/rpc_status.h"
#include "server/service.h"
#include "server/worker_pool.h"

namespace tokensampler::server {

inline void LogRpcError(absl::string_view rpc, grpc::CallbackServerContext* context,
                        const grpc::Status& status) {
  LogEvent(LogLevel::kWarn, "rpc_error",
           {{"rpc", std::string(rpc)},
            {"code", GrpcCodeName(status.error_code())},
            {"message", status.error_message()},
            {"peer", context->peer()}});
}

// Requests arrive as raw bytes so that a body that is not a valid message gets a clear
// INVALID_ARGUMENT (gRPC's typed handler would answer UNIMPLEMENTED with no message).
template <typename Message>
absl::Status ParseMessage(const grpc::ByteBuffer& bytes, Message* message) {
  grpc::ByteBuffer copy(bytes);  // shares the slices; Deserialize consumes its input
  if (!grpc::SerializationTraits<Message>::Deserialize(&copy, message).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request: not a valid ", Message::descriptor()->full_name(),
                     " (protobuf parse failed; string fields must be UTF-8)"));
  }
  return absl::OkStatus();
}

template <typename Message>
absl::Status SerializeMessage(const Message& message, grpc::ByteBuffer* bytes) {
  bool own_buffer = false;
  grpc::Status status = grpc::SerializationTraits<Message>::Serialize(message, bytes, &own_buffer);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("response: ", status.error_message()));
  }
  return absl::OkStatus();
}

// Logits.shared_memory.region -> mapping for one call: checks the caller's access once,
// on the first row that names a region.
class RegionResolver {
 public:
  RegionResolver(SamplerService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  // const for absl::FunctionRef; the check's result is a cache.
  absl::StatusOr<std::shared_ptr<const SharedMemoryMapping>> operator()(
      absl::string_view region) const {
    if (!checked_) {
      access_ = service_->CheckSharedMemoryAccess(context_);
      checked_ = true;
    }
    if (!access_.ok()) return access_;
    return service_->shared_memory().Find(region);
  }

 private:
  SamplerService* const service_;
  grpc::CallbackServerContext* const context_;
  mutable bool checked_ = false;
  mutable absl::Status access_;
};

inline absl::Status QueueFullError(const WorkerPool& pool) {
  return absl::ResourceExhaustedError(
      absl::StrCat("server busy: the work queue is full (queue_depth=", pool.queue_depth(),
                   " tasks); retry later"));
}

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_CALL_UTIL_H_
