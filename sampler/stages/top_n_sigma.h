// Top-n-sigma (llama.cpp; Tang et al. 2024): keeps the tokens whose logit is within n
// standard deviations of the best, z >= max - n * std, with max and the population
// standard deviation over the tokens not masked (-inf). Ties at the threshold stay; the
// best token always stays. Scaling every logit by 1/T scales max - z and std alike, so
// the kept set does not depend on the temperature.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_TOP_N_SIGMA_H_
#define TOKENSAMPLER_SAMPLER_STAGES_TOP_N_SIGMA_H_

#include <cstddef>

#include "absl/types/span.h"

namespace tokensampler::sampler {

// max - n * std over the finite entries of `z` (-inf entries are skipped), as a float.
// Two passes (the mean, then the squared deviations from it), each summed in a fixed
// order: blocks of 1024, 16 partial sums per block (element i to lane i mod 16; float
// lanes for the mean, double for the squares), added in lane order to a double at the end
// of the block. Returns -inf when fewer than two entries are finite.
// REQUIRES: n >= 0; no NaN or +inf in z.
float TopNSigmaThreshold(absl::Span<const float> z, float n);

// Sets every entry of `z` below TopNSigmaThreshold(z, n) to -inf. Returns the number kept.
size_t ApplyTopNSigma(absl::Span<float> z, float n);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_STAGES_TOP_N_SIGMA_H_
