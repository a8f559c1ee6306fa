#include "sampler/stages/dynatemp.h"

#include <algorithm>
#include <cmath>

namespace tokensampler::sampler {

namespace {
// The fixed reduction order: blocks of kBlock; kLanes float partial sums per block
// (element i to lane i mod kLanes), added in lane order to a double at the block's end.
constexpr size_t kBlock = 1024;
constexpr size_t kLanes = 16;
}  // namespace

double SoftmaxEntropy(absl::Span<const float> w, absl::Span<const float> z, float max,
                      double mass) {
  double weighted = 0.0;  // sum of w_i (z_i - max) over w_i > 0
  const size_t n = w.size();
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t end = std::min(n, b + kBlock);
    float acc[kLanes] = {};
    size_t i = b;
    for (; i + kLanes <= end; i += kLanes) {
      for (size_t j = 0; j < kLanes; ++j) {
        const float wi = w[i + j];
        acc[j] += wi > 0.0f ? wi * (z[i + j] - max) : 0.0f;
      }
    }
    for (size_t j = 0; i < end; ++i, ++j) {
      const float wi = w[i];
      acc[j] += wi > 0.0f ? wi * (z[i] - max) : 0.0f;
    }
    for (size_t j = 0; j < kLanes; ++j) weighted += acc[j];
  }
  return std::max(0.0, std::log(mass) - weighted / mass);
}

float DynamicTemperature(float temperature, float range, float exponent, double entropy,
                         size_t count) {
  if (count <= 1) return temperature;
  const double min_t = std::max(0.0, static_cast<double>(temperature) - range);
  const double max_t = static_cast<double>(temperature) + range;
  const double normalised = entropy / std::log(static_cast<double>(count));
  return static_cast<float>(min_t + (max_t - min_t) * std::pow(normalised, exponent));
}

}  // namespace tokensampler::sampler
