// The seeded draw: a pure function of (distribution, seed, step, sample index).
//
// This is part of the public contract (README "The draw"): any client can replay a
// token from a response's seed and step with these few functions. Never change the
// results without a new API version; tests pin known answers.
#ifndef TOKENSAMPLER_SAMPLER_DRAW_H_
#define TOKENSAMPLER_SAMPLER_DRAW_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace tokensampler::sampler {

// Philox4x32-10 (Salmon et al., SC 2011): ten rounds of the counter-based generator,
// counter `c` and key `k` as unsigned 32-bit words. Returns the four output words.
std::array<uint32_t, 4> Philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k);

// The uniform number in [0, 1) of draw (seed, step, index): key = seed split in 32-bit
// halves (low first), counter = (step low, step high, index, 0); from output words w0,
// w1: ((w0 >> 5) * 2^26 + (w1 >> 6)) / 2^53, exact in a double.
double DrawUniform(uint64_t seed, uint64_t step, uint32_t index);

// The running sums of the draw: calls visit(i, cum_i) for each i in [0, n) with
// p_i = prob_at(i) > 0, in index (token id) order, cum_i being the double sum of the
// positive p up to and including p_i; stops when visit returns true.
template <class ProbAt, class Visit>
void ForEachRunningSum(size_t n, const ProbAt& prob_at, const Visit& visit) {
  double cum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float p = prob_at(i);
    if (p > 0.0f) {
      cum += p;
      if (visit(i, cum)) return;
    }
  }
}

// The inverse CDF, written once: over p_i = prob_at(i) in index order, the index of the
// first positive p_i whose running sum exceeds u * cum_n (cum_n the sum of every positive
// p); if rounding leaves none, the last positive entry. Entries <= 0 are never returned.
// Returns -1 if no entry is positive. REQUIRES: u in [0, 1); no NaN among the p.
template <class ProbAt>
int64_t InverseCdf(size_t n, const ProbAt& prob_at, double u) {
  double cum_n = 0.0;
  int64_t last = -1;
  ForEachRunningSum(n, prob_at, [&](size_t i, double cum) {
    cum_n = cum;
    last = static_cast<int64_t>(i);
    return false;
  });
  if (last < 0) return -1;
  const double target = u * cum_n;
  int64_t picked = last;
  ForEachRunningSum(n, prob_at, [&](size_t i, double cum) {
    if (!(cum > target)) return false;
    picked = static_cast<int64_t>(i);
    return true;
  });
  return picked;
}

// InverseCdf over `probs` (probabilities or unnormalised weights) in token-id order.
int64_t PickInverseCdf(absl::Span<const float> probs, double u);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_DRAW_H_
