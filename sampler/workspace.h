// The per-row working state of the pipeline's stages: the logits they read, the weights,
// the candidate set they narrow, and the reusable buffers of every stage. One Workspace
// per Sampler, reused from row to row: its vectors only grow, so a steady stream of rows
// allocates nothing. Thread-compatible, like Sampler.
#ifndef TOKENSAMPLER_SAMPLER_WORKSPACE_H_
#define TOKENSAMPLER_SAMPLER_WORKSPACE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "hwy/base.h"
#include "hwy/contrib/sort/vqsort.h"
#include "sampler/stages/dry.h"

namespace tokensampler::sampler {

// Below this many entries the stages sort with std::sort; at or above it with one
// vectorised sort (hwy::Sorter) of 64- or 128-bit keys, whose fixed cost (key building,
// dispatch) pays off only on larger sets.
inline constexpr size_t kVectorSortMinSize = 512;

// A logit's bits as an unsigned key that orders like the logit; -0 is keyed as +0, since
// the candidate order ties them (by id), as Before does.
inline uint32_t LogitKey(float logit) {
  const float v = logit + 0.0f;  // -0 + 0 = +0
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return bits ^ (static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) | 0x80000000u);
}

struct Workspace {
  // The row. z: the logits the stages read, the caller's float32 row itself when nothing
  // modifies it (no copy), else z_buf: decoded, then masked/biased/penalised. For a 16-bit
  // row whose first stage is top-k, z_buf holds only the candidates' logits. Valid during
  // one call.
  const float* z = nullptr;
  size_t vocab = 0;
  // A token bitmask that z does not hold yet (z is the caller's row, read in place): the
  // kernels the pipeline then runs apply it as they read (kernels.h), and a stage that
  // reads z outside the candidates tests it. Null when there is none or z_buf holds it.
  const uint8_t* bitmask = nullptr;
  std::vector<float> z_buf;
  std::vector<float> w;             // weights exp((z - max) / T) by id
  std::vector<double> block_sums;   // ExpSumBlocks' sums of w per kDrawBlock block
  double total = 0.0;               // the ExpSum total of w over the row, when computed
  double unit_sum = -1.0;           // sum of exp(z - max) when a stage computed it, else < 0

  // The candidate set: ids[0, n), in no particular order unless a stage says so.
  std::vector<int32_t> ids;
  size_t n = 0;
  size_t prescanned = 0;    // top-k candidates in ids that Process scanned, else 0
  bool top_p_done = false;  // STANDARD top-p already applied (by threshold, on the row)
  bool min_p_done = false;  // VLLM min-p already applied (by logits, on the row)

  // Buffers of the stages (each named where it is used).
  std::vector<int32_t> context;                    // penalties: sorted context ids
  std::vector<uint8_t> allowed;                    // masks: allowed flags by id
  std::vector<float> floor_sample;                 // top-k: strided logits for the bar
  std::vector<uint64_t> keys;                      // 64-bit sort keys
  std::vector<std::pair<float, float>> sampled;    // top-p: (z, w) of a strided sample
  std::vector<std::pair<float, float>> sampled_sorted;
  std::vector<double> bucket_mass;                 // top-p: mass per logit bucket
  std::vector<uint16_t> listed_bucket;             // top-p: bucket of each listed id
  std::vector<float> listed_z, listed_w;           // top-p: logit and weight of each
  std::vector<uint32_t> at_cut;                    // top-p: positions in the cut bucket
  std::vector<double> log_probs;                   // typical: log p of each candidate
  std::vector<hwy::uint128_t> score_keys;          // typical: (score bits, id) keys
  std::vector<std::pair<double, int32_t>> scored;  // typical: (score, id), best first
  std::vector<int32_t> ngram_work;                 // no_repeat_ngram: Z-function
  std::vector<std::pair<int32_t, int32_t>> vllm_work;  // VLLM penalties: (id, is output)
  hwy::Sorter sorter;                              // vectorised sort; owns its scratch
  DryWorkspace dry;                                // DRY: repeat counts and their buffers
  std::vector<float> gathered_w, gathered_z;       // dynamic temperature: the survivors'
  std::vector<int32_t> mirostat_top;               // mirostat v1: the top m candidates
  bool xtc_fires = false;  // XTC cuts this row: its coin for (seed, step) came up
  std::vector<int32_t> xtc_above;                  // XTC on a whole row: the top choices

  // Token a comes before token b in descending-logit order, ties to the lower id.
  bool Before(int32_t a, int32_t b) const { return z[a] > z[b] || (z[a] == z[b] && a < b); }
};

// ids[0, n) = every id with w > 0 (by_weight) or z > -inf, ascending.
void Collect(Workspace& ws, bool by_weight);
// Moves the best `count` candidates (in Before order) to ids[0, count), unordered;
// n = count. No-op if count >= n.
void KeepTop(Workspace& ws, size_t count);
// The sum of the candidates' weights, in a fixed order: candidate i goes to lane i mod 4,
// then (lane 0 + lane 1) + (lane 2 + lane 3).
double CandidateMass(const Workspace& ws);
// Sorts ids[0, n) by Before.
void SortCandidates(Workspace& ws);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_WORKSPACE_H_
