#include "client/bench_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/logits.h"

namespace tokensampler::client {
namespace {

std::string JsonEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<int>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

}  // namespace

const char* BenchModeName(const BenchOptions& options) {
  return options.verify ? "verify" : options.stream ? "stream" : "unary";
}

std::string BenchResultJson(const BenchOptions& options, const BenchResult& r,
                            absl::string_view server) {
  std::string codes;
  for (const auto& [name, n] : r.error_codes) {
    absl::StrAppend(&codes, codes.empty() ? "" : ", ", "\"", name, "\": ", n);
  }
  return absl::StrFormat(
      "{\"server\": \"%s\", \"mode\": \"%s\", \"pipeline\": \"%s\", \"wire\": \"%s\", "
      "\"concurrency\": %d, \"vocab\": %d, \"rows_per_request\": %d, "
      "\"requests\": %d, \"rows\": %d, \"errors\": %d, \"error_codes\": {%s}, "
      "\"first_error\": \"%s\", \"seconds\": %.3f, \"requests_per_s\": %.1f, "
      "\"rows_per_s\": %.1f, \"mb_per_s\": %.1f, \"logits_bytes_per_request\": %d, "
      "\"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f, "
      "\"mean\": %.3f}}",
      JsonEscape(server), BenchModeName(options), JsonEscape(options.pipeline),
      options.shared_memory ? "shm" : WireName(options.wire), options.concurrency, options.vocab,
      options.rows, r.requests, r.rows, r.errors, codes, JsonEscape(r.first_error), r.seconds,
      r.requests_per_s, r.rows_per_s, r.mb_per_s, r.logits_bytes_per_request, r.latency_ms.p50,
      r.latency_ms.p90, r.latency_ms.p99, r.latency_ms.max, r.latency_ms.mean);
}

std::string BenchResultText(const BenchOptions& options, const BenchResult& r,
                            absl::string_view server) {
  std::string out = absl::StrFormat(
      "server %s  mode %s  pipeline %s  wire %s  concurrency %d  vocab %d  rows/request %d\n"
      "requests   %d ok, %d failed in %.2fs\n"
      "throughput %.1f requests/s  %.1f rows/s  %.1f MB/s of logits\n"
      "latency    p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n",
      server, BenchModeName(options), options.pipeline,
      options.shared_memory ? "shm" : WireName(options.wire), options.concurrency, options.vocab,
      options.rows, r.requests, r.errors, r.seconds, r.requests_per_s, r.rows_per_s, r.mb_per_s,
      r.latency_ms.p50, r.latency_ms.p90, r.latency_ms.p99, r.latency_ms.max);
  if (r.errors > 0) {
    std::string codes;
    for (const auto& [name, n] : r.error_codes) absl::StrAppend(&codes, " ", name, "=", n);
    absl::StrAppend(&out, "errors    ", codes, "\nfirst error: ", r.first_error, "\n");
  }
  return out;
}

}  // namespace tokensampler::client
