// Sampling parameters and row inputs of the tokensampler numeric library.
//
// Every stage of the pipeline is off by default; the "off" value of each field is the
// default given here, and the comment says which other values also mean off.
#ifndef TOKENSAMPLER_SAMPLER_PARAMS_H_
#define TOKENSAMPLER_SAMPLER_PARAMS_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace tokensampler::sampler {

// Largest vocabulary a row may have.
inline constexpr int32_t kMaxVocab = 1 << 20;
// Most alternatives returned with each sample.
inline constexpr int32_t kMaxTopLogprobs = 20;
// Most samples the library draws from one row (num_samples); a server may set a lower
// limit of its own.
inline constexpr int32_t kMaxNumSamplesLibrary = 4096;

// Order and boundary rules of the pipeline; see README "Presets".
enum class Preset {
  // mask/bias -> penalties -> temperature -> top-k -> top-p -> min-p -> typical -> draw.
  // Every truncation keeps exactly what its rule says, ties at the cut to the lowest id.
  kStandard,
  // Hugging Face transformers generate(): top-k keeps ties with the k-th, top-p removes
  // where the ascending float32 cumulative sum is <= 1 - p, never renormalises between
  // warpers (a final softmax does).
  kHf,
  // llama.cpp default chain: top-k -> typical -> top-p -> min-p -> temperature last.
  kLlamaCpp,
};

// Which distribution logprobs are reported from.
enum class LogprobsMode {
  kRaw,        // log-softmax of the logits as given, before any processing
  kProcessed,  // log of the distribution the draw is made from
};

// Element type of a row's logits.
enum class Dtype { kFloat32, kBFloat16, kFloat16 };

// A read-only view of one row of logits, `size` elements of `dtype`, little-endian.
// `data` needs no particular alignment. The caller keeps it alive during the call.
struct LogitsView {
  const void* data = nullptr;
  size_t size = 0;
  Dtype dtype = Dtype::kFloat32;

  static LogitsView Float32(absl::Span<const float> v) {
    return {v.data(), v.size(), Dtype::kFloat32};
  }
};

struct LogitBias {
  int32_t token_id;  // in [0, V)
  float bias;        // finite, or -inf to ban the token
};

// Parameters of one row. Spans are views the caller keeps alive during the call.
struct SamplingParams {
  float temperature = 1.0f;        // 1 = off; 0 = greedy (argmax, lowest id on ties)
  int32_t top_k = 0;               // 0 = off; >= 0
  float top_p = 1.0f;              // 1 = off; in (0, 1]
  float min_p = 0.0f;              // 0 = off; in [0, 1]
  float typical_p = 1.0f;          // 1 = off; in (0, 1]
  float repetition_penalty = 1.0f; // 1 (or 0) = off; finite, >= 0
  float presence_penalty = 0.0f;   // 0 = off; finite
  float frequency_penalty = 0.0f;  // 0 = off; finite
  absl::Span<const LogitBias> logit_bias;        // empty = off; ids unique
  absl::Span<const int32_t> allowed_token_ids;   // empty = off (all allowed)
  absl::Span<const int32_t> banned_token_ids;    // empty = off
  absl::Span<const int32_t> context_token_ids;   // tokens so far, for the penalties
  uint64_t seed = 0;                // keys the draw (see DRAW in README)
  int32_t num_samples = 1;          // >= 1; sample indices 0 .. num_samples-1
  int32_t top_logprobs = 0;         // 0 .. kMaxTopLogprobs
  LogprobsMode logprobs_mode = LogprobsMode::kRaw;
  Preset preset = Preset::kStandard;
  int32_t min_tokens_to_keep = 1;   // >= 1; lower bound for every truncation
};

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_PARAMS_H_
