// A bench run's report: one line of JSON, or a few lines of text.
#ifndef TOKENSAMPLER_CLIENT_BENCH_REPORT_H_
#define TOKENSAMPLER_CLIENT_BENCH_REPORT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "client/bench.h"

namespace tokensampler::client {

// "unary", "stream" or "verify".
const char* BenchModeName(const BenchOptions& options);

// The run's options and figures as one JSON object; `server` is the address measured.
std::string BenchResultJson(const BenchOptions& options, const BenchResult& result,
                            absl::string_view server);
// The same as text: settings, calls, throughput, latency, and the errors if any.
std::string BenchResultText(const BenchOptions& options, const BenchResult& result,
                            absl::string_view server);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_BENCH_REPORT_H_
