// Top-k: the candidate scan over the row (SIMD, float32 or 16-bit in place), exact top-k
// with ties to the lowest id (STANDARD, llama.cpp) or with every tie of the k-th (HF).
#include "sampler/stages/stages.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>

#include "sampler/kernels.h"
#include "sampler/stages/bitmask.h"
#include "sampler/workspace.h"

namespace tokensampler::sampler::stages {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// TopKScan's floor guess: strided samples of the row, taken for k >= kFloorMinK.
constexpr size_t kFloorSamples = 1024;
constexpr size_t kFloorMinK = 256;

// The exact top k (ids[0, n)) holds the lowest ids of the group tied with the k-th; adds
// the rest of that group, the later tokens with the k-th's logit that the bitmask (if
// any) allows and for which keep(id) holds.
template <typename Keep>
void AddTiesWithKth(Workspace& ws, Keep keep) {
  int32_t kth = ws.ids[0];
  for (size_t i = 1; i < ws.n; ++i) {
    if (ws.Before(kth, ws.ids[i])) kth = ws.ids[i];
  }
  const float threshold = ws.z[kth];
  int32_t last_tied = kth;
  for (size_t i = 0; i < ws.n; ++i) {
    if (ws.z[ws.ids[i]] == threshold) last_tied = std::max(last_tied, ws.ids[i]);
  }
  for (size_t i = static_cast<size_t>(last_tied) + 1; i < ws.vocab; ++i) {
    if (ws.z[i] == threshold && (ws.bitmask == nullptr || BitmaskAllows(ws.bitmask, i)) &&
        keep(i)) {
      ws.ids[ws.n++] = static_cast<int32_t>(i);
    }
  }
}

}  // namespace

// The candidate scan of both top-k paths (the SIMD kernel: a bar that later ids must
// beat strictly), into ids; returns the count. For a large k the bar starts at a floor
// guessed from a strided sample of the row, a logit that about 1.3k + 8 strides of tokens
// beat: the buffer then fills about once, where a bar starting at -inf refills a 2k
// buffer about ln(V / k) times (an nth_element over 2k ids each). The guess only
// changes the cost: if fewer than k tokens beat it, the scan runs again without it.
// With `row` (bf16 or fp16, not yet checked) the scan reads that row in place instead of
// z, finding the same candidates in the same order, and checks it: returns the first
// NaN/+inf index, else -1.
int64_t TopKScan(Workspace& ws, size_t k, const LogitsView* row, size_t* count) {
  float floor = -kInf;
  size_t cap = 2 * k + 64;
  if (k >= kFloorMinK && ws.vocab >= 8 * kFloorSamples) {
    const size_t stride = ws.vocab / kFloorSamples;
    const size_t rank = 13 * k / (10 * stride) + 8;  // about rank * stride tokens beat it
    if (rank < kFloorSamples / 2) {
      ws.floor_sample.resize(kFloorSamples);
      bool finite = true;  // an unchecked row's sample may hold NaN/+inf: no guess then
      for (size_t j = 0; j < kFloorSamples; ++j) {
        const size_t i = j * stride + stride / 2;
        ws.floor_sample[j] = row == nullptr ? ws.z[i] : kernels::ElementOf(*row, i);
        finite &= ws.floor_sample[j] < kInf;
        if (ws.bitmask != nullptr && !BitmaskAllows(ws.bitmask, i)) ws.floor_sample[j] = -kInf;
      }
      if (finite) {
        std::nth_element(ws.floor_sample.begin(), ws.floor_sample.begin() + rank,
                         ws.floor_sample.end(), std::greater<float>());
        floor = ws.floor_sample[rank];
        cap = std::max(cap, 2 * (rank + 8) * stride + 64);
      }
    }
  }
  ws.ids.resize(std::max(ws.vocab, cap));
  auto scan = [&](float from, size_t room) -> int64_t {
    float bar = 0.0f;
    if (row == nullptr) {
      *count =
          kernels::TopKCandidates(ws.z, ws.vocab, k, ws.ids.data(), room, &bar, from, ws.bitmask);
      return -1;
    }
    return kernels::DecodeTopKCandidates(*row, k, ws.ids.data(), room, count, &bar, from,
                                         ws.bitmask);
  };
  const int64_t bad = scan(floor, cap);
  if (bad >= 0 || *count >= k || floor == -kInf) return bad;
  return scan(-kInf, 2 * k + 64);
}

// Top-k straight from the dense row without a candidate list of V: one pass keeps a
// buffer of at most 2k ids; when it fills, its best k stay (nth_element) and the k-th
// becomes the bar later tokens must beat. O(V) with one compare per token on typical
// rows. keep_ties (HF) adds, in a second pass, every token tied with the k-th.
void CollectTopK(Workspace& ws, size_t k, bool by_weight, bool keep_ties) {
  size_t count = 0;
  TopKScan(ws, k, nullptr, &count);
  if (by_weight) {
    size_t kept = 0;
    for (size_t i = 0; i < count; ++i) {
      if (ws.w[ws.ids[i]] > 0.0f) ws.ids[kept++] = ws.ids[i];
    }
    count = kept;
  }
  ws.n = count;
  KeepTop(ws, k);
  if (keep_ties && ws.n >= k) AddTiesWithKth(ws, [&](size_t i) { return by_weight ? ws.w[i] > 0.0f : ws.z[i] > -kInf; });
}

// Top-k before any exp over V (STANDARD and HF): the candidates come from one SIMD pass
// over z, and only they get a weight, the bits ExpSum would give them. A token whose
// weight underflows to 0 is no candidate, as in Collect(by_weight). keep_ties (HF) adds
// every later token tied with the k-th.
void TopKByLogits(Workspace& ws, size_t k, bool keep_ties, float max, float temperature) {
  size_t count = ws.prescanned;
  if (count == 0) TopKScan(ws, k, nullptr, &count);
  auto weigh = [&](size_t id) {
    return ws.w[id] = kernels::ExpNonPositive((ws.z[id] - max) / temperature);
  };
  size_t kept = 0;
  for (size_t i = 0; i < count; ++i) {
    if (weigh(ws.ids[i]) > 0.0f) ws.ids[kept++] = ws.ids[i];
  }
  ws.n = kept;
  KeepTop(ws, k);
  if (keep_ties && ws.n >= k) AddTiesWithKth(ws, [&](size_t i) { return weigh(i) > 0.0f; });
}

void TopKHf(Workspace& ws, size_t k) {
  if (k >= ws.n) return;
  const size_t all = ws.n;
  KeepTop(ws, k);
  const float threshold = ws.z[ws.ids[k - 1]];
  size_t keep = k;
  for (size_t j = k; j < all; ++j) {
    if (ws.z[ws.ids[j]] == threshold) std::swap(ws.ids[keep++], ws.ids[j]);
  }
  ws.n = keep;
}

}  // namespace tokensampler::sampler::stages
