// Helpers every Sampler RPC handler shares: raw request bytes to a message and back,
// the rpc_error log line, the queue-full error.
#ifndef TOKENSAMPLER_SERVER_CALL_UTIL_H_
#define TOKENSAMPLER_SERVER_CALL_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/log.h"
#include "server/log_limiter.h"
#include "server/rpc_status.h"
#include "server/service.h"
#include "server/worker_pool.h"

namespace tokensampler::server {

// One warn line per failed call, at most kRpcErrorBurst at once and kRpcErrorsPerSecond
// on average (one limiter for every RPC): a client repeating a bad call must not fill
// the disk. The message is already capped (ToGrpcStatus); a line after dropped ones says
// how many.
inline constexpr double kRpcErrorsPerSecond = 10;
inline constexpr double kRpcErrorBurst = 50;

inline void LogRpcError(absl::string_view rpc, grpc::CallbackServerContext* context,
                        const grpc::Status& status) {
  static LogLimiter* const limiter = new LogLimiter(kRpcErrorsPerSecond, kRpcErrorBurst);
  uint64_t suppressed = 0;
  if (!limiter->Admit(absl::Now(), &suppressed)) return;
  const std::string peer = context->peer();
  if (suppressed == 0) {
    LogEvent(LogLevel::kWarn, "rpc_error",
             {{"rpc", std::string(rpc)},
              {"code", GrpcCodeName(status.error_code())},
              {"message", status.error_message()},
              {"peer", peer}});
  } else {
    LogEvent(LogLevel::kWarn, "rpc_error",
             {{"rpc", std::string(rpc)},
              {"code", GrpcCodeName(status.error_code())},
              {"message", status.error_message()},
              {"peer", peer},
              {"suppressed", absl::StrCat(suppressed)}});
  }
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
