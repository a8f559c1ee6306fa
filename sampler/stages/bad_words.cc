#include "sampler/stages/bad_words.h"

#include <algorithm>
#include <cstddef>
#include <limits>

namespace tokensampler::sampler::stages {

void BanBadWords(absl::Span<const absl::Span<const int32_t>> bad_words,
                 absl::Span<const int32_t> output, float* z) {
  for (absl::Span<const int32_t> word : bad_words) {
    const size_t prefix = word.size() - 1;
    if (prefix > output.size()) continue;
    if (std::equal(word.begin(), word.begin() + prefix, output.end() - prefix)) {
      z[word.back()] = -std::numeric_limits<float>::infinity();
    }
  }
}

}  // namespace tokensampler::sampler::stages
