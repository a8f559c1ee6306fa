#include "sampler/stages/xtc.h"

#include "sampler/draw.h"

namespace tokensampler::sampler {

double XtcCoin(uint64_t seed, uint64_t step) {
  return DrawUniformForPurpose(seed, step, 0, kXtcPurpose);
}

size_t XtcCut(absl::Span<int32_t> ids, const float* weight, const float* z, double mass,
              float threshold, size_t min_keep) {
  const size_t n = ids.size();
  if (n < 2) return n;
  // p >= threshold  <=>  weight >= threshold * mass, decided per token on its float
  // probability as the softmax would report it.
  auto prob = [&](int32_t id) {
    return static_cast<float>(static_cast<double>(weight[id]) / mass);
  };
  size_t above = 0;
  int32_t last = -1;  // the least likely token at or above the threshold
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = ids[i];
    const float p = prob(id);
    if (!(p >= threshold)) continue;
    ++above;
    if (last < 0 || z[id] < z[last] || (z[id] == z[last] && id > last)) last = id;
  }
  if (above < 2 || n - (above - 1) < min_keep) return n;
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = ids[i];
    if (id == last || !(prob(id) >= threshold)) ids[out++] = id;
  }
  return out;
}

size_t XtcDense(absl::Span<float> w, const float* z, double mass, float threshold,
                size_t min_keep, std::vector<int32_t>* above) {
  // A float prefilter a little below the threshold weight, then the exact test on the
  // few tokens that pass it (at most about 1 / threshold of them).
  const float near = static_cast<float>(static_cast<double>(threshold) * mass * (1.0 - 1e-6));
  above->clear();
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] >= near && static_cast<float>(static_cast<double>(w[i]) / mass) >= threshold) {
      above->push_back(static_cast<int32_t>(i));
    }
  }
  if (above->size() < 2) return 0;
  int32_t last = (*above)[0];
  for (int32_t id : *above) {
    if (z[id] < z[last] || (z[id] == z[last] && id > last)) last = id;
  }
  size_t live = 0;
  for (float wi : w) live += wi > 0.0f ? 1 : 0;
  if (live - (above->size() - 1) < min_keep) return 0;
  for (int32_t id : *above) {
    if (id != last) w[id] = 0.0f;
  }
  return above->size() - 1;
}

}  // namespace tokensampler::sampler
