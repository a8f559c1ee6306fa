// A slow, obviously correct reference of the sampling pipeline, the oracle of the
// tests: double precision everywhere, every ordering a full std::sort, no shortcuts.
// It follows docs/SAMPLING.md line by line and shares no code with sampler/.
#ifndef TOKENSAMPLER_TESTS_SAMPLER_REFERENCE_H_
#define TOKENSAMPLER_TESTS_SAMPLER_REFERENCE_H_

#include <cstdint>
#include <vector>

#include "sampler/params.h"

namespace tokensampler::sampler::testing {

// The final distribution of `logits` under `params`, dense (probability 0 for removed
// tokens), in double. REQUIRES: valid params and logits (no NaN/+inf, not all masked).
std::vector<double> ReferenceDistribution(const std::vector<float>& logits,
                                          const SamplingParams& params);

// log-softmax of the logits as given, in double.
std::vector<double> ReferenceLogSoftmax(const std::vector<float>& logits);

// The inverse CDF of README "The draw" over a dense distribution, in double.
int32_t ReferencePick(const std::vector<double>& probs, double u);

}  // namespace tokensampler::sampler::testing

#endif  // TOKENSAMPLER_TESTS_SAMPLER_REFERENCE_H_
