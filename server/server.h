// A running tokensampler server: the worker pool, the Sampler service, the standard
// grpc.health.v1 service and (unless turned off) server reflection on one listening
// port. Used by the
// binary and by the in-process tests.
#ifndef TOKENSAMPLER_SERVER_SERVER_H_
#define TOKENSAMPLER_SERVER_SERVER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/service.h"
#include "server/worker_pool.h"

namespace tokensampler::server {

// The name under which the health service reports the Sampler service.
inline constexpr char kServiceName[] = "tokensampler.v1.Sampler";

struct ServerOptions {
  std::string address = "127.0.0.1:50051";  // host:port; port 0 picks a free port
  int workers = 0;                          // 0 = std::thread::hardware_concurrency()
  int queue_depth = 256;                    // tasks waiting for a worker, >= 1
  // A one-task request may sample on the gRPC thread when a worker slot is free and
  // nothing is queued (WorkerPool caller_runs); off: gRPC threads never sample.
  bool sample_on_grpc_threads = false;
  // Serve grpc.reflection.v1alpha.ServerReflection (grpcurl and similar tools use it).
  bool reflection = true;
  int64_t max_message_bytes = 256 << 20;    // gRPC max receive and send size
  // After this age (gRPC adds +-10% jitter) a client connection gets a GOAWAY, so that
  // dns:/// clients reconnect and re-resolve; 0 = off.
  absl::Duration max_connection_age = absl::ZeroDuration();
  // How long calls on an aged connection may still run before they are cancelled;
  // infinite = never cut (gRPC's default).
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  Limits limits;
};

// Checks option ranges (positive limits, max_vocab <= the library's kMaxVocab, ...).
absl::Status ValidateServerOptions(const ServerOptions& options);

class Server {
 public:
  // Validates `options`, binds the address and starts serving (health SERVING).
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  // Shuts down with no drain time if Shutdown() was not called.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port, and "host:port" with it (the --address host).
  int port() const { return port_; }
  const std::string& address() const { return address_; }

  // The lame-duck phase of a shutdown: health (overall and per service) goes
  // NOT_SERVING while calls are still accepted and served, so that health-checking
  // clients (round_robin with healthCheckConfig) and load balancers move away before
  // the port closes. Idempotent.
  void EnterLameDuck();
  bool lame_duck() const { return lame_duck_.load(); }

  // Health goes NOT_SERVING (if it was not already), new calls are refused, calls in
  // flight get until `drain` to finish and are cancelled after it; returns once every
  // call has ended. A call that reaches gRPC after this began but before its client
  // saw the server's GOAWAY is refused by gRPC with CANCELLED: callers that want no
  // failed call run a lame-duck phase first (EnterLameDuck, wait, then Shutdown).
  void Shutdown(absl::Duration drain);

  SamplerService& service() { return *service_; }
  WorkerPool& pool() { return *pool_; }
  int workers() const { return pool_->threads(); }

 private:
  Server() = default;

  std::unique_ptr<WorkerPool> pool_;  // outlives the grpc::Server and the service
  std::unique_ptr<SamplerService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
  bool shut_down_ = false;
  std::atomic<bool> lame_duck_{false};
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_SERVER_H_
