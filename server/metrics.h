// Server metrics in the Prometheus text exposition format (version 0.0.4), written by
// hand: no Prometheus client library is packaged for Debian 12's C++. Counters and
// histograms are updated lock-free or under a short lock; gauges are read when scraped.
//
//   tokensampler_rpc_calls_total{service,method,code}     calls ended, by status code
//   tokensampler_rpc_duration_seconds{service,method}     histogram of call durations
//   tokensampler_rows_total{preset,dtype}                 rows sampled successfully
//   tokensampler_rejected_total{limit}                    RESOURCE_EXHAUSTED by limit
//   tokensampler_queue_tasks, tokensampler_rows_in_flight, tokensampler_stream_sequences,
//   tokensampler_streams, ... (gauges registered by the server; see docs/SERVER.md)
//   process_cpu_seconds_total, process_resident_memory_bytes, process_threads, ...
//   tokensampler_build_info{version,simd} 1
#ifndef TOKENSAMPLER_SERVER_METRICS_H_
#define TOKENSAMPLER_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"
#include "sampler/params.h"

namespace tokensampler::server {

// Thread-safe.
class Metrics {
 public:
  // Upper bounds (seconds) of the call-duration histogram buckets; +Inf is implied.
  static constexpr std::array<double, 15> kDurationBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One call of `full_method` ("/package.Service/Method") ended with `code` after
  // `seconds`. A RESOURCE_EXHAUSTED call also counts under the limit its message names.
  void CountCall(absl::string_view full_method, grpc::StatusCode code, double seconds,
                 absl::string_view message = "");
  // `rows` rows were sampled with this preset and logits dtype.
  void CountRows(sampler::Preset preset, sampler::Dtype dtype, uint64_t rows);
  // A request refused by `limit` (a flag name such as "max_rows") before gRPC saw it.
  void CountRejected(absl::string_view limit);

  // A gauge read at every scrape, e.g. the queue length. `name` must follow the
  // Prometheus conventions (base units, no _total); registering a name twice replaces
  // the first. This is the hook for subsystems such as shared-memory regions.
  void RegisterGauge(std::string name, std::string help, std::function<double()> read);

  // The whole exposition: every metric above, the process metrics and build info.
  std::string Render() const;

  // Creates the interceptor that times and counts every call (register it on the
  // ServerBuilder when metrics are served).
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeInterceptorFactory();

 private:
  struct MethodStats {
    std::array<std::atomic<uint64_t>, 17> calls{};  // by grpc::StatusCode 0..16
    std::array<std::atomic<uint64_t>, kDurationBuckets.size() + 1> buckets{};
    std::atomic<uint64_t> sum_nanos{0};
  };
  struct Gauge {
    std::string help;
    std::function<double()> read;
  };
  MethodStats& StatsFor(absl::string_view full_method);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<MethodStats>, std::less<>> methods_;
  std::map<std::string, uint64_t, std::less<>> rejected_;
  std::map<std::string, Gauge> gauges_;
  // By preset (3) and dtype (3).
  std::array<std::atomic<uint64_t>, 9> rows_{};
  const double start_time_seconds_;
};

// The limit a RESOURCE_EXHAUSTED message names ("max_rows", "queue_depth", ...), or
// "other" (exposed for tests).
absl::string_view LimitNamedIn(absl::string_view message);

// Writes `value` the way the exposition format wants it (+Inf, -Inf, NaN, shortest
// round-trip decimal otherwise).
std::string FormatMetricValue(double value);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_METRICS_H_
