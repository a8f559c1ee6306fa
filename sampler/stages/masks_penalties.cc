// Masks (allowed / banned ids, the token bitmask), the output bans (bad words,
// no_repeat_ngram, min_tokens), logit bias and the repetition, presence and frequency
// penalties: the stages that edit logits, before any truncation.
#include "sampler/stages/stages.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>

#include "absl/strings/str_cat.h"
#include "sampler/stages/bad_words.h"
#include "sampler/stages/dry.h"
#include "sampler/stages/min_tokens.h"
#include "sampler/stages/no_repeat_ngram.h"
#include "sampler/stages/vllm.h"
#include "sampler/workspace.h"

namespace tokensampler::sampler::stages {

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();
}  // namespace

bool RepetitionOn(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f && p.repetition_penalty != 0.0f;
}

bool OutputStagesOn(const SamplingParams& p) {
  const size_t output = p.output_token_ids().size();
  return !p.bad_words.empty() ||
         (p.min_tokens > 0 && !p.stop_token_ids.empty() &&
          output < static_cast<size_t>(p.min_tokens)) ||
         (p.no_repeat_ngram_size > 0 && output > 0);
}

bool ModifiesLogits(const SamplingParams& p) {
  return EditsLogits(p) || !p.allowed_token_bitmask.empty();
}

bool EditsLogits(const SamplingParams& p) {
  const bool penalties =
      RepetitionOn(p) || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
  return !p.allowed_token_ids.empty() || !p.banned_token_ids.empty() || !p.logit_bias.empty() ||
         (penalties && !p.context_token_ids.empty()) ||
         DryActive(p.dry, p.context_token_ids.size()) || p.top_n_sigma > 0.0f ||
         OutputStagesOn(p);
}

absl::Span<const int32_t> PenaltyWindow(const SamplingParams& p) {
  const size_t last_n = static_cast<size_t>(p.penalty_last_n);
  const absl::Span<const int32_t> all = p.context_token_ids;
  return last_n > 0 && all.size() > last_n ? all.subspan(all.size() - last_n) : all;
}

absl::Status ApplyMasksAndPenalties(Workspace& ws, const SamplingParams& p) {
  const size_t v = ws.vocab;
  if (!p.allowed_token_ids.empty()) {
    ws.allowed.assign(v, 0);
    for (int32_t id : p.allowed_token_ids) ws.allowed[id] = 1;
    for (size_t i = 0; i < v; ++i) {
      if (!ws.allowed[i]) ws.z_buf[i] = -kInf;
    }
  }
  for (int32_t id : p.banned_token_ids) ws.z_buf[id] = -kInf;
  BanBadWords(p.bad_words, p.output_token_ids(), ws.z_buf.data());
  BanRepeatedNgrams(p.output_token_ids(), p.no_repeat_ngram_size, &ws.ngram_work,
                    ws.z_buf.data());
  MaskStopTokens(p.min_tokens, p.output_token_ids().size(), p.stop_token_ids, ws.z_buf.data());
  const bool vllm = p.preset == Preset::kVllm;
  for (const LogitBias& b : p.logit_bias) {
    const float biased = ws.z[b.token_id] + (vllm ? VllmBias(b.bias) : b.bias);
    if (biased == kInf) {
      return absl::InvalidArgumentError(absl::StrCat("params.logit_bias[", b.token_id, "]: logit ",
                                  ws.z[b.token_id], " + bias ", b.bias, " overflows to +inf"));
    }
    ws.z_buf[b.token_id] = biased;
  }
  if (vllm) {
    return ApplyVllmPenalties(p.context_token_ids, p.num_prompt_tokens, p.repetition_penalty,
                              p.presence_penalty, p.frequency_penalty, &ws.vllm_work,
                              ws.z_buf.data());
  }
  const bool repetition = RepetitionOn(p);
  if (p.context_token_ids.empty() ||
      (!repetition && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f)) {
    return absl::OkStatus();
  }
  const absl::Span<const int32_t> window = PenaltyWindow(p);
  ws.context.assign(window.begin(), window.end());
  std::sort(ws.context.begin(), ws.context.end());
  for (size_t i = 0; i < ws.context.size();) {
    const int32_t id = ws.context[i];
    size_t j = i;
    while (j < ws.context.size() && ws.context[j] == id) ++j;
    const double count = static_cast<double>(j - i);
    i = j;
    float value = ws.z[id];
    if (value == -kInf) continue;
    if (repetition) {
      value = value < 0.0f ? value * p.repetition_penalty : value / p.repetition_penalty;
    }
    const double shifted = static_cast<double>(value) - p.presence_penalty -
                           static_cast<double>(p.frequency_penalty) * count;
    value = static_cast<float>(shifted);
    if (value == kInf) {
      return absl::InvalidArgumentError(absl::StrCat("context_token_ids: the penalties turn the logit of token ",
                                  id, " into +inf"));
    }
    ws.z_buf[id] = value;
  }
  return absl::OkStatus();
}

}  // namespace tokensampler::sampler::stages
