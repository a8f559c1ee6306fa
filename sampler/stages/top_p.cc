// Top-p (nucleus) in its three preset forms, and STANDARD top-p by threshold on the
// whole row (no list or sort of V).
#include "sampler/stages/stages.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <system_error>

#include "sampler/kernels.h"
#include "sampler/workspace.h"

namespace tokensampler::sampler::stages {

namespace {

// Top-p by threshold: strided samples of the row that guess the nucleus' last logit.
constexpr size_t kThresholdSamples = 512;
// Logit buckets of the listed set's mass histogram, summed in groups of kBucketGroup.
constexpr size_t kLogitBuckets = 2048;
constexpr size_t kBucketGroup = 16;
// The tail guess ends where the sampled tail, scaled by the stride, holds this share of
// the mass top-p may drop: below 1, so that the sample's noise rarely puts the guess
// past the true cut (a guess that falls short costs a second pass).
constexpr double kTailShareOfDroppable = 0.85;
// The whole-row try lists the tokens whose weight is at least exp(-kWholeRowLogitSpan)
// of the top token's: lighter ones cannot reach the cut unless the listed mass falls
// short, which is checked.
constexpr float kWholeRowLogitSpan = 100.0f;
// CollectAtLeast's mass carries float block partials (~1e-7 relative): a listed set
// counts as reaching the target only with this relative margin above it.
constexpr double kListedMassMargin = 1e-5;

// Samples every stride-th token (with w > 0) into ws.sampled, sorted by logit descending
// (one vectorised sort of (order-preserving logit bits, index)), and returns the sample
// positions to list from, tightest first, at most three: two guesses of where the nucleus
// ends, then the whole row (sampled.size()). The guesses: the sample's own nucleus (few
// samples, noisy), and the point above which the sampled tail (many light tokens, each
// standing for `stride` of them) leaves at most kTailShareOfDroppable of the mass top-p
// may drop (steadier: the tail is well sampled); each with a margin, the looser one at
// least twice the tighter. Returns 0 tries if no sampled token has weight.
size_t GuessListThresholds(Workspace& ws, double top_p, size_t tries[3]) {
  const size_t stride = ws.vocab / kThresholdSamples;
  ws.sampled.clear();
  double sample_mass = 0.0;
  for (size_t j = 0; j < kThresholdSamples; ++j) {
    const size_t i = j * stride + stride / 2;
    if (ws.w[i] > 0.0f) {
      ws.sampled.push_back({ws.z[i], ws.w[i]});
      sample_mass += ws.w[i];
    }
  }
  if (ws.sampled.empty()) return 0;
  const size_t m = ws.sampled.size();
  ws.keys.resize(m);
  for (size_t j = 0; j < m; ++j) {
    ws.keys[j] = (static_cast<uint64_t>(LogitKey(ws.sampled[j].first)) << 32) | j;
  }
  ws.sorter(ws.keys.data(), m, hwy::SortDescending());
  ws.sampled_sorted.resize(m);
  for (size_t j = 0; j < m; ++j) {
    ws.sampled_sorted[j] = ws.sampled[static_cast<uint32_t>(ws.keys[j])];
  }
  ws.sampled.swap(ws.sampled_sorted);
  size_t head_at = m - 1;
  double acc = 0.0;
  for (size_t j = 0; j < m; ++j) {
    acc += ws.sampled[j].second;
    if (acc >= top_p * sample_mass) {
      head_at = j;
      break;
    }
  }
  const double droppable = kTailShareOfDroppable * (1.0 - top_p) * ws.total;
  double below = 0.0;
  size_t tail_at = m - 1;
  while (tail_at > 0) {
    below += static_cast<double>(stride) * ws.sampled[tail_at].second;
    if (below > droppable) break;
    --tail_at;
  }
  const size_t by_tail = tail_at + tail_at / 2 + 4;
  const size_t by_head = head_at + head_at / 4 + 4;
  const size_t first_at = std::min(by_tail, by_head);
  const size_t second_at = std::max(std::max(by_tail, by_head), 2 * first_at + 16);
  size_t count = 0;
  if (first_at < m) tries[count++] = first_at;
  if (second_at < m) tries[count++] = second_at;
  tries[count++] = m;  // the whole row
  return count;
}

// Lists the tokens with z >= listed_from into ids (ascending) with their logits and
// weights compact in listed_z / listed_w (later passes read them in order instead of
// one cache line per id), and their mass into *mass. Tokens whose weight is 0 are
// dropped when listed_from admits any (they sort last and never help reach the target).
// Returns the count.
size_t ListAtLeast(Workspace& ws, float listed_from, float z_max, float temperature,
                   double* mass) {
  ws.ids.resize(ws.vocab);
  ws.listed_z.resize(ws.vocab);
  ws.listed_w.resize(ws.vocab);
  const size_t count = kernels::CollectAtLeast(ws.z, ws.w.data(), ws.vocab, listed_from,
                                               ws.ids.data(), mass, ws.listed_z.data(),
                                               ws.listed_w.data());
  if (kernels::ExpNonPositive((listed_from - z_max) / temperature) > 0.0f) return count;
  size_t kept = 0;
  for (size_t i = 0; i < count; ++i) {
    if (ws.listed_w[i] > 0.0f) {
      ws.ids[kept] = ws.ids[i];
      ws.listed_z[kept] = ws.listed_z[i];
      ws.listed_w[kept++] = ws.listed_w[i];
    }
  }
  return kept;
}

// A mass histogram of the listed set over kLogitBuckets buckets of z spanning
// [bucket_floor, z_max] (monotone: a better bucket means a strictly larger logit; tokens
// below the floor share the last bucket), each token's bucket kept in listed_bucket.
// Returns the first bucket where the running mass reaches `target`, with *acc the mass
// of the buckets before it; kLogitBuckets if the set falls short. Whole groups of
// buckets first (their sums are independent), then the buckets of one group.
size_t FindCutBucket(Workspace& ws, size_t kept, float z_max, float bucket_floor,
                     double target, double* acc) {
  const float scale =
      static_cast<float>(kLogitBuckets) / std::max(z_max - bucket_floor, 1e-30f);
  ws.listed_bucket.resize(kept);
  kernels::LogitBuckets(ws.listed_z.data(), kept, z_max, scale, kLogitBuckets - 1,
                        ws.listed_bucket.data());
  ws.bucket_mass.assign(kLogitBuckets, 0.0);
  for (size_t i = 0; i < kept; ++i) ws.bucket_mass[ws.listed_bucket[i]] += ws.listed_w[i];
  *acc = 0.0;
  for (size_t g = 0; g < kLogitBuckets; g += kBucketGroup) {
    double group = 0.0;
    for (size_t b = g; b < g + kBucketGroup; ++b) group += ws.bucket_mass[b];
    if (*acc + group < target) {
      *acc += group;
      continue;
    }
    for (size_t b = g; b < g + kBucketGroup; ++b) {
      if (*acc + ws.bucket_mass[b] >= target) return b;
      *acc += ws.bucket_mass[b];
    }
    break;
  }
  return kLogitBuckets;
}

// The sort key of a token: (z descending, id ascending) as one 64-bit key
// (order-preserving logit bits over the complemented id).
uint64_t KeyOf(const Workspace& ws, int32_t id) {
  return (static_cast<uint64_t>(LogitKey(ws.z[id])) << 32) |
         (0xFFFFFFFFu - static_cast<uint32_t>(id));
}
int32_t IdOfKey(uint64_t key) {
  return static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key));
}

// Narrows the listed set ids[0, kept) (ascending) to the nucleus, in place and in order
// (so that Finalize finds the ids already sorted), given the cut bucket and `acc`, the
// mass of the better buckets: only the cut bucket's tokens are sorted. If
// min_tokens_to_keep reaches past the cut, the whole set is ordered instead. Returns n.
size_t KeepToCut(Workspace& ws, size_t kept, uint16_t cut, double acc, double target,
                 size_t min_keep) {
  ws.at_cut.resize(kept);
  size_t n_at_cut = 0;
  const size_t before_cut =
      kernels::SplitAtBucket(ws.listed_bucket.data(), kept, cut, ws.at_cut.data(), &n_at_cut);
  ws.keys.clear();
  for (size_t j = 0; j < n_at_cut; ++j) ws.keys.push_back(KeyOf(ws, ws.ids[ws.at_cut[j]]));
  // The cut bucket is empty only when the target is <= 0 (it is bucket 0 then): nothing
  // is kept by mass and min_tokens_to_keep decides below.
  size_t kept_count = before_cut;
  uint64_t worst = 0;
  if (!ws.keys.empty()) {
    std::sort(ws.keys.begin(), ws.keys.end(), std::greater<uint64_t>());
    worst = ws.keys.back();
    for (uint64_t key : ws.keys) {
      acc += ws.w[IdOfKey(key)];
      if (acc >= target) {
        worst = key;
        break;
      }
    }
    for (uint64_t key : ws.keys) kept_count += key >= worst;
  }
  if (kept_count < min_keep) {
    ws.keys.resize(kept);
    for (size_t i = 0; i < kept; ++i) ws.keys[i] = KeyOf(ws, ws.ids[i]);
    ws.sorter(ws.keys.data(), kept, hwy::SortDescending());
    worst = ws.keys[min_keep - 1];
    size_t out = 0;
    for (size_t i = 0; i < kept; ++i) {
      const int32_t id = ws.ids[i];
      ws.ids[out] = id;
      out += KeyOf(ws, id) >= worst;
    }
    return out;
  }
  // The kept set is every key >= worst: a better bucket than the cut's, or the cut's with
  // a key >= worst.
  float z_worst = -std::numeric_limits<float>::infinity();
  int32_t id_worst = std::numeric_limits<int32_t>::max();
  if (!ws.keys.empty()) {
    id_worst = IdOfKey(worst);
    z_worst = ws.z[id_worst] + 0.0f;
  }
  return kernels::KeepAboveCut(ws.ids.data(), ws.listed_z.data(), ws.listed_bucket.data(),
                               kept, cut, z_worst, id_worst);
}

// The double nearest to the shortest decimal that round-trips `v` (0.8f -> 0.8). The
// HF preset uses it where Python would see the caller's decimal literal as a double.
double DecimalValue(float v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  double d = v;
  if (r.ec == std::errc()) std::from_chars(buf, r.ptr, d);
  return d;
}

// The smallest c such that the best c candidates (Before order) have weight >= target,
// leaving them in ids[0, c) (unordered). Expected O(n): a quickselect that recurses
// only into the side holding the cut. Returns n if the whole set falls short. The
// decision sums differ from a sorted prefix sum only by double rounding, far below
// kMassTolerance.
size_t MassCut(Workspace& ws, double target) {
  if (target <= 0.0) return 0;
  auto before = [&ws](int32_t a, int32_t b) { return ws.Before(a, b); };
  int32_t* data = ws.ids.data();
  size_t lo = 0, hi = ws.n;
  double acc = 0.0;  // weight of ids[0, lo), all before everything in [lo, hi)
  // Median-of-3 pivots can be defeated by crafted rows; after 2 log2(n) + 8 rounds the
  // rest is sorted instead, which bounds the worst case to O(n log n).
  int rounds_left = 8;
  for (size_t m = ws.n; m > 1; m >>= 1) rounds_left += 2;
  while (hi - lo > 32 && rounds_left-- > 0) {
    int32_t a = data[lo], b = data[lo + (hi - lo) / 2], c = data[hi - 1];
    if (before(b, a)) std::swap(a, b);
    if (before(c, b)) std::swap(b, c);
    if (before(b, a)) std::swap(a, b);
    const int32_t pivot = b;
    int32_t* split_ptr = std::partition(data + lo, data + hi,
                                        [&](int32_t x) { return before(x, pivot); });
    const size_t split = static_cast<size_t>(split_ptr - data);
    for (size_t i = split; i < hi; ++i) {
      if (data[i] == pivot) {
        std::swap(data[i], data[split]);
        break;
      }
    }
    double mass = 0.0;
    for (size_t i = lo; i < split; ++i) mass += ws.w[data[i]];
    if (acc + mass >= target) {
      hi = split;
      continue;
    }
    acc += mass + ws.w[pivot];
    if (acc >= target) return split + 1;
    lo = split + 1;
  }
  std::sort(data + lo, data + hi, before);
  for (size_t i = lo; i < hi; ++i) {
    acc += ws.w[data[i]];
    if (acc >= target) return i + 1;
  }
  return hi;
}

}  // namespace

bool TopPByThreshold(Workspace& ws, double top_p, size_t min_keep, float z_max,
                     float temperature) {
  if (ws.vocab < 8 * kThresholdSamples || !(ws.total > 0.0)) return false;
  size_t tries[3];
  const size_t n_tries = GuessListThresholds(ws, top_p, tries);
  // ExpSum's total carries float block partials (~1e-7 relative): the cut needs the mass
  // as exactly as Collect + TopPStandard's double sum, which ExpSumBlocks' double block
  // sums give.
  double all_mass = 0.0;
  for (double block : ws.block_sums) all_mass += block;
  const double target = (top_p - kMassTolerance) * all_mass;
  const size_t whole_row = ws.sampled.size();
  for (size_t attempt = 0; attempt < n_tries; ++attempt) {
    const size_t at = tries[attempt];
    const float listed_from = at == whole_row ? z_max - kWholeRowLogitSpan * temperature
                                              : ws.sampled[at].first;
    double mass = 0.0;
    const size_t kept = ListAtLeast(ws, listed_from, z_max, temperature, &mass);
    if (!(mass >= target * (1.0 + kListedMassMargin))) continue;  // a looser guess next
    if (min_keep > kept) return false;
    const float bucket_floor = ws.sampled[at == whole_row ? whole_row - 1 : at].first;
    double acc = 0.0;
    const size_t cut = FindCutBucket(ws, kept, z_max, bucket_floor, target, &acc);
    if (cut == kLogitBuckets) return false;  // the set falls short after all
    ws.n = KeepToCut(ws, kept, static_cast<uint16_t>(cut), acc, target, min_keep);
    return true;
  }
  return false;
}

void TopPStandard(Workspace& ws, double top_p, size_t min_keep) {
  const double mass = CandidateMass(ws);
  const size_t cut = MassCut(ws, (top_p - kMassTolerance) * mass);
  if (cut >= min_keep || cut >= ws.n) {
    ws.n = std::min(cut, ws.n);
    return;
  }
  // ids[0, cut) are the best `cut`; pick the next best from the rest.
  const size_t want = std::min(min_keep, ws.n);
  auto before = [&ws](int32_t a, int32_t b) { return ws.Before(a, b); };
  std::nth_element(ws.ids.begin() + cut, ws.ids.begin() + (want - 1), ws.ids.begin() + ws.n, before);
  ws.n = want;
}

void TopPHf(Workspace& ws, float top_p, size_t min_keep) {
  // transformers TopPLogitsWarper: remove where cumsum <= 1 - top_p, top_p the decimal
  // a Python caller wrote.
  TopPAscending(ws, static_cast<float>(1.0 - DecimalValue(top_p)), min_keep);
}

void TopPAscending(Workspace& ws, float threshold, size_t min_keep) {
  // Sort ascending, float32 softmax and cumsum, remove where cumsum <= threshold, always
  // keep the last min_keep.
  const double mass = CandidateMass(ws);
  SortCandidates(ws);
  float cum = 0.0f;
  size_t removed = 0;
  for (size_t i = ws.n; i-- > 0;) {
    cum += static_cast<float>(static_cast<double>(ws.w[ws.ids[i]]) / mass);
    if (cum <= threshold) {
      ++removed;
    } else {
      break;
    }
  }
  ws.n = std::max(ws.n - removed, std::min(min_keep, ws.n));
}

void TopPLlama(Workspace& ws, float top_p, size_t min_keep) {
  // llama.cpp top-p: sort descending, keep the smallest prefix whose float cumulative
  // probability is >= p and which holds at least min_keep tokens.
  const double mass = CandidateMass(ws);
  SortCandidates(ws);
  float cum = 0.0f;
  for (size_t i = 0; i < ws.n; ++i) {
    cum += static_cast<float>(static_cast<double>(ws.w[ws.ids[i]]) / mass);
    if (cum >= top_p && i + 1 >= min_keep) {
      ws.n = i + 1;
      return;
    }
  }
}

}  // namespace tokensampler::sampler::stages
