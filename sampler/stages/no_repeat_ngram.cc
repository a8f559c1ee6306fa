#include "sampler/stages/no_repeat_ngram.h"

#include <algorithm>
#include <cstddef>
#include <limits>

#include "sampler/stages/reversed_z.h"

namespace tokensampler::sampler::stages {

void BanRepeatedNgrams(absl::Span<const int32_t> tokens, int32_t n, std::vector<int32_t>* workspace,
                       float* z) {
  constexpr float kBanned = -std::numeric_limits<float>::infinity();
  if (n <= 0) return;
  const size_t len = tokens.size();
  if (n == 1) {
    for (int32_t t : tokens) z[t] = kBanned;
    return;
  }
  const size_t prefix = static_cast<size_t>(n) - 1;  // the n-gram's first n - 1 tokens
  if (len < static_cast<size_t>(n)) return;          // no complete n-gram yet
  // zf[k]: the longest run of tokens ending at len - 1 - k that equals the run ending at
  // len - 1 (O(len)).
  std::vector<int32_t>& zf = *workspace;
  ReversedZFunction(tokens, &zf);
  // The run ending at e = len - 1 - k matches the last n - 1 tokens when zf[k] >= n - 1;
  // the token after it, tokens[e + 1] = tokens[len - k], completes a seen n-gram.
  for (size_t k = 1; k + prefix <= len; ++k) {
    if (static_cast<size_t>(zf[k]) >= prefix) z[tokens[len - k]] = kBanned;
  }
}

}  // namespace tokensampler::sampler::stages
