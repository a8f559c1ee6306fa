// The processed distribution of one row: what every stage left, the distribution the
// draw is made from, as a value in token-id order with its probability lookup, draws and
// top logprobs.
#ifndef TOKENSAMPLER_SAMPLER_PROCESSED_DISTRIBUTION_H_
#define TOKENSAMPLER_SAMPLER_PROCESSED_DISTRIBUTION_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "sampler/sampler.h"

namespace tokensampler::sampler {

// One of: one-hot (greedy: all mass on one token), dense (a weight for every id, 0 for
// removed tokens), or sparse (ascending ids with a weight each). Probabilities are
// kernels::ProbOf(weight, total), the same bits everywhere. Move it, do not copy it
// (a dense one holds V weights). Buffers are swapped in and out, never reallocated in a
// steady stream of rows. Thread-compatible.
class ProcessedDistribution {
 public:
  ProcessedDistribution() = default;
  ProcessedDistribution(const ProcessedDistribution&) = delete;
  ProcessedDistribution& operator=(const ProcessedDistribution&) = delete;
  ProcessedDistribution(ProcessedDistribution&&) = default;
  ProcessedDistribution& operator=(ProcessedDistribution&&) = default;

  // Setters. The vectors are swapped in: the caller gets this distribution's previous
  // buffers back, to reuse. REQUIRES: total is the sum of the weights, > 0.
  void SetOneHot(size_t vocab, int32_t token);
  // weights[0, vocab) by id; block_sums (may be null) are ExpSumBlocks' sums of them.
  void SetDense(size_t vocab, std::vector<float>* weights, double total,
                std::vector<double>* block_sums);
  // ids[0, n) ascending, weights[0, n) their weights.
  void SetSparse(size_t vocab, std::vector<int32_t>* ids, std::vector<float>* weights,
                 size_t n, double total);
  // Writable storage for a distribution about to be set (SetDense / SetSparse from the
  // same vector keeps the capacity): the current weights buffer, to swap out.
  std::vector<float>* weight_buffer() { return &weights_; }

  size_t vocab() const { return vocab_; }
  bool one_hot() const { return kind_ == Kind::kOneHot; }
  int32_t token() const { return token_; }  // REQUIRES: one_hot()
  bool dense() const { return kind_ == Kind::kDense; }
  // The entries in id order: `size()` of them, entry i is token id_at(i).
  size_t size() const { return kind_ == Kind::kDense ? vocab_ : n_; }
  int32_t id_at(size_t i) const {
    return kind_ == Kind::kDense ? static_cast<int32_t>(i) : ids_[i];
  }
  // The ascending ids of a sparse distribution (empty otherwise).
  absl::Span<const int32_t> ids() const {
    return kind_ == Kind::kSparse ? absl::Span<const int32_t>(ids_.data(), n_)
                                  : absl::Span<const int32_t>();
  }

  // The final probability of token `id` (0 if removed): the value Distribution reports
  // and the draw accumulates. REQUIRES: id in [0, vocab).
  float Prob(int32_t id) const;
  // The token of draw (seed, step, index): the inverse CDF (kernels::PickDense) over the
  // probabilities in id order at DrawUniform(seed, step, index).
  int32_t Draw(uint64_t seed, uint64_t step, uint32_t index) const;
  // tokens[s] = Draw(seed, step, s) for s in [0, tokens.size()): one table of the walk's
  // running sums, then a binary search per draw. `table` is caller-owned scratch.
  struct DrawTable {
    std::vector<double> cum;
    std::vector<int32_t> ids;
  };
  void Draws(uint64_t seed, uint64_t step, absl::Span<int32_t> tokens, DrawTable* table) const;
  // The `count` most probable tokens (descending, ties by id), padded with probability-0
  // tokens by lowest id, as natural-log probabilities.
  void TopLogprobs(int32_t count, std::vector<TokenLogprob>* out) const;

  // Turns the weights into the probabilities themselves (total 1) in place: every lookup
  // and draw answers exactly as before (ProbOf(p, 1) == p), and weights() are then the
  // probabilities of the entries in id order.
  void NormaliseInPlace();
  absl::Span<const float> weights() const { return {weights_.data(), size()}; }
  // The sum of the weights: entry i's probability is kernels::ProbOf(weights()[i], total()).
  double total() const { return total_; }

 private:
  enum class Kind { kOneHot, kDense, kSparse };
  Kind kind_ = Kind::kOneHot;
  size_t vocab_ = 0;
  int32_t token_ = 0;
  std::vector<float> weights_;     // by id (dense) or by position (sparse)
  std::vector<int32_t> ids_;       // sparse: ids_[0, n_) ascending
  size_t n_ = 0;
  std::vector<double> block_sums_;  // dense: sums of weights_ per kDrawBlock, if any
  bool has_block_sums_ = false;
  double total_ = 0.0;
};

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_PROCESSED_DISTRIBUTION_H_
