// XTC, "exclude top choices" (llama.cpp): when the coin comes up (coin < probability)
// and at least two candidates have p >= threshold, all of those are removed except the
// least likely of them, provided at least min_keep candidates remain. Survivors keep their
// weights (the next stage or the final normalisation renormalises).
//
// The coin is the uniform of the draw's Philox generator with counter purpose 2 (README
// "The draw"): key (seed lo, seed hi), counter (step lo, step hi, 0, 2), so XTC is a pure
// function of (row, seed, step) and every sample index of a row sees the same cut.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_XTC_H_
#define TOKENSAMPLER_SAMPLER_STAGES_XTC_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace tokensampler::sampler {

// The counter's fourth word for XTC's coin.
inline constexpr uint32_t kXtcPurpose = 2;

// XTC's coin for (seed, step), in [0, 1).
double XtcCoin(uint64_t seed, uint64_t step);

// Applies the cut to the candidates ids[0, n) (any order), whose probabilities are
// weight[id] / mass and logits z[id]. "The least likely" of the tokens at or above the
// threshold is the last of them in the order of every cut: z descending, ties by id.
// Survivors are compacted to the front of `ids` in their previous order; returns their
// count. Does not draw the coin: call it only when the coin came up.
// REQUIRES: mass = the sum of the candidates' weights, > 0.
size_t XtcCut(absl::Span<int32_t> ids, const float* weight, const float* z, double mass,
              float threshold, size_t min_keep);

// The same cut over a whole row: w the weights by id (0 = not a candidate), mass their
// sum, z the logits. Sets the removed tokens' weights to 0 and returns how many were
// removed (0 when the cut does not apply). One pass over w; `above` is scratch.
size_t XtcDense(absl::Span<float> w, const float* z, double mass, float threshold,
                size_t min_keep, std::vector<int32_t>* above);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_STAGES_XTC_H_
