// No repeated n-grams (transformers' NoRepeatNGramLogitsProcessor).
#ifndef TOKENSAMPLER_SAMPLER_STAGES_NO_REPEAT_NGRAM_H_
#define TOKENSAMPLER_SAMPLER_STAGES_NO_REPEAT_NGRAM_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace tokensampler::sampler::stages {

// Sets z[t] = -inf for every token t such that the last n - 1 tokens of `tokens`
// followed by t already occur as an n-gram in `tokens` (n = 1: every token of `tokens`).
// n <= 0 is off. O(|tokens|) time whatever n: the Z-function of the reversed tokens
// gives, at each position, how far the text ending there matches the text's end.
// `workspace` is reused scratch. REQUIRES: every id in tokens indexes z.
void BanRepeatedNgrams(absl::Span<const int32_t> tokens, int32_t n, std::vector<int32_t>* workspace,
                       float* z);

}  // namespace tokensampler::sampler::stages

#endif  // TOKENSAMPLER_SAMPLER_STAGES_NO_REPEAT_NGRAM_H_
