// From CLI flag values to the request's SamplingParams and rows.
#ifndef TOKENSAMPLER_CLIENT_SAMPLING_FLAGS_H_
#define TOKENSAMPLER_CLIENT_SAMPLING_FLAGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/logits.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::client {

// The sampling flags a user gave; std::nullopt = not given, so the request leaves the
// field unset and the server's default ("off") applies.
struct SamplingFlagValues {
  std::optional<float> temperature, top_p, min_p, typical_p;
  std::optional<float> repetition_penalty, presence_penalty, frequency_penalty;
  std::optional<int32_t> top_k, num_samples, top_logprobs, min_tokens_to_keep;
  std::optional<uint64_t> seed;
  std::optional<std::string> logit_bias;     // "id:value,..."
  std::optional<std::string> allowed;        // "id,id,..."
  std::optional<std::string> banned;         // "id,id,..."
  std::optional<std::string> logprobs_mode;  // raw | processed | raw_logits | processed_logits
  std::optional<std::string> preset;         // standard | hf | llama_cpp | vllm
  // llama.cpp's other samplers.
  std::optional<float> top_n_sigma, xtc_probability, xtc_threshold;
  std::optional<float> dry_multiplier, dry_base;
  std::optional<int32_t> dry_allowed_length, dry_penalty_last_n;
  std::optional<std::string> dry_sequence_breakers;  // "id,id;id": sequences split by ';'
  std::optional<int32_t> mirostat, mirostat_m;       // mirostat = the version
  std::optional<float> mirostat_tau, mirostat_eta, mirostat_mu;
  std::optional<float> dynatemp_range, dynatemp_exponent;
  std::optional<int32_t> penalty_last_n;
  // Output bans and returned extras (issue 14).
  std::optional<int32_t> min_tokens, no_repeat_ngram_size;
  std::optional<std::string> stop_token_ids;     // "id,id,..."
  std::optional<std::string> bad_words;          // "id,id;id;..." (';' between sequences)
  std::optional<std::string> logprob_token_ids;  // "id,id,..."
  std::optional<bool> return_kept_set;
};

// Row fields given by flags, the same for every row.
struct RowFlagValues {
  // "FILE.npy": int32/uint32 words, shape (W,) or (rows, W), W = ceil(V / 32) (what
  // xgrammar's bitmask tensor saves); anything else: the allowed ids "id,id,...", turned
  // into a bitmask here.
  std::optional<std::string> bitmask;
  std::optional<int32_t> num_prompt_tokens;
};

// "standard", "hf" (or "transformers"), "llama_cpp" (or "llama.cpp", "llamacpp"), "vllm".
absl::StatusOr<v1::Preset> ParsePreset(absl::string_view text);
// "raw", "processed", "raw_logits" or "processed_logits".
absl::StatusOr<v1::LogprobsMode> ParseLogprobsMode(absl::string_view text);

// Sets, on top of `base`, every flag that was given (a given 0 overrides too; lists
// and logit_bias replace the base's). Errors name the flag. Range checks are left to
// the server, which names the field it rejects.
absl::StatusOr<v1::SamplingParams> BuildSamplingParams(const SamplingFlagValues& flags,
                                                       v1::SamplingParams base = {});

// Sets Row.allowed_token_bitmask and Row.num_prompt_tokens on every row of `request`
// (rows of `vocab` logits). A bitmask file of several rows needs one per request row.
// Errors name the flag.
absl::Status ApplyRowFlags(const RowFlagValues& flags, size_t vocab, v1::SampleRequest* request);

// The "full" bench pipeline: temperature 0.8, top_k 50, top_p 0.95, min_p 0.05.
// "greedy": temperature 0. Anything else is an error.
absl::StatusOr<v1::SamplingParams> PipelineParams(absl::string_view pipeline);

// One request with a row per `rows` entry of `logits` (row-major, `cols` wide), each
// with `params`, `context` and `step`, logits encoded as `wire`.
v1::SampleRequest BuildRequest(absl::Span<const float> logits, size_t rows, size_t cols, Wire wire,
                               const v1::SamplingParams& params, absl::Span<const int32_t> context,
                               uint64_t step);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_SAMPLING_FLAGS_H_
