// Sampling parameters and row inputs of the tokensampler numeric library.
//
// Every stage of the pipeline is off by default; the "off" value of each field is the
// default given here, and the comment says which other values also mean off.
#ifndef TOKENSAMPLER_SAMPLER_PARAMS_H_
#define TOKENSAMPLER_SAMPLER_PARAMS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/types/span.h"

namespace tokensampler::sampler {

// Largest vocabulary a row may have.
inline constexpr int32_t kMaxVocab = 1 << 20;
// Most alternatives returned with each sample.
inline constexpr int32_t kMaxTopLogprobs = 20;
// Most samples the library draws from one row (num_samples); a server may set a lower
// limit of its own.
inline constexpr int32_t kMaxNumSamplesLibrary = 4096;
// Most logprob_token_ids of one row.
inline constexpr int32_t kMaxLogprobTokenIds = 128;
// Most bad_words sequences of one row, and most tokens in one.
inline constexpr int32_t kMaxBadWords = 1024;
inline constexpr int32_t kMaxBadWordLength = 128;
// vLLM treats a temperature below this as greedy (PRESET_VLLM).
inline constexpr float kVllmGreedyTemperature = 1e-5f;
// vLLM clamps every logit bias to [-kVllmMaxBias, kVllmMaxBias] (PRESET_VLLM).
inline constexpr float kVllmMaxBias = 100.0f;

// Order and boundary rules of the pipeline; see README "Pipeline and presets".
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
  // vLLM v1: masks -> bad words -> min_tokens, logit bias clamped to [-100, 100] ->
  // repetition over prompt + output, presence/frequency over the output -> temperature
  // (< 1e-5 greedy) -> min-p -> top-k (ties with the k-th kept) -> top-p (HF's rule).
  kVllm,
};

// Which distribution logprobs are reported from.
enum class LogprobsMode {
  kRaw,        // log-softmax of the logits as given, before any processing
  kProcessed,  // log of the distribution the draw is made from
  kRawLogits,        // the logits as given (values, not logprobs)
  kProcessedLogits,  // the logits after every stage over T (1 when greedy); -inf outside
                     // the distribution the draw is made from
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

// A token-level structured-output mask: ceil(V / 32) little-endian uint32 words, bit
// j % 32 of word j / 32 set = token j allowed. `data` needs no alignment.
struct TokenBitmask {
  const uint8_t* data = nullptr;  // null = off
  size_t size_bytes = 0;          // 4 * ceil(V / 32) when set
  bool empty() const { return data == nullptr; }
};

struct LogitBias {
  int32_t token_id;  // in [0, V)
  float bias;        // finite, or -inf to ban the token
};

// DRY ("don't repeat yourself", llama.cpp): for each token t, the match length L is the
// longest suffix of the window of context_token_ids that also occurs earlier in it
// immediately followed by t (never extending back across a sequence breaker); if
// L >= allowed_length, z_t -= multiplier * base^(L - allowed_length). See sampler/stages/dry.h.
struct DryParams {
  float multiplier = 0.0f;        // 0 = off; finite, >= 0
  float base = 1.75f;             // > 1 when on
  int32_t allowed_length = 2;     // >= 0
  int32_t penalty_last_n = 0;     // 0 = the whole context; > 0 = its last n tokens
  absl::Span<const absl::Span<const int32_t>> sequence_breakers;  // each non-empty
};

// Mirostat v1/v2 (llama.cpp): replaces the truncations; see sampler/stages/mirostat.h.
struct MirostatParams {
  int32_t version = 0;            // 0 = off, 1 or 2
  float tau = 5.0f;               // target surprise in bits; finite, > 0
  float eta = 0.1f;               // learning rate; finite, > 0
  std::optional<float> mu;        // the state; unset = 2 * tau; finite
  int32_t m = 100;                // v1: tokens of the Zipf estimate; >= 1
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
  // llama.cpp's other samplers (README "Pipeline and presets": their place per preset;
  // Preset::kHf rejects them).
  float top_n_sigma = 0.0f;         // 0 = off; finite, >= 0
  float xtc_probability = 0.0f;     // 0 = off; in [0, 1]
  float xtc_threshold = 0.1f;       // in (0, 0.5] when xtc_probability > 0
  DryParams dry;
  MirostatParams mirostat;
  float dynatemp_range = 0.0f;      // 0 = off; finite, >= 0
  float dynatemp_exponent = 1.0f;   // finite, > 0
  int32_t penalty_last_n = 0;       // 0 = the penalties see the whole context; > 0 = last n

  // The first num_prompt_tokens of context_token_ids are the prompt, the rest the output
  // so far; in [0, context size].
  size_t num_prompt_tokens = 0;
  TokenBitmask allowed_token_bitmask;             // off = empty; applied like allowed ids
  int32_t min_tokens = 0;                         // 0 = off; >= 0
  absl::Span<const int32_t> stop_token_ids;       // masked while output < min_tokens
  // Each a sequence of 1..kMaxBadWordLength ids; at most kMaxBadWords.
  absl::Span<const absl::Span<const int32_t>> bad_words;
  int32_t no_repeat_ngram_size = 0;               // 0 = off; >= 0
  bool return_kept_set = false;                   // fill SampleResult::kept_set
  absl::Span<const int32_t> logprob_token_ids;    // at most kMaxLogprobTokenIds

  // The output part of the context.
  absl::Span<const int32_t> output_token_ids() const {
    return context_token_ids.subspan(std::min(num_prompt_tokens, context_token_ids.size()));
  }
};

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_PARAMS_H_
