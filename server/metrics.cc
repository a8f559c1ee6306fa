#include "server/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "sampler/sampler.h"
#include "server/rpc_status.h"

#ifndef TOKENSAMPLER_VERSION
#define TOKENSAMPLER_VERSION "0.0.0"
#endif

namespace tokensampler::server {
namespace {

constexpr const char* kPresetNames[] = {"standard", "hf", "llama_cpp"};
constexpr const char* kDtypeNames[] = {"float32", "bfloat16", "float16"};

// A label value with \, " and newline escaped.
std::string Label(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void Header(std::string* out, absl::string_view name, absl::string_view type,
            absl::string_view help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

// "/tokensampler.v1.Sampler/Sample" -> {"tokensampler.v1.Sampler", "Sample"}.
std::pair<absl::string_view, absl::string_view> SplitMethod(absl::string_view full) {
  if (absl::StartsWith(full, "/")) full.remove_prefix(1);
  const size_t slash = full.find('/');
  if (slash == absl::string_view::npos) return {"", full};
  return {full.substr(0, slash), full.substr(slash + 1)};
}

struct ProcessStats {
  double cpu_seconds = 0;
  double rss_bytes = 0;
  double virtual_bytes = 0;
  double threads = 0;
  double open_fds = 0;
  bool ok = false;
};

// From /proc/self/stat (fields after the command name: state is field 3).
ProcessStats ReadProcessStats() {
  ProcessStats stats;
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return stats;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return stats;
  std::vector<std::string> fields = absl::StrSplit(absl::string_view(line).substr(paren + 2), ' ');
  // fields[0] is field 3 (state): field n is fields[n - 3].
  if (fields.size() < 22) return stats;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  stats.cpu_seconds = (std::stod(fields[14 - 3]) + std::stod(fields[15 - 3])) / ticks;
  stats.threads = std::stod(fields[20 - 3]);
  stats.virtual_bytes = std::stod(fields[23 - 3]);
  stats.rss_bytes = std::stod(fields[24 - 3]) * page;
  if (DIR* dir = opendir("/proc/self/fd")) {
    int n = 0;
    while (readdir(dir) != nullptr) ++n;
    closedir(dir);
    stats.open_fds = n - 3;  // ".", ".." and the directory's own descriptor
  }
  stats.ok = true;
  return stats;
}

class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(Metrics* metrics, const char* method)
      : metrics_(metrics),
        method_(method == nullptr ? "" : method),
        start_(std::chrono::steady_clock::now()) {}

  ~CallInterceptor() override {
    // No status was sent: the call was cancelled (by the client, a deadline or gRPC).
    if (!counted_) Count(grpc::StatusCode::CANCELLED, "");
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (!counted_ && methods->QueryInterceptionHookPoint(
                         grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      Count(status.error_code(), status.error_message());
    }
    methods->Proceed();
  }

 private:
  void Count(grpc::StatusCode code, absl::string_view message) {
    counted_ = true;
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    metrics_->CountCall(method_, code, elapsed.count(), message);
  }

  Metrics* const metrics_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
  bool counted_ = false;
};

class CallInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(metrics_, info->method());
  }

 private:
  Metrics* const metrics_;
};

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buffer[32];
  for (int precision = 6; precision <= 17; ++precision) {  // shortest that round-trips
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

absl::string_view LimitNamedIn(absl::string_view message) {
  // The server's own messages name the flag of the limit; gRPC's size check does not.
  for (absl::string_view limit :
       {"max_memory", "max_streams", "max_live_sequences", "max_rows", "queue_depth",
        "max_sequences", "max_history_tokens", "max_message_bytes"}) {
    if (absl::StrContains(message, limit)) return limit;
  }
  if (absl::StrContains(message, "larger than max")) return "max_message_bytes";
  return "other";
}

Metrics::Metrics() : start_time_seconds_(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch())) {}

Metrics::MethodStats& Metrics::StatsFor(absl::string_view full_method) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = methods_.find(full_method);
  if (it == methods_.end()) {
    it = methods_.emplace(std::string(full_method), std::make_unique<MethodStats>()).first;
  }
  return *it->second;
}

void Metrics::CountCall(absl::string_view full_method, grpc::StatusCode code, double seconds,
                        absl::string_view message) {
  MethodStats& stats = StatsFor(full_method);
  const int c = static_cast<int>(code);
  stats.calls[c >= 0 && c < 17 ? c : static_cast<int>(grpc::StatusCode::UNKNOWN)].fetch_add(
      1, std::memory_order_relaxed);
  size_t bucket = 0;
  while (bucket < kDurationBuckets.size() && seconds > kDurationBuckets[bucket]) ++bucket;
  stats.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  stats.sum_nanos.fetch_add(static_cast<uint64_t>(std::max(0.0, seconds) * 1e9),
                            std::memory_order_relaxed);
  if (code == grpc::StatusCode::RESOURCE_EXHAUSTED) CountRejected(LimitNamedIn(message));
}

void Metrics::CountRows(sampler::Preset preset, sampler::Dtype dtype, uint64_t rows) {
  const size_t p = static_cast<size_t>(preset), d = static_cast<size_t>(dtype);
  if (p < 3 && d < 3) rows_[p * 3 + d].fetch_add(rows, std::memory_order_relaxed);
}

void Metrics::CountRejected(absl::string_view limit) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rejected_.find(limit);
  if (it == rejected_.end()) it = rejected_.emplace(std::string(limit), 0).first;
  ++it->second;
}

void Metrics::RegisterGauge(std::string name, std::string help, std::function<double()> read) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_[std::move(name)] = Gauge{std::move(help), std::move(read)};
}

std::string Metrics::Render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);

  Header(&out, "tokensampler_rpc_calls_total", "counter",
         "RPCs ended, by service, method and gRPC status code.");
  for (const auto& [full, stats] : methods_) {
    auto [service, method] = SplitMethod(full);
    for (int c = 0; c < 17; ++c) {
      const uint64_t n = stats->calls[c].load(std::memory_order_relaxed);
      if (n == 0) continue;
      absl::StrAppend(&out, "tokensampler_rpc_calls_total{service=\"", Label(service),
                      "\",method=\"", Label(method), "\",code=\"",
                      GrpcCodeName(static_cast<grpc::StatusCode>(c)), "\"} ", n, "\n");
    }
  }
  Header(&out, "tokensampler_rpc_duration_seconds", "histogram",
         "RPC duration from the call's start to its status, by service and method.");
  for (const auto& [full, stats] : methods_) {
    auto [service, method] = SplitMethod(full);
    const std::string labels =
        absl::StrCat("service=\"", Label(service), "\",method=\"", Label(method), "\"");
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= kDurationBuckets.size(); ++b) {
      cumulative += stats->buckets[b].load(std::memory_order_relaxed);
      absl::StrAppend(&out, "tokensampler_rpc_duration_seconds_bucket{", labels, ",le=\"",
                      b < kDurationBuckets.size() ? FormatMetricValue(kDurationBuckets[b]) : "+Inf",
                      "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "tokensampler_rpc_duration_seconds_sum{", labels, "} ",
                    FormatMetricValue(stats->sum_nanos.load(std::memory_order_relaxed) / 1e9),
                    "\n");
    absl::StrAppend(&out, "tokensampler_rpc_duration_seconds_count{", labels, "} ", cumulative,
                    "\n");
  }
  Header(&out, "tokensampler_rows_total", "counter",
         "Rows sampled (Sample, GetDistribution, SampleStream), by preset and logits dtype.");
  for (size_t p = 0; p < 3; ++p) {
    for (size_t d = 0; d < 3; ++d) {
      absl::StrAppend(&out, "tokensampler_rows_total{preset=\"", kPresetNames[p], "\",dtype=\"",
                      kDtypeNames[d], "\"} ", rows_[p * 3 + d].load(std::memory_order_relaxed),
                      "\n");
    }
  }
  Header(&out, "tokensampler_rejected_total", "counter",
         "Requests refused with RESOURCE_EXHAUSTED, by the limit (flag) that refused them.");
  for (const auto& [limit, n] : rejected_) {
    absl::StrAppend(&out, "tokensampler_rejected_total{limit=\"", Label(limit), "\"} ", n, "\n");
  }
  for (const auto& [name, gauge] : gauges_) {
    Header(&out, name, "gauge", gauge.help);
    absl::StrAppend(&out, name, " ", FormatMetricValue(gauge.read()), "\n");
  }

  const ProcessStats process = ReadProcessStats();
  if (process.ok) {
    Header(&out, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    absl::StrAppend(&out, "process_cpu_seconds_total ", FormatMetricValue(process.cpu_seconds),
                    "\n");
    Header(&out, "process_resident_memory_bytes", "gauge", "Resident set size.");
    absl::StrAppend(&out, "process_resident_memory_bytes ", FormatMetricValue(process.rss_bytes),
                    "\n");
    Header(&out, "process_virtual_memory_bytes", "gauge", "Virtual memory size.");
    absl::StrAppend(&out, "process_virtual_memory_bytes ", FormatMetricValue(process.virtual_bytes),
                    "\n");
    Header(&out, "process_threads", "gauge", "OS threads of the process.");
    absl::StrAppend(&out, "process_threads ", FormatMetricValue(process.threads), "\n");
    Header(&out, "process_open_fds", "gauge", "Open file descriptors.");
    absl::StrAppend(&out, "process_open_fds ", FormatMetricValue(process.open_fds), "\n");
  }
  Header(&out, "process_start_time_seconds", "gauge",
         "Start time of the server since the Unix epoch.");
  absl::StrAppend(&out, "process_start_time_seconds ", FormatMetricValue(start_time_seconds_),
                  "\n");
  Header(&out, "tokensampler_build_info", "gauge",
         "Always 1; the labels say the version and the SIMD target the kernels run on.");
  absl::StrAppend(&out, "tokensampler_build_info{version=\"", Label(TOKENSAMPLER_VERSION),
                  "\",simd=\"", Label(sampler::SimdTargetName()), "\"} 1\n");
  return out;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
Metrics::MakeInterceptorFactory() {
  return std::make_unique<CallInterceptorFactory>(this);
}

}  // namespace tokensampler::server
