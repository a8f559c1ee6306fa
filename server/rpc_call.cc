#include "server/rpc_call.h"

#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "server/log.h"
#include "server/log_limiter.h"
#include "server/rpc_status.h"
#include "server/service.h"

namespace tokensampler::server {
namespace {

// At most kRpcErrorBurst lines at once and kRpcErrorsPerSecond on average. The message
// is already capped (ToGrpcStatus).
constexpr double kRpcErrorsPerSecond = 10;
constexpr double kRpcErrorBurst = 50;

class RefusedStream final : public BidiStreamReactor {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerUnaryReactor* RefusedUnaryCall(grpc::CallbackServerContext* context,
                                           const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

BidiStreamReactor* RefusedStreamCall(const grpc::Status& status) {
  return new RefusedStream(status);
}

void LogRpcError(absl::string_view rpc, grpc::CallbackServerContext* context,
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

absl::Status QueueFullError(const WorkerPool& pool) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "server busy: the work queue is full (queue_depth=", pool.queue_depth(),
      " tasks); retry later"));
}

absl::StatusOr<std::shared_ptr<const SharedMemoryMapping>> RegionResolver::operator()(
    absl::string_view region) const {
  if (!checked_) {
    access_ = service_->CheckSharedMemoryAccess(context_);
    checked_ = true;
  }
  if (!access_.ok()) return access_;
  return service_->shared_memory().Find(region);
}

}  // namespace tokensampler::server
