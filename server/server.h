// A running tokensampler server: the worker pool, the Sampler service, the standard
// grpc.health.v1 service and (unless turned off) server reflection on one listening
// port. Used by the
// binary and by the in-process tests.
#ifndef TOKENSAMPLER_SERVER_SERVER_H_
#define TOKENSAMPLER_SERVER_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/auth.h"
#include "server/memory_budget.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/service.h"
#include "server/tls.h"
#include "server/worker_pool.h"

namespace tokensampler::server {

// The name under which the health service reports the Sampler service.
inline constexpr char kServiceName[] = "tokensampler.v1.Sampler";

struct ServerOptions {
  // Comma-separated listen addresses: host:port (port 0 picks a free port) and
  // unix:PATH / unix:///ABS/PATH, e.g. "127.0.0.1:50051,unix:/run/tokensampler/sock".
  std::string address = "127.0.0.1:50051";
  // Permission bits given to every Unix socket file after it is bound.
  int unix_socket_mode = 0660;
  int workers = 0;                          // 0 = std::thread::hardware_concurrency()
  int queue_depth = 256;                    // tasks waiting for a worker, >= 1
  // A one-task request may sample on the gRPC thread when a worker slot is free and
  // nothing is queued (WorkerPool caller_runs); off: gRPC threads never sample.
  bool sample_on_grpc_threads = false;
  // Serve grpc.reflection.v1alpha.ServerReflection (grpcurl and similar tools use it).
  bool reflection = true;
  int64_t max_message_bytes = 64 << 20;  // gRPC max receive and send size
  // Memory budget: 1/4 to gRPC's ResourceQuota (transport buffers), 3/4 to requests
  // being parsed and sampled and stream histories (MemoryBudget); 0 = unlimited.
  int64_t max_memory = int64_t{1} << 30;
  int max_streams = 1024;              // open SampleStream calls; 0 = unlimited
  int64_t max_live_sequences = 65536;  // over all streams; 0 = unlimited
  // After this age (gRPC adds +-10% jitter) a client connection gets a GOAWAY, so that
  // dns:/// clients reconnect and re-resolve; 0 = off.
  absl::Duration max_connection_age = absl::ZeroDuration();
  // How long calls on an aged connection may still run before they are cancelled;
  // infinite = never cut (gRPC's default).
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  Limits limits;
  TlsOptions tls;               // plaintext unless a certificate and key are set
  std::string auth_token_file;  // set: Sampler RPCs need a bearer token from this file
  // Set: a second, always plaintext port serving only grpc.health.v1 (for probes that
  // cannot speak TLS or send a token); bind it to localhost or the pod IP.
  std::string health_address;
  // Set: Prometheus metrics at http://<metrics_address>/metrics (port 0 = any free port).
  std::string metrics_address;
  SharedMemoryOptions shared_memory;
};

// The listen addresses of a --address value, in order; errors name --address.
absl::StatusOr<std::vector<std::string>> SplitListenAddresses(absl::string_view address);

// The socket file path of a "unix:PATH" or "unix:///PATH" address; empty for others.
std::string UnixSocketPath(absl::string_view address);

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

  // The bound port of the first TCP address (0 if none), and the first listen address
  // with its bound port ("host:port" or "unix:PATH").
  int port() const { return port_; }
  const std::string& address() const { return addresses_.front(); }
  // Every listen address, in --address order, TCP ones with their bound ports.
  const std::vector<std::string>& addresses() const { return addresses_; }
  // The --health_address port and "host:port", or 0 and "" when there is none.
  int health_port() const { return health_port_; }
  const std::string& health_address() const { return health_address_; }
  // The --metrics_address port, or 0 when metrics are off.
  int metrics_port() const { return metrics_http_ == nullptr ? 0 : metrics_http_->port(); }
  // Counters and gauges; subsystems add gauges with Metrics::RegisterGauge.
  Metrics& metrics() { return *metrics_; }
  const MemoryBudget& budget() const { return *budget_; }

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
  // The main server and the --health_address one (when set).
  std::vector<grpc::Server*> grpc_servers() const;
  // The server's gauges (queue, in-flight rows, streams, ...) for --metrics_address.
  void RegisterGauges(const ServerOptions& options);

  std::unique_ptr<WorkerPool> pool_;  // outlives the grpc::Server and the service
  std::unique_ptr<TokenAuthenticator> auth_;  // outlives the service
  std::unique_ptr<Metrics> metrics_;          // outlives the service and the servers
  std::unique_ptr<MemoryBudget> budget_;      // outlives the service
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  std::unique_ptr<SamplerService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> health_server_;  // --health_address, or nullptr
  int port_ = 0;
  std::vector<std::string> addresses_;
  int health_port_ = 0;
  std::string health_address_;
  bool shut_down_ = false;
  std::atomic<bool> lame_duck_{false};
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_SERVER_H_
