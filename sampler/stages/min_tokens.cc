#include "sampler/stages/min_tokens.h"

#include <limits>

namespace tokensampler::sampler::stages {

void MaskStopTokens(int32_t min_tokens, size_t output_size,
                    absl::Span<const int32_t> stop_token_ids, float* z) {
  if (min_tokens <= 0 || output_size >= static_cast<size_t>(min_tokens)) return;
  for (int32_t id : stop_token_ids) z[id] = -std::numeric_limits<float>::infinity();
}

}  // namespace tokensampler::sampler::stages
