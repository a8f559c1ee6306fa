// gRPC's own log output (gpr_log) as the server's key=value lines, and a one-line reason
// when the server cannot start listening (instead of gRPC's multi-kilobyte error dump).
#ifndef TOKENSAMPLER_SERVER_GRPC_LOG_H_
#define TOKENSAMPLER_SERVER_GRPC_LOG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tokensampler::server {

// From now on gRPC's log lines are written by LogEvent as `event=grpc` lines (level
// from gRPC's severity, `message` capped at a few hundred bytes, `source` = file:line).
// Call once, before the server starts.
void RouteGrpcLogs();

// While one is alive, gRPC's error lines are kept here instead of being logged (the
// caller decides what to say about them). Not nestable; one at a time.
class GrpcErrorCapture {
 public:
  GrpcErrorCapture();
  ~GrpcErrorCapture();
  GrpcErrorCapture(const GrpcErrorCapture&) = delete;
  GrpcErrorCapture& operator=(const GrpcErrorCapture&) = delete;

  // The error messages captured so far (and forgets them).
  std::vector<std::string> Take();
};

// The one-line reason a server could not start on `address`: `status` from
// Server::Start, explained by the gRPC error lines captured meanwhile (an address in use
// says so and what to do).
std::string DescribeStartFailure(const absl::Status& status, absl::string_view address,
                                 const std::vector<std::string>& grpc_errors);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_GRPC_LOG_H_
