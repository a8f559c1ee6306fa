// Mirostat (Basu et al., "Mirostat: a neural text decoding algorithm that directly
// controls perplexity", ICLR 2021), with llama.cpp's rules. It replaces the truncation
// stages: after temperature, it cuts the candidates using the state mu, the draw picks a
// token from the survivors (renormalised), and mu moves towards the target surprise tau:
//   mu' = mu - eta * (-log2 p_drawn - tau),  p_drawn the token's final probability.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_MIROSTAT_H_
#define TOKENSAMPLER_SAMPLER_STAGES_MIROSTAT_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "sampler/params.h"

namespace tokensampler::sampler {

// The state a row starts from: params.mu, or 2 * tau when unset.
float MirostatMu(const MirostatParams& m);

// mu after drawing a token of final probability `p_drawn` (in (0, 1]).
float MirostatUpdate(const MirostatParams& m, float mu, double p_drawn);

// The candidates are ids (any order) with weights weight[id] (p = weight / mass) and
// logits z[id]; "best first" is the logit order of every cut: z descending, ties by lowest
// id (so equal float weights of different logits still order by logit).

// v2 over a whole row: the ids whose surprise -log2(w / mass) is <= mu (w > 0), ascending,
// into `ids` (room for w.size()); if there is none, the best token alone. Returns the count.
// One pass: the test is w >= mass * 2^-mu, one threshold for the row.
// REQUIRES: mass = the sum of w, > 0; z and w parallel.
size_t MirostatV2Collect(absl::Span<const float> w, const float* z, double mass, float mu,
                         int32_t* ids);

// v1: with p_0 >= p_1 >= ... the candidates' probabilities, best first, estimates the
// Zipf exponent from the top min(m, n) of them,
//   s = sum_i t_i b_i / sum_i t_i^2,  t_i = ln((i+2)/(i+1)),  b_i = ln(p_i / p_{i+1}),
// over i < min(m, n) - 1, then keeps the top max(1, k) with
//   k = (eps * 2^mu / (1 - V^-eps))^(1/s),  eps = s - 1,
// V the vocabulary size. A k that is not finite (n = 1, a flat head) keeps every candidate.
// Survivors go to the front of `ids` (unordered); returns their count.
size_t MirostatV1Cut(absl::Span<int32_t> ids, const float* weight, const float* z, int32_t m,
                     size_t vocab, float mu, std::vector<int32_t>* scratch);

// v1's k (before flooring) from `best_first`, the top min(m, N) candidates in order:
// the estimate above over all of them. NaN or infinite when it is undefined (fewer than
// two, or a flat head).
double MirostatV1K(absl::Span<const int32_t> best_first, const float* weight, size_t vocab,
                   float mu);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_STAGES_MIROSTAT_H_
