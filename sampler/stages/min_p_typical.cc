// Min-p (on probabilities, or llama.cpp's on logits) and locally typical sampling.
#include "sampler/stages/stages.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>

#include "hwy/targets.h"
#include "sampler/kernels.h"
#include "sampler/workspace.h"

namespace tokensampler::sampler::stages {

namespace {

// Keeps the candidates for which keep(id) holds, or, if fewer than min_keep do, the best
// min_keep (Before order) of all. With keep_order, the kept ones stay in their order.
template <class Keep>
void KeepWhere(Workspace& ws, size_t min_keep, bool keep_order, const Keep& keep) {
  const size_t all = ws.n;
  size_t kept;
  if (keep_order) {
    kept = static_cast<size_t>(std::count_if(ws.ids.begin(), ws.ids.begin() + all, keep));
    if (kept >= min_keep) {
      size_t out = 0;
      for (size_t i = 0; i < all; ++i) {
        if (keep(ws.ids[i])) ws.ids[out++] = ws.ids[i];
      }
    }
  } else {
    const auto end = std::partition(ws.ids.begin(), ws.ids.begin() + all, keep);
    kept = static_cast<size_t>(end - ws.ids.begin());
  }
  if (kept >= min_keep) {
    ws.n = kept;
  } else {
    KeepTop(ws, std::min(min_keep, all));
  }
}

// MinPByLogits applies below this min_p only by the exp pass (min_p * p_max could then
// leave the normal floats, where the rounding bound below does not hold).
constexpr float kMinPByLogitsLeast = 1e-20f;
// The band around the cut (relative, in weight) inside which the rounding of p = w / mass
// could decide: 16x the three float roundings that separate w from the test.
constexpr double kMinPBand = 0x1p-20;
// The margin in the exp's argument below log(min_p) under which a logit surely fails:
// e^-1e-3 < 1 - 2^-20 with room for the rounding of (z - max) / T and of the exp.
constexpr double kMinPLogMargin = 1e-3;

}  // namespace

bool MinPByLogits(Workspace& ws, float min_p, size_t min_keep, float z_max, float temperature) {
  if (!(min_p >= kMinPByLogitsLeast)) return false;
  // The survivors of a logit floor: every token below it has w < min_p (1 - kMinPBand)
  // (see kMinPLogMargin), so fails; the floor is rounded down to a float.
  const double cut =
      static_cast<double>(z_max) +
      static_cast<double>(temperature) * (std::log(static_cast<double>(min_p)) - kMinPLogMargin);
  float floor = static_cast<float>(cut);
  if (static_cast<double>(floor) > cut) {
    floor = std::nextafter(floor, -std::numeric_limits<float>::infinity());
  }
  ws.ids.resize(ws.vocab);
  double unused;
  const size_t listed =
      kernels::CollectAtLeast(ws.z, nullptr, ws.vocab, floor, ws.ids.data(), &unused);
  // Their weights, the bits ExpSum gives (a weight of 0 is no candidate, as in Collect).
  float w_max = 0.0f;
  size_t n = 0;
  for (size_t i = 0; i < listed; ++i) {
    const int32_t id = ws.ids[i];
    const float w = kernels::ExpNonPositive((ws.z[id] - z_max) / temperature);
    ws.w[id] = w;
    if (w > 0.0f) ws.ids[n++] = id;
    w_max = std::max(w_max, w);
  }
  // The row's maximum weighs exp(0) = 1: the cut is then min_p itself.
  if (w_max != 1.0f) return false;
  const double upper = static_cast<double>(min_p) * (1.0 + kMinPBand);
  const double lower = static_cast<double>(min_p) * (1.0 - kMinPBand);
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = ws.ids[i];
    const double w = ws.w[id];
    if (w == 1.0 || w >= upper) {
      ws.ids[kept++] = id;
    } else if (w > lower) {
      return false;  // too close to the cut to decide without the row's mass
    }
  }
  if (kept < min_keep) return false;
  ws.n = kept;
  return true;
}

void MinPProb(Workspace& ws, float min_p, size_t min_keep, bool keep_order) {
  // Keeps p_i = float(w_i / mass) >= min_p * p_max. p is monotone in w, so p_max is the
  // largest w's, and the test is w_i >= w_min for the smallest float w_min that passes
  // (a binary search over the float bits): one division per probe instead of per token.
  const double mass = CandidateMass(ws);
  auto prob = [mass](float wi) { return static_cast<float>(static_cast<double>(wi) / mass); };
  float w_max = 0.0f;
  for (size_t i = 0; i < ws.n; ++i) w_max = std::max(w_max, ws.w[ws.ids[i]]);
  const float threshold = min_p * prob(w_max);
  uint32_t lo = 0;  // bits of a weight that may fail
  uint32_t hi;      // bits of a weight that passes (w_max does: min_p <= 1)
  std::memcpy(&hi, &w_max, sizeof(hi));
  if (prob(0.0f) >= threshold) hi = 0;
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    float wm;
    std::memcpy(&wm, &mid, sizeof(wm));
    (prob(wm) >= threshold ? hi : lo) = mid;
  }
  float w_min;
  std::memcpy(&w_min, &hi, sizeof(w_min));
  KeepWhere(ws, min_keep, keep_order, [&](int32_t id) { return ws.w[id] >= w_min; });
}

void MinPLlama(Workspace& ws, float min_p, size_t min_keep) {
  // llama.cpp min-p works on logits: keep z >= z_max + log(min_p).
  float z_max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < ws.n; ++i) z_max = std::max(z_max, ws.z[ws.ids[i]]);
  const float threshold = z_max + std::log(min_p);
  KeepWhere(ws, min_keep, /*keep_order=*/false, [&](int32_t id) { return ws.z[id] >= threshold; });
}

void Typical(Workspace& ws, float typical_p, size_t min_keep, Preset preset) {
  const double mass = CandidateMass(ws);
  const double log_mass = std::log(mass);
  double entropy = 0.0;
  ws.log_probs.resize(ws.n);
  for (size_t i = 0; i < ws.n; ++i) {
    const float wi = ws.w[ws.ids[i]];
    if (wi > 0.0f) {
      const double lp = std::log(static_cast<double>(wi)) - log_mass;
      ws.log_probs[i] = lp;
      entropy -= std::exp(lp) * lp;
    }
  }
  // Ordered by (score, id) through 128-bit keys (a non-negative double's bits order like
  // it), one vectorised sort.
  ws.score_keys.resize(ws.n);
  for (size_t i = 0; i < ws.n; ++i) {
    double score = std::numeric_limits<double>::infinity();
    if (ws.w[ws.ids[i]] > 0.0f) score = std::fabs(-ws.log_probs[i] - entropy);
    // transformers compares float32 scores: ties there are ties here.
    if (preset == Preset::kHf) score = static_cast<float>(score);
    uint64_t bits;
    std::memcpy(&bits, &score, sizeof(bits));
    ws.score_keys[i].hi = bits;
    ws.score_keys[i].lo = static_cast<uint32_t>(ws.ids[i]);
  }
  if (ws.n >= kVectorSortMinSize && kernels::DispatchedTarget() != HWY_SCALAR) {
    ws.sorter(ws.score_keys.data(), ws.n, hwy::SortAscending());
  } else {  // short, or a target whose vqsort has no 128-bit keys
    std::sort(ws.score_keys.begin(), ws.score_keys.end(),
              [](const hwy::uint128_t& a, const hwy::uint128_t& b) {
                return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
              });
  }
  ws.scored.resize(ws.n);
  for (size_t i = 0; i < ws.n; ++i) {
    double score;
    std::memcpy(&score, &ws.score_keys[i].hi, sizeof(score));
    ws.scored[i] = {score, static_cast<int32_t>(ws.score_keys[i].lo)};
  }
  size_t keep = ws.n;
  if (preset == Preset::kStandard) {
    double cum = 0.0;
    for (size_t i = 0; i < ws.n; ++i) {
      cum += static_cast<double>(ws.w[ws.scored[i].second]) / mass;
      if (cum >= typical_p - kMassTolerance) {
        keep = i + 1;
        break;
      }
    }
    keep = std::max(keep, std::min(min_keep, ws.n));
  } else if (preset == Preset::kHf) {
    // last = number of positions whose float32 cumulative mass is < p; remove the
    // tokens scoring strictly worse than the one at `last`.
    float cum = 0.0f;
    size_t last = 0;
    for (size_t i = 0; i < ws.n; ++i) {
      cum += static_cast<float>(static_cast<double>(ws.w[ws.scored[i].second]) / mass);
      if (cum < typical_p) ++last;
    }
    last = std::min(last, ws.n - 1);
    const double cutoff = ws.scored[last].first;
    keep = last + 1;
    while (keep < ws.n && ws.scored[keep].first <= cutoff) ++keep;
    keep = std::max(keep, std::min(min_keep, ws.n));
  } else {
    // llama.cpp: smallest prefix whose float cumulative mass is > p (strict), at least
    // min_keep tokens.
    float cum = 0.0f;
    for (size_t i = 0; i < ws.n; ++i) {
      cum += static_cast<float>(static_cast<double>(ws.w[ws.scored[i].second]) / mass);
      if (cum > typical_p && i + 1 >= min_keep) {
        keep = i + 1;
        break;
      }
    }
  }
  for (size_t i = 0; i < keep; ++i) ws.ids[i] = ws.scored[i].second;
  ws.n = keep;
}

}  // namespace tokensampler::sampler::stages
