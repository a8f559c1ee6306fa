// Bad words (vLLM's rule): token sequences that must not be generated.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_BAD_WORDS_H_
#define TOKENSAMPLER_SAMPLER_STAGES_BAD_WORDS_H_

#include <cstdint>

#include "absl/types/span.h"

namespace tokensampler::sampler::stages {

// For every sequence w of `bad_words` (length L >= 1) whose first L - 1 tokens equal the
// last L - 1 tokens of `output`, sets z[w[L - 1]] = -inf; a one-token sequence is always
// banned. O(total length of bad_words), whatever the output's length.
// REQUIRES: every id in bad_words indexes z.
void BanBadWords(absl::Span<const absl::Span<const int32_t>> bad_words,
                 absl::Span<const int32_t> output, float* z);

}  // namespace tokensampler::sampler::stages

#endif  // TOKENSAMPLER_SAMPLER_STAGES_BAD_WORDS_H_
