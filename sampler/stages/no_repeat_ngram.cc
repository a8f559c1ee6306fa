#include "sampler/stages/no_repeat_ngram.h"

#include <algorithm>
#include <cstddef>
#include <limits>

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
  // r(k) = tokens[len - 1 - k], the tokens read backwards from the end. zf[k] = the
  // longest common prefix of r and r(k..): the longest run of tokens ending at
  // len - 1 - k that equals the run ending at len - 1 (the Z-algorithm, O(len)).
  auto r = [&](size_t k) { return tokens[len - 1 - k]; };
  std::vector<int32_t>& zf = *workspace;
  zf.assign(len, 0);
  size_t left = 0, right = 0;  // [left, right): the rightmost match window found so far
  for (size_t k = 1; k < len; ++k) {
    size_t m = 0;
    if (k < right) m = std::min(right - k, static_cast<size_t>(zf[k - left]));
    while (k + m < len && r(m) == r(k + m)) ++m;
    zf[k] = static_cast<int32_t>(m);
    if (k + m > right) {
      left = k;
      right = k + m;
    }
  }
  // The run ending at e = len - 1 - k matches the last n - 1 tokens when zf[k] >= n - 1;
  // the token after it, tokens[e + 1] = tokens[len - k], completes a seen n-gram.
  for (size_t k = 1; k + prefix <= len; ++k) {
    if (static_cast<size_t>(zf[k]) >= prefix) z[tokens[len - k]] = kBanned;
  }
}

}  // namespace tokensampler::sampler::stages
