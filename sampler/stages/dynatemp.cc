#include "sampler/stages/dynatemp.h"

#include <algorithm>
#include <cmath>

namespace tokensampler::sampler {

double SoftmaxEntropy(absl::Span<const float> w, absl::Span<const float> z, float max,
                      double mass) {
  // Four interleaved lanes, added as (l0 + l1) + (l2 + l3): a fixed order that is not one
  // chain of dependent adds.
  double lane[4] = {0.0, 0.0, 0.0, 0.0};
  const size_t n = w.size();
  for (size_t i = 0; i < n; ++i) {
    const float wi = w[i];
    if (wi > 0.0f) {
      lane[i % 4] += static_cast<double>(wi) * (static_cast<double>(z[i]) - max);
    }
  }
  const double weighted = (lane[0] + lane[1]) + (lane[2] + lane[3]);
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
