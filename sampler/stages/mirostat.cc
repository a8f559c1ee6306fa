#include "sampler/stages/mirostat.h"

#include <algorithm>
#include <cmath>

namespace tokensampler::sampler {

namespace {
// Candidate a before b: larger logit first, ties by lower id.
struct Before {
  const float* z;
  bool operator()(int32_t a, int32_t b) const { return z[a] > z[b] || (z[a] == z[b] && a < b); }
};
}  // namespace

float MirostatMu(const MirostatParams& m) { return m.mu.has_value() ? *m.mu : 2.0f * m.tau; }

float MirostatUpdate(const MirostatParams& m, float mu, double p_drawn) {
  const double surprise = -std::log2(p_drawn);
  return static_cast<float>(static_cast<double>(mu) -
                            static_cast<double>(m.eta) * (surprise - static_cast<double>(m.tau)));
}

size_t MirostatV2Collect(absl::Span<const float> w, const float* z, double mass, float mu,
                         int32_t* ids) {
  // -log2(w / mass) <= mu  <=>  w >= mass * 2^-mu (equal but for the rounding of the
  // double threshold): a compare per token instead of a log.
  const float min_weight = static_cast<float>(mass * std::exp2(-static_cast<double>(mu)));
  const size_t n = w.size();
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    ids[out] = static_cast<int32_t>(i);
    out += w[i] > 0.0f && w[i] >= min_weight;
  }
  if (out == 0) {
    size_t best = 0;
    for (size_t i = 1; i < n; ++i) best = z[i] > z[best] ? i : best;
    ids[0] = static_cast<int32_t>(best);
    out = 1;
  }
  return out;
}

size_t MirostatV1Cut(absl::Span<int32_t> ids, const float* weight, const float* z, int32_t m,
                     size_t vocab, float mu, std::vector<int32_t>* scratch) {
  const size_t n = ids.size();
  if (n <= 1) return n;
  const Before before{z};
  // The top min(m, n) in order: a partial sort of a copy, the candidates stay as they are.
  const size_t top = std::min(static_cast<size_t>(std::max(m, 1)), n);
  scratch->assign(ids.begin(), ids.end());
  std::partial_sort(scratch->begin(), scratch->begin() + top, scratch->end(), before);
  const double k = MirostatV1K(absl::MakeConstSpan(scratch->data(), top), weight, vocab, mu);
  if (!(k < static_cast<double>(n))) return n;  // NaN or infinite k: keep everything
  const size_t keep = std::max<size_t>(1, static_cast<size_t>(k));
  std::nth_element(ids.begin(), ids.begin() + (keep - 1), ids.end(), before);
  return keep;
}

double MirostatV1K(absl::Span<const int32_t> best_first, const float* weight, size_t vocab,
                   float mu) {
  double sum_tb = 0.0, sum_tt = 0.0;
  for (size_t i = 0; i + 1 < best_first.size(); ++i) {
    const double t = std::log(static_cast<double>(i + 2) / static_cast<double>(i + 1));
    const double b = std::log(static_cast<double>(weight[best_first[i]]) /
                              static_cast<double>(weight[best_first[i + 1]]));
    sum_tb += t * b;
    sum_tt += t * t;
  }
  const double s = sum_tb / sum_tt;
  const double eps = s - 1.0;
  return std::pow(
      eps * std::exp2(static_cast<double>(mu)) / (1.0 - std::pow(static_cast<double>(vocab), -eps)),
      1.0 / s);
}

}  // namespace tokensampler::sampler
