#include "client/latency.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tokensampler::client {

double Percentile(absl::Span<const double> sorted, double q) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  // A tiny tolerance keeps e.g. 0.9 * 10 == 9.000000000000002 from rounding up a rank.
  double rank = std::ceil(q / 100.0 * n - 1e-9);
  rank = std::clamp(rank, 1.0, n);
  return sorted[static_cast<size_t>(rank) - 1];
}

LatencySummary Summarize(std::vector<double>& samples) {
  LatencySummary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / samples.size();
  s.p50 = Percentile(samples, 50);
  s.p90 = Percentile(samples, 90);
  s.p99 = Percentile(samples, 99);
  s.max = samples.back();
  return s;
}

}  // namespace tokensampler::client
