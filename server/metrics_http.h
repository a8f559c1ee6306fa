// A minimal HTTP/1.1 server on its own thread for Prometheus scrapes: GET /metrics
// answers Metrics::Render() as text/plain; version=0.0.4; anything else gets 404 (or
// 405 for another method). One connection at a time, each closed after its answer,
// with a read timeout, so a slow or hostile peer cannot hold memory or threads.
#ifndef TOKENSAMPLER_SERVER_METRICS_HTTP_H_
#define TOKENSAMPLER_SERVER_METRICS_HTTP_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/metrics.h"

namespace tokensampler::server {

class MetricsHttpServer {
 public:
  // Listens on `address` ("host:port", port 0 = any free port; IPv4 or [IPv6]).
  // `metrics` must outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  const Metrics* metrics);
  // Stops accepting and joins the thread.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsHttpServer(const Metrics* metrics, int listen_fd, int port, int wake_read, int wake_write);
  void Run();
  void Serve(int fd);

  const Metrics* const metrics_;
  const int listen_fd_;
  const int port_;
  const int wake_read_, wake_write_;  // a pipe that ends Run()
  std::thread thread_;
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_METRICS_HTTP_H_
