// Dynamic temperature (llama.cpp's "temp_ext", entropy-scaled): the temperature follows
// the normalised entropy of the candidates,
//   T = min_t + (max_t - min_t) * (H / ln N)^exponent,
//   min_t = max(0, temperature - range), max_t = temperature + range,
// H = -sum p ln p of the softmax of the N candidates at T = 1. N <= 1 keeps `temperature`.
// A resulting T of 0 means greedy, as temperature 0 does.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_DYNATEMP_H_
#define TOKENSAMPLER_SAMPLER_STAGES_DYNATEMP_H_

#include <cstddef>

#include "absl/types/span.h"

namespace tokensampler::sampler {

// H = -sum p ln p of p = w / mass over the entries with w > 0, computed as
// ln(mass) - sum_i w_i (z_i - max) / mass, where w_i = exp(z_i - max) are the weights of
// the logits z at T = 1 (so ln w_i = z_i - max) and mass = sum w_i. The products are
// float; they are summed in blocks of 1024, 16 float partial sums per block (element i to
// lane i mod 16), added in lane order to a double at the block's end: a fixed order.
// w and z are parallel spans.
double SoftmaxEntropy(absl::Span<const float> w, absl::Span<const float> z, float max, double mass);

// The dynamic temperature for entropy `entropy` over `count` candidates.
float DynamicTemperature(float temperature, float range, float exponent, double entropy,
                         size_t count);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_STAGES_DYNATEMP_H_
