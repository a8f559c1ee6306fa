// The Z-function of a token sequence read backwards, shared by DRY and no_repeat_ngram:
// both ask, for every earlier position, how long a run ending there equals the run
// ending at the last token.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_REVERSED_Z_H_
#define TOKENSAMPLER_SAMPLER_STAGES_REVERSED_Z_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace tokensampler::sampler::stages {

// With r(j) = tokens[n - 1 - j]: (*z)[k] = the longest common prefix of r and r shifted by
// k, i.e. the longest run of tokens ending at n - 1 - k that equals the run ending at
// n - 1; (*z)[0] = 0. The Z-box [left, right) holds the rightmost match found so far, so
// each token is compared O(1) times beyond it: O(n) overall.
inline void ReversedZFunction(absl::Span<const int32_t> tokens, std::vector<int32_t>* z) {
  const size_t n = tokens.size();
  auto r = [&](size_t j) { return tokens[n - 1 - j]; };
  z->assign(n, 0);
  size_t left = 0, right = 0;
  for (size_t k = 1; k < n; ++k) {
    size_t m = 0;
    if (k < right) m = std::min(right - k, static_cast<size_t>((*z)[k - left]));
    while (k + m < n && r(m) == r(k + m)) ++m;
    (*z)[k] = static_cast<int32_t>(m);
    if (k + m > right) {
      left = k;
      right = k + m;
    }
  }
}

}  // namespace tokensampler::sampler::stages

#endif  // TOKENSAMPLER_SAMPLER_STAGES_REVERSED_Z_H_
