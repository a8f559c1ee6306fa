// The seeded draw: a pure function of (distribution, seed, step, sample index).
//
// This is part of the public contract (README "The draw"): any client can replay a
// token from a response's seed and step with these few functions. Never change the
// results without a new API version; tests pin known answers.
#ifndef TOKENSAMPLER_SAMPLER_DRAW_H_
#define TOKENSAMPLER_SAMPLER_DRAW_H_

#include <array>
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

// The uniform number in [0, 1) made from two Philox output words, the same formula for
// every purpose (README "The draw"): ((wa >> 5) * 2^26 + (wb >> 6)) / 2^53.
double UniformFromWords(uint32_t wa, uint32_t wb);

// Inverse CDF over `probs` in index (token id) order: accumulates the positive entries
// in double, cum_1 <= ... <= cum_n, and returns the index of the first positive entry
// with cum_i > u * cum_n; if rounding leaves none, the last positive entry. Entries
// <= 0 are never returned. Returns -1 if no entry is positive.
// REQUIRES: u in [0, 1); no NaN in probs.
int64_t PickInverseCdf(absl::Span<const float> probs, double u);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_DRAW_H_
