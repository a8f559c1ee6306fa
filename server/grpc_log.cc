#include "server/grpc_log.h"

#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/support/log.h"
#include "server/client_text.h"
#include "server/log.h"
#include "server/log_limiter.h"
#include "server/rpc_status.h"

namespace tokensampler::server {
namespace {

// gRPC's errors nest every cause into one line; a few hundred bytes say what happened.
constexpr size_t kMaxGrpcMessageBytes = 400;

std::mutex& CaptureMutex() {
  static std::mutex mu;
  return mu;
}
bool capturing = false;                        // guarded by CaptureMutex()
std::vector<std::string>* captured = nullptr;  // guarded by CaptureMutex()

void LogGrpcLine(gpr_log_func_args* args) {
  if (args->severity == GPR_LOG_SEVERITY_ERROR) {
    std::lock_guard<std::mutex> lock(CaptureMutex());
    if (capturing) {
      captured->push_back(args->message);
      return;
    }
  }
  // Some of gRPC's lines are the peer's doing (a connection reset, a bad HTTP/2 frame):
  // bounded like the server's own per-call lines.
  static LogLimiter* const limiter = new LogLimiter(10, 50);
  uint64_t suppressed = 0;
  if (!limiter->Admit(absl::Now(), &suppressed)) return;
  const LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LogLevel::kError
                         : args->severity == GPR_LOG_SEVERITY_INFO ? LogLevel::kInfo
                                                                   : LogLevel::kWarn;
  LogEvent(level, "grpc",
           {{"source", absl::StrCat(args->file, ":", args->line)},
            {"message", TruncateForStatus(args->message, kMaxGrpcMessageBytes)},
            {"suppressed", absl::StrCat(suppressed)}});
}

}  // namespace

void RouteGrpcLogs() { gpr_set_log_function(LogGrpcLine); }

GrpcErrorCapture::GrpcErrorCapture() {
  std::lock_guard<std::mutex> lock(CaptureMutex());
  capturing = true;
  captured = new std::vector<std::string>();
}

GrpcErrorCapture::~GrpcErrorCapture() {
  std::lock_guard<std::mutex> lock(CaptureMutex());
  capturing = false;
  delete captured;
  captured = nullptr;
}

std::vector<std::string> GrpcErrorCapture::Take() {
  std::lock_guard<std::mutex> lock(CaptureMutex());
  return std::exchange(*captured, {});
}

std::string DescribeStartFailure(const absl::Status& status, absl::string_view address,
                                 const std::vector<std::string>& grpc_errors) {
  for (const std::string& error : grpc_errors) {
    if (absl::StrContains(error, "Address already in use")) {
      return absl::StrCat("--address: ", address,
                          " is already in use (another server is listening there); stop it "
                          "or choose another port");
    }
  }
  for (const std::string& error : grpc_errors) {
    if (absl::StrContains(error, "Cannot assign requested address")) {
      return absl::StrCat("--address: ", address,
                          " is not an address of this machine (cannot assign requested "
                          "address)");
    }
  }
  std::string message(status.message());
  if (!grpc_errors.empty()) {
    absl::StrAppend(&message, ": ", TruncateForStatus(grpc_errors.front(), kMaxGrpcMessageBytes));
  }
  return message;
}

}  // namespace tokensampler::server
