// The rules of the parameters that look at the output so far or shape what a result
// returns (structured-output bitmask, min_tokens, bad words, no_repeat_ngram, kept set,
// logprob_token_ids). Called by ValidateParams.
#ifndef TOKENSAMPLER_SAMPLER_VALIDATE_OUTPUT_H_
#define TOKENSAMPLER_SAMPLER_VALIDATE_OUTPUT_H_

#include <cstddef>

#include "absl/status/status.h"
#include "sampler/params.h"

namespace tokensampler::sampler {

// INVALID_ARGUMENT with the field path relative to the row, the rule and the value:
// "allowed_token_bitmask: must be 4 * ceil(V / 32) = 16 bytes for V = 100, got 12",
// "params.bad_words[1].token_ids[0]: token id 70000 out of range [0, 32000)".
absl::Status ValidateOutputParams(const SamplingParams& params, size_t vocab_size);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_VALIDATE_OUTPUT_H_
