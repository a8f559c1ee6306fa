// Latency percentiles for `tokensampler bench`.
#ifndef TOKENSAMPLER_CLIENT_LATENCY_H_
#define TOKENSAMPLER_CLIENT_LATENCY_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace tokensampler::client {

// Nearest-rank percentile of `sorted` (ascending): the smallest value such that at
// least q percent of the samples are <= it, i.e. sorted[ceil(q/100 * n) - 1], with
// q = 0 giving the minimum. REQUIRES: 0 <= q <= 100. Returns 0 for an empty span.
double Percentile(absl::Span<const double> sorted, double q);

struct LatencySummary {
  size_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;  // same unit as the input
};

// Sorts `samples` in place and summarises them.
LatencySummary Summarize(std::vector<double>& samples);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_LATENCY_H_
