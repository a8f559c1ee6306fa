#include "sampler/validate_output.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sampler/stages/bitmask.h"

namespace tokensampler::sampler {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

absl::Status CheckIdRange(absl::string_view field, absl::Span<const int32_t> ids,
                          size_t vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= vocab_size) {
      return Invalid(absl::StrCat(field, "[", i, "]"),
                     absl::StrCat("token id ", ids[i], " out of range [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateOutputParams(const SamplingParams& p, size_t vocab_size) {
  if (p.num_prompt_tokens > p.context_token_ids.size()) {
    return Invalid("num_prompt_tokens",
                   absl::StrCat("must be in [0, ", p.context_token_ids.size(),
                                "] (the number of context_token_ids), got ", p.num_prompt_tokens));
  }
  if (!p.allowed_token_bitmask.empty() &&
      p.allowed_token_bitmask.size_bytes != stages::BitmaskBytes(vocab_size)) {
    return Invalid(
        "allowed_token_bitmask",
        absl::StrCat("must be 4 * ceil(V / 32) = ", stages::BitmaskBytes(vocab_size),
                     " bytes for V = ", vocab_size, ", got ", p.allowed_token_bitmask.size_bytes));
  }
  if (p.preset == Preset::kVllm && p.typical_p != 1.0f) {
    return Invalid(
        "params.typical_p",
        absl::StrCat("PRESET_VLLM has no typical sampling; leave it unset, got ", p.typical_p));
  }
  if (p.min_tokens < 0) {
    return Invalid("params.min_tokens", absl::StrCat("must be >= 0, got ", p.min_tokens));
  }
  absl::Status s = CheckIdRange("params.stop_token_ids", p.stop_token_ids, vocab_size);
  if (!s.ok()) return s;
  if (p.bad_words.size() > static_cast<size_t>(kMaxBadWords)) {
    return Invalid("params.bad_words",
                   absl::StrCat("at most ", kMaxBadWords, " sequences, got ", p.bad_words.size()));
  }
  for (size_t i = 0; i < p.bad_words.size(); ++i) {
    const std::string field = absl::StrCat("params.bad_words[", i, "].token_ids");
    const size_t len = p.bad_words[i].size();
    if (len < 1 || len > static_cast<size_t>(kMaxBadWordLength)) {
      return Invalid(field,
                     absl::StrCat("must hold 1 to ", kMaxBadWordLength, " token ids, got ", len));
    }
    s = CheckIdRange(field, p.bad_words[i], vocab_size);
    if (!s.ok()) return s;
  }
  if (p.no_repeat_ngram_size < 0) {
    return Invalid("params.no_repeat_ngram_size",
                   absl::StrCat("must be >= 0, got ", p.no_repeat_ngram_size));
  }
  if (p.logprob_token_ids.size() > static_cast<size_t>(kMaxLogprobTokenIds)) {
    return Invalid("params.logprob_token_ids",
                   absl::StrCat("at most ", kMaxLogprobTokenIds, " token ids, got ",
                                p.logprob_token_ids.size()));
  }
  return CheckIdRange("params.logprob_token_ids", p.logprob_token_ids, vocab_size);
}

}  // namespace tokensampler::sampler
