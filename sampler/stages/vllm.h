// vLLM v1's rules where they differ from the other presets' (PRESET_VLLM; the order of
// its chain is in docs/SAMPLING.md).
#ifndef TOKENSAMPLER_SAMPLER_STAGES_VLLM_H_
#define TOKENSAMPLER_SAMPLER_STAGES_VLLM_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "sampler/params.h"

namespace tokensampler::sampler::stages {

// vLLM's logit bias: clamped to [-kVllmMaxBias, kVllmMaxBias] (so -inf becomes -100).
float VllmBias(float bias);

// vLLM's penalties on z: the repetition penalty (z > 0 ? z / r : z * r) once for every
// distinct token of prompt + output (`context`, whose first `num_prompt` are the prompt),
// then `count * frequency + presence` subtracted for every token of the output, with
// count its occurrences in the output. No window. A -inf logit stays -inf. Off values
// as in SamplingParams (repetition 0 or 1, presence 0, frequency 0). `workspace` is
// reused scratch. Errors: a logit the penalties turn into +inf ("context_token_ids: ...").
// REQUIRES: every id in context indexes z.
absl::Status ApplyVllmPenalties(absl::Span<const int32_t> context, size_t num_prompt,
                                float repetition, float presence, float frequency,
                                std::vector<std::pair<int32_t, int32_t>>* workspace, float* z);

// vLLM's top-p threshold: it removes the tokens whose ascending float32 cumulative
// probability is <= 1 - p, with p a float32 tensor, so 1 - p is a float32 difference.
inline float VllmTopPThreshold(float top_p) { return 1.0f - top_p; }

}  // namespace tokensampler::sampler::stages

#endif  // TOKENSAMPLER_SAMPLER_STAGES_VLLM_H_
