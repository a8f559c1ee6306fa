#include "sampler/stages/top_n_sigma.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace tokensampler::sampler {

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr size_t kLanes = 8;
}  // namespace

float TopNSigmaThreshold(absl::Span<const float> z, float n) {
  // Pass 1: max, count and sum of the finite entries. Branch-free lanes so the compiler
  // can vectorise them; a masked entry adds 0.
  float max = -kInf;
  double sum[kLanes] = {};
  int64_t count[kLanes] = {};
  const size_t size = z.size();
  size_t i = 0;
  for (; i + kLanes <= size; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) {
      const float v = z[i + j];
      const bool finite = v > -kInf;
      max = v > max ? v : max;
      sum[j] += finite ? static_cast<double>(v) : 0.0;
      count[j] += finite;
    }
  }
  for (; i < size; ++i) {
    const float v = z[i];
    const bool finite = v > -kInf;
    max = v > max ? v : max;
    sum[i % kLanes] += finite ? static_cast<double>(v) : 0.0;
    count[i % kLanes] += finite;
  }
  double total = 0.0;
  int64_t finite_count = 0;
  for (size_t j = 0; j < kLanes; ++j) {
    total += sum[j];
    finite_count += count[j];
  }
  if (finite_count < 2) return -kInf;
  const double mean = total / static_cast<double>(finite_count);
  // Pass 2: the population variance around the mean.
  double sq[kLanes] = {};
  for (i = 0; i + kLanes <= size; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) {
      const float v = z[i + j];
      const double d = v > -kInf ? static_cast<double>(v) - mean : 0.0;
      sq[j] += d * d;
    }
  }
  for (; i < size; ++i) {
    const float v = z[i];
    const double d = v > -kInf ? static_cast<double>(v) - mean : 0.0;
    sq[i % kLanes] += d * d;
  }
  double acc = 0.0;
  for (size_t j = 0; j < kLanes; ++j) acc += sq[j];
  const double std_dev = std::sqrt(acc / static_cast<double>(finite_count));
  return static_cast<float>(static_cast<double>(max) - static_cast<double>(n) * std_dev);
}

size_t ApplyTopNSigma(absl::Span<float> z, float n) {
  const float threshold = TopNSigmaThreshold(z, n);
  size_t kept = 0;
  for (float& v : z) {
    v = v >= threshold ? v : -kInf;
    kept += v > -kInf;
  }
  return kept;
}

}  // namespace tokensampler::sampler
