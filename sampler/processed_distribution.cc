#include "sampler/processed_distribution.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "sampler/draw.h"
#include "sampler/kernels.h"

namespace tokensampler::sampler {

void ProcessedDistribution::SetOneHot(size_t vocab, int32_t token) {
  kind_ = Kind::kOneHot;
  vocab_ = vocab;
  token_ = token;
  has_block_sums_ = false;
}

void ProcessedDistribution::SetDense(size_t vocab, std::vector<float>* weights, double total,
                                     std::vector<double>* block_sums) {
  kind_ = Kind::kDense;
  vocab_ = vocab;
  if (weights != &weights_) weights_.swap(*weights);
  total_ = total;
  has_block_sums_ = block_sums != nullptr;
  if (has_block_sums_) block_sums_.swap(*block_sums);
}

void ProcessedDistribution::SetSparse(size_t vocab, std::vector<int32_t>* ids,
                                      std::vector<float>* weights, size_t n, double total) {
  kind_ = Kind::kSparse;
  vocab_ = vocab;
  ids_.swap(*ids);
  if (weights != &weights_) weights_.swap(*weights);
  n_ = n;
  total_ = total;
  has_block_sums_ = false;
}

float ProcessedDistribution::Prob(int32_t id) const {
  switch (kind_) {
    case Kind::kOneHot:
      return id == token_ ? 1.0f : 0.0f;
    case Kind::kDense:
      return kernels::ProbOf(weights_[id], total_);
    case Kind::kSparse:
    default: {
      const auto end = ids_.begin() + static_cast<std::ptrdiff_t>(n_);
      const auto it = std::lower_bound(ids_.begin(), end, id);
      if (it == end || *it != id) return 0.0f;
      return kernels::ProbOf(weights_[it - ids_.begin()], total_);
    }
  }
}

int32_t ProcessedDistribution::Draw(uint64_t seed, uint64_t step, uint32_t index) const {
  if (kind_ == Kind::kOneHot) return token_;
  const double u = DrawUniform(seed, step, index);
  const int64_t picked = kernels::PickDense(weights_.data(), size(), total_, u,
                                            has_block_sums_ ? block_sums_.data() : nullptr);
  // Some entry is positive (the largest weight's probability is at least 1 / size).
  return id_at(picked >= 0 ? static_cast<size_t>(picked) : 0);
}

void ProcessedDistribution::Draws(uint64_t seed, uint64_t step, absl::Span<int32_t> tokens,
                                  DrawTable* table) const {
  if (kind_ == Kind::kOneHot || tokens.size() == 1) {
    for (size_t s = 0; s < tokens.size(); ++s) {
      tokens[s] = Draw(seed, step, static_cast<uint32_t>(s));
    }
    return;
  }
  // The walk's running sums at its positive entries (the same doubles it forms), then
  // per draw the first with cum > target, else the last: the walk's answer.
  table->cum.resize(size());
  table->ids.resize(size());
  size_t m = 0;
  const float* w = weights_.data();
  const double total = total_;
  ForEachRunningSum(
      size(), [w, total](size_t i) { return kernels::ProbOf(w[i], total); },
      [&](size_t i, double cum) {
        table->cum[m] = cum;
        table->ids[m++] = id_at(i);
        return false;
      });
  const auto begin = table->cum.begin();
  const auto end = begin + static_cast<std::ptrdiff_t>(m);
  for (size_t s = 0; s < tokens.size(); ++s) {
    const double target =
        DrawUniform(seed, step, static_cast<uint32_t>(s)) * (m > 0 ? table->cum[m - 1] : 0.0);
    const auto it = std::upper_bound(begin, end, target);
    tokens[s] = m == 0 ? id_at(0) : table->ids[it == end ? m - 1 : it - begin];
  }
}

void ProcessedDistribution::TopLogprobs(int32_t count, std::vector<TokenLogprob>* out) const {
  out->clear();
  if (count <= 0) return;
  const size_t want = std::min(static_cast<size_t>(count), vocab_);
  // (probability, id) in out's fields, best first, converted to logprobs at the end.
  // Scanning ids in ascending order and inserting only strictly better values breaks
  // ties by id.
  auto offer = [&](float p, int32_t id) {
    if (out->size() == want && !(p > out->back().logprob)) return;
    auto pos = out->end();
    while (pos != out->begin() && p > (pos - 1)->logprob) --pos;
    if (out->size() == want) out->pop_back();
    out->insert(pos, TokenLogprob{id, p});
  };
  auto pad_with_zeros = [&]() {
    // Probability-0 tokens, lowest ids first.
    for (size_t i = 0; i < vocab_ && out->size() < want; ++i) {
      const int32_t id = static_cast<int32_t>(i);
      if (!(Prob(id) > 0.0f)) out->push_back({id, 0.0f});
    }
  };
  if (kind_ == Kind::kOneHot) {
    out->push_back({token_, 1.0f});
    pad_with_zeros();
  } else {
    for (size_t i = 0; i < size(); ++i) {
      const float p = kernels::ProbOf(weights_[i], total_);
      if (kind_ == Kind::kDense || p > 0.0f) offer(p, id_at(i));
    }
    if (kind_ == Kind::kSparse) pad_with_zeros();
  }
  for (TokenLogprob& t : *out) {
    t.logprob = static_cast<float>(std::log(static_cast<double>(t.logprob)));
  }
}

void ProcessedDistribution::NormaliseInPlace() {
  if (kind_ == Kind::kOneHot) return;
  kernels::Probs(weights_.data(), size(), total_, weights_.data());
  total_ = 1.0;
  has_block_sums_ = false;
}

}  // namespace tokensampler::sampler
