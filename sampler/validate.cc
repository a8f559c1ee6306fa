// ValidateParams (sampler/sampler.h): every rule on SamplingParams, in one place.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sampler/sampler.h"
#include "sampler/validate_chain.h"
#include "sampler/validate_output.h"

namespace tokensampler::sampler {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::Status CheckIds(absl::string_view field, absl::Span<const int32_t> ids,
                      size_t vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= vocab_size) {
      return Invalid(absl::StrCat(field, "[", i, "]: token id ", ids[i], " out of range [0, ",
                                  vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateParams(const SamplingParams& p, size_t vocab_size) {
  if (vocab_size == 0) return Invalid("logits: must not be empty");
  if (vocab_size > static_cast<size_t>(kMaxVocab)) {
    return Invalid(absl::StrCat("logits: size ", vocab_size,
                                " exceeds the maximum vocabulary size ", kMaxVocab));
  }
  if (!(std::isfinite(p.temperature) && p.temperature >= 0.0f)) {
    return Invalid(absl::StrCat("params.temperature: must be finite and >= 0, got ",
                                p.temperature));
  }
  if (p.top_k < 0) return Invalid(absl::StrCat("params.top_k: must be >= 0, got ", p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return Invalid(absl::StrCat("params.top_p: must be in (0, 1], got ", p.top_p));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    return Invalid(absl::StrCat("params.min_p: must be in [0, 1], got ", p.min_p));
  }
  if (!(p.typical_p > 0.0f && p.typical_p <= 1.0f)) {
    return Invalid(absl::StrCat("params.typical_p: must be in (0, 1], got ", p.typical_p));
  }
  if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty >= 0.0f)) {
    return Invalid(absl::StrCat("params.repetition_penalty: must be finite and >= 0, got ",
                                p.repetition_penalty));
  }
  if (!std::isfinite(p.presence_penalty)) {
    return Invalid(
        absl::StrCat("params.presence_penalty: must be finite, got ", p.presence_penalty));
  }
  if (!std::isfinite(p.frequency_penalty)) {
    return Invalid(
        absl::StrCat("params.frequency_penalty: must be finite, got ", p.frequency_penalty));
  }
  if (p.num_samples < 1) {
    return Invalid(absl::StrCat("params.num_samples: must be >= 1, got ", p.num_samples));
  }
  if (p.num_samples > kMaxNumSamplesLibrary) {
    return Invalid(absl::StrCat("params.num_samples: must be <= ", kMaxNumSamplesLibrary, ", got ",
                                p.num_samples));
  }
  if (p.top_logprobs < 0 || p.top_logprobs > kMaxTopLogprobs) {
    return Invalid(absl::StrCat("params.top_logprobs: must be in [0, ", kMaxTopLogprobs,
                                "], got ", p.top_logprobs));
  }
  if (p.min_tokens_to_keep < 1) {
    return Invalid(
        absl::StrCat("params.min_tokens_to_keep: must be >= 1, got ", p.min_tokens_to_keep));
  }
  if (p.preset != Preset::kStandard && p.preset != Preset::kHf &&
      p.preset != Preset::kLlamaCpp && p.preset != Preset::kVllm) {
    return Invalid(
        absl::StrCat("params.preset: unknown value ", static_cast<int>(p.preset)));
  }
  if (p.logprobs_mode != LogprobsMode::kRaw && p.logprobs_mode != LogprobsMode::kProcessed &&
      p.logprobs_mode != LogprobsMode::kRawLogits &&
      p.logprobs_mode != LogprobsMode::kProcessedLogits) {
    return Invalid(absl::StrCat("params.logprobs_mode: unknown value ",
                                static_cast<int>(p.logprobs_mode)));
  }
  // logit_bias is a map in the API, so its path names the token id, not a position.
  for (const LogitBias& b : p.logit_bias) {
    if (b.token_id < 0 || static_cast<size_t>(b.token_id) >= vocab_size) {
      return Invalid(absl::StrCat("params.logit_bias[", b.token_id,
                                  "]: token id out of range [0, ", vocab_size, ")"));
    }
    if (!(std::isfinite(b.bias) || b.bias == -kInf)) {
      return Invalid(absl::StrCat("params.logit_bias[", b.token_id,
                                  "]: bias must be finite or -inf, got ", b.bias));
    }
  }
  if (p.logit_bias.size() > 1 && p.logit_bias.size() <= 32) {
    // Small maps (the usual case): pairwise, without allocating.
    for (size_t i = 1; i < p.logit_bias.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (p.logit_bias[i].token_id == p.logit_bias[j].token_id) {
          return Invalid(absl::StrCat("params.logit_bias[", p.logit_bias[i].token_id,
                                      "]: duplicate token id"));
        }
      }
    }
  } else if (p.logit_bias.size() > 32) {
    std::vector<int32_t> ids;
    ids.reserve(p.logit_bias.size());
    for (const LogitBias& b : p.logit_bias) ids.push_back(b.token_id);
    std::sort(ids.begin(), ids.end());
    for (size_t i = 1; i < ids.size(); ++i) {
      if (ids[i] == ids[i - 1]) {
        return Invalid(absl::StrCat("params.logit_bias[", ids[i], "]: duplicate token id"));
      }
    }
  }
  absl::Status s = CheckIds("params.allowed_token_ids", p.allowed_token_ids, vocab_size);
  if (!s.ok()) return s;
  s = CheckIds("params.banned_token_ids", p.banned_token_ids, vocab_size);
  if (!s.ok()) return s;
  s = CheckIds("context_token_ids", p.context_token_ids, vocab_size);
  if (!s.ok()) return s;
  s = ValidateChainParams(p, vocab_size);
  if (!s.ok()) return s;
  return ValidateOutputParams(p, vocab_size);
}

}  // namespace tokensampler::sampler
