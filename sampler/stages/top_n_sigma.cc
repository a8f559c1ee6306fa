#include "sampler/stages/top_n_sigma.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace tokensampler::sampler {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// The fixed reduction order of both sums: blocks of kBlock elements; inside a block kLanes
// float partial sums (element i to lane i mod kLanes), added in lane order to a double at
// the end of the block. Plain float lanes, so the compiler vectorises them; the same
// order on every machine.
constexpr size_t kBlock = 1024;
constexpr size_t kLanes = 16;

// Sums f(v) over the finite entries of z in that order, in `Acc` lanes; also their count
// and maximum.
template <class Acc, class F>
double FiniteSum(absl::Span<const float> z, F f, size_t* count, float* max) {
  double total = 0.0;
  size_t finite_count = 0;
  float best = -kInf;
  for (size_t b = 0; b < z.size(); b += kBlock) {
    const size_t end = std::min(z.size(), b + kBlock);
    Acc acc[kLanes] = {};
    float top[kLanes];
    int32_t cnt[kLanes] = {};
    std::fill(top, top + kLanes, -kInf);
    size_t i = b;
    for (; i + kLanes <= end; i += kLanes) {
      for (size_t j = 0; j < kLanes; ++j) {
        const float v = z[i + j];
        const bool finite = v > -kInf;
        acc[j] += finite ? f(v) : Acc{0};
        cnt[j] += finite ? 1 : 0;
        top[j] = v > top[j] ? v : top[j];
      }
    }
    for (size_t j = 0; i < end; ++i, ++j) {
      const float v = z[i];
      const bool finite = v > -kInf;
      acc[j] += finite ? f(v) : Acc{0};
      cnt[j] += finite ? 1 : 0;
      top[j] = v > top[j] ? v : top[j];
    }
    for (size_t j = 0; j < kLanes; ++j) {
      total += acc[j];
      finite_count += static_cast<size_t>(cnt[j]);
      best = top[j] > best ? top[j] : best;
    }
  }
  *count = finite_count;
  *max = best;
  return total;
}

}  // namespace

float TopNSigmaThreshold(absl::Span<const float> z, float n) {
  size_t count = 0;
  float max = -kInf;
  // The mean: float lanes (a sum of values keeps its relative precision in float).
  const double total = FiniteSum<float>(
      z, [](float v) { return v; }, &count, &max);
  if (count < 2) return -kInf;
  const double mean = total / static_cast<double>(count);
  // The population variance around it: double lanes, since squared deviations of tiny
  // logits (|d| < 1e-19) would underflow float.
  const double squares = FiniteSum<double>(
      z,
      [mean](float v) {
        const double d = static_cast<double>(v) - mean;
        return d * d;
      },
      &count, &max);
  const double std_dev = std::sqrt(squares / static_cast<double>(count));
  return static_cast<float>(static_cast<double>(max) - static_cast<double>(n) * std_dev);
}

size_t ApplyTopNSigma(absl::Span<float> z, float n) {
  const float threshold = TopNSigmaThreshold(z, n);
  size_t kept = 0;
  for (float& v : z) {
    v = v >= threshold ? v : -kInf;
    kept += v > -kInf ? 1 : 0;
  }
  return kept;
}

}  // namespace tokensampler::sampler
