// min_tokens: no stop token before the output holds min_tokens tokens (vLLM, HF's
// MinNewTokensLengthLogitsProcessor).
#ifndef TOKENSAMPLER_SAMPLER_STAGES_MIN_TOKENS_H_
#define TOKENSAMPLER_SAMPLER_STAGES_MIN_TOKENS_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace tokensampler::sampler::stages {

// While output_size < min_tokens, sets z[id] = -inf for every id of stop_token_ids.
// min_tokens <= 0 is off. REQUIRES: every stop id indexes z.
void MaskStopTokens(int32_t min_tokens, size_t output_size,
                    absl::Span<const int32_t> stop_token_ids, float* z);

}  // namespace tokensampler::sampler::stages

#endif  // TOKENSAMPLER_SAMPLER_STAGES_MIN_TOKENS_H_
