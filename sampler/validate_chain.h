// The parameter rules of llama.cpp's other samplers (top-n-sigma, XTC, DRY, mirostat,
// dynamic temperature, penalty window): ranges, the presets that reject them, and the
// combinations mirostat forbids. Called by ValidateParams.
#ifndef TOKENSAMPLER_SAMPLER_VALIDATE_CHAIN_H_
#define TOKENSAMPLER_SAMPLER_VALIDATE_CHAIN_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "sampler/params.h"

namespace tokensampler::sampler {

// Most DRY sequence breakers per row, and most tokens in one.
inline constexpr size_t kMaxDryBreakers = 256;
inline constexpr size_t kMaxDryBreakerLength = 32;

// INVALID_ARGUMENT with the field path relative to the row, the rule and the value:
// "params.dry.base: must be > 1 when dry.multiplier > 0, got 0.5".
absl::Status ValidateChainParams(const SamplingParams& p, size_t vocab_size);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_VALIDATE_CHAIN_H_
