// DRY ("don't repeat yourself"), llama.cpp's repetition penalty on repeated sequences.
//
// Over the window W (the last dry.penalty_last_n tokens of the history, or all of it):
// for each position i < |W| - 1, count[i] is the length of the longest suffix of
// W[0, i] that is also a suffix of W (it may overlap it), capped at the repeat limit: the
// number of tokens after the most recent sequence breaker. The token W[i + 1] would extend
// that repeat; each token t gets L_t = max count[i] over the positions followed by t, and
// if L_t >= allowed_length, z_t -= multiplier * base^min(L_t - allowed_length, e_max),
// e_max = floor(88.7228391 / ln base) so the power stays finite. Single-token breakers
// are never penalised. Cost: O(|W|) (a Z-function on the reversed window) plus, for the
// breakers, O(|W| log B) for B breaker sequences.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_DRY_H_
#define TOKENSAMPLER_SAMPLER_STAGES_DRY_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "sampler/params.h"

namespace tokensampler::sampler {

// Buffers reused from row to row. Thread-compatible.
struct DryWorkspace {
  std::vector<int32_t> z;                           // Z-function of the reversed window
  std::vector<int32_t> counts;                      // count[i] per window position
  std::vector<int32_t> longest;                     // L_t by token id (-1 = none); sized to V once
  std::vector<int32_t> touched;                     // ids whose `longest` entry is set
  std::vector<std::pair<int32_t, uint32_t>> heads;  // (first token, breaker index), sorted
};

// Whether DRY changes anything for this history at all (multiplier > 0 and a window
// longer than allowed_length).
bool DryActive(const DryParams& dry, size_t history_size);

// count[i] for i in [0, |window| - 1) as described above, capped at `limit`. The last
// position has no following token and gets 0. Linear time.
void DryRepeatCounts(absl::Span<const int32_t> window, int32_t limit, DryWorkspace* ws,
                     std::vector<int32_t>* counts);

// The repeat limit: the number of tokens after the end of the most recent complete breaker
// sequence in `window` (|window| if none).
int32_t DryRepeatLimit(absl::Span<const int32_t> window, const DryParams& dry, DryWorkspace* ws);

// Subtracts DRY's penalties from `z` (dense over the vocabulary; -inf stays -inf).
// Returns the number of tokens penalised. REQUIRES: history ids in [0, z.size()).
size_t ApplyDry(absl::Span<const int32_t> history, const DryParams& dry, absl::Span<float> z,
                DryWorkspace* ws);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_STAGES_DRY_H_
