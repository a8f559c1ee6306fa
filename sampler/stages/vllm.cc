#include "sampler/stages/vllm.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace tokensampler::sampler::stages {

float VllmBias(float bias) { return std::clamp(bias, -kVllmMaxBias, kVllmMaxBias); }

absl::Status ApplyVllmPenalties(absl::Span<const int32_t> context, size_t num_prompt,
                                float repetition, float presence, float frequency,
                                std::vector<std::pair<int32_t, int32_t>>* workspace, float* z) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const bool repeat = repetition != 1.0f && repetition != 0.0f;
  if (context.empty() || (!repeat && presence == 0.0f && frequency == 0.0f)) {
    return absl::OkStatus();
  }
  // (id, 1 if the token is output else 0), sorted: each id's run counts its output.
  std::vector<std::pair<int32_t, int32_t>>& tokens = *workspace;
  tokens.resize(context.size());
  for (size_t i = 0; i < context.size(); ++i) {
    tokens[i] = {context[i], i >= num_prompt ? 1 : 0};
  }
  std::sort(tokens.begin(), tokens.end());
  for (size_t i = 0; i < tokens.size();) {
    const int32_t id = tokens[i].first;
    size_t j = i;
    int32_t output_count = 0;
    for (; j < tokens.size() && tokens[j].first == id; ++j) output_count += tokens[j].second;
    i = j;
    float value = z[id];
    if (value == -kInf) continue;
    if (repeat) value = value > 0.0f ? value / repetition : value * repetition;
    if (output_count > 0) {
      // In float32 and in vLLM's order: frequency * count first, then presence.
      const float by_count = frequency * static_cast<float>(output_count);
      value = value - by_count;
      value = value - presence;
    }
    if (value == kInf) {
      return absl::InvalidArgumentError(absl::StrCat(
          "context_token_ids: the penalties turn the logit of token ", id, " into +inf"));
    }
    z[id] = value;
  }
  return absl::OkStatus();
}

}  // namespace tokensampler::sampler::stages
