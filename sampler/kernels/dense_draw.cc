// SIMD kernels of the dense distribution: its sum, its probabilities, and the draw
// decided from block sums (PickDense). Contracts in sampler/kernels.h.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "sampler/kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "sampler/kernels/dense_draw.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "sampler/kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tokensampler::sampler::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// sums[b] = the sum of w over block b (kDrawBlock elements), in double, any order.
void BlockSumsImpl(const float* w, size_t n, double* sums) {
  for (size_t block = 0, b = 0; block < n; block += kDrawBlock, ++b) {
    sums[b] = SumRange(w, block, block + kDrawBlock < n ? block + kDrawBlock : n);
  }
}

// sums[b] = the sum over block b of ProbOf(w[i], total), in double, any order.
// REQUIRES: total >= kMinScaledTotal.
void ProbBlockSumsImpl(const float* w, size_t n, double total, double* sums) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh;
  const size_t N = hn::Lanes(dd);
  const float scale = static_cast<float>(1.0 / total);
  const auto vs = hn::Set(dh, scale);
  const auto one = hn::Set(dh, 1.0f);
  for (size_t block = 0, b = 0; block < n; block += kDrawBlock, ++b) {
    const size_t end = block + kDrawBlock < n ? block + kDrawBlock : n;
    auto a0 = hn::Zero(dd);
    auto a1 = hn::Zero(dd);
    size_t i = block;
    for (; i + 2 * N <= end; i += 2 * N) {
      const auto p0 = hn::Min(hn::Mul(hn::LoadU(dh, w + i), vs), one);
      const auto p1 = hn::Min(hn::Mul(hn::LoadU(dh, w + i + N), vs), one);
      a0 = hn::Add(a0, hn::PromoteTo(dd, p0));
      a1 = hn::Add(a1, hn::PromoteTo(dd, p1));
    }
    double sum = hn::GetLane(hn::SumOfLanes(dd, hn::Add(a0, a1)));
    for (; i < end; ++i) sum += ProbOf(w[i], total);
    sums[b] = sum;
  }
}

// p[i] = ProbOf(w[i], total): one multiply and one min per lane.
void ProbsImpl(const float* w, size_t n, double total, float* p) {
  if (total < kMinScaledTotal) return ProbsScalar(w, n, total, p);
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF s = hn::Set(d, static_cast<float>(1.0 / total));
  const VF one = hn::Set(d, 1.0f);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const VF a = hn::LoadU(d, w + i);
    const VF b = hn::LoadU(d, w + i + N);
    hn::StoreU(hn::Min(hn::Mul(a, s), one), d, p + i);
    hn::StoreU(hn::Min(hn::Mul(b, s), one), d, p + i + N);
  }
  for (; i < n; ++i) p[i] = ProbOf(w[i], total);
}

// bits of ProbOf(w[i], total) > 0: one compare per vector, its mask bits stored whole
// (8 or 16 tokens, one or two bytes of the bitmask); targets of fewer lanes and the tail
// set bit by bit.
void PositiveBitsImpl(const float* w, size_t n, double total, uint8_t* bits) {
  size_t i = 0;
  if constexpr (hn::MaxLanes(DF()) >= 8) {
    if (total >= kMinScaledTotal) {
      const DF d;
      const size_t N = hn::Lanes(d);
      const VF s = hn::Set(d, static_cast<float>(1.0 / total));
      const VF one = hn::Set(d, 1.0f);
      for (; i + N <= n; i += N) {
        const VF p = hn::Min(hn::Mul(hn::LoadU(d, w + i), s), one);
        hn::StoreMaskBits(d, hn::Gt(p, hn::Zero(d)), bits + i / 8);
      }
    }
  }
  for (; i < n; ++i) {
    if (ProbOf(w[i], total) > 0.0f) stages::BitmaskSet(bits, i);
  }
}

// The double sum of w[0, n) in a fixed order on every target: lane j of 32 double
// accumulators adds the elements i = j (mod 32) in index order, then the 32 are added
// in lane order (AVX-512 keeps them in 4 vectors of 8, AVX2 in 8 of 4, SSE4 in 16 of
// 2: the same sums, and enough independent chains to hide the add latency).
double SumImpl(const float* w, size_t n) {
  constexpr size_t kLanes = kSumDoubleLanes;
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh;
  constexpr size_t kN = hn::MaxLanes(decltype(dd)());
  if constexpr (kN > kLanes) {
    return SumScalar(w, n);
  } else {
    constexpr size_t kAcc = kLanes / kN;
    hn::Vec<decltype(dd)> acc[kAcc];
    for (size_t k = 0; k < kAcc; ++k) acc[k] = hn::Zero(dd);
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (size_t k = 0; k < kAcc; ++k) {
        acc[k] = hn::Add(acc[k], hn::PromoteTo(dd, hn::LoadU(dh, w + i + k * kN)));
      }
    }
    HWY_ALIGN double lanes[kLanes];
    for (size_t k = 0; k < kAcc; ++k) hn::StoreU(acc[k], dd, lanes + k * kN);
    for (; i < n; ++i) lanes[i % kLanes] += w[i];
    double total = 0.0;
    for (size_t j = 0; j < kLanes; ++j) total += lanes[j];
    return total;
  }
}
}  // namespace HWY_NAMESPACE
}  // namespace tokensampler::sampler::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tokensampler::sampler::kernels {

HWY_EXPORT(BlockSumsImpl);
HWY_EXPORT(ProbBlockSumsImpl);
HWY_EXPORT(ProbsImpl);
HWY_EXPORT(PositiveBitsImpl);
HWY_EXPORT(SumImpl);

double Sum(const float* w, size_t n) { return HWY_DYNAMIC_DISPATCH(SumImpl)(w, n); }

void PositiveBits(const float* w, size_t n, double total, uint8_t* bits) {
  HWY_DYNAMIC_DISPATCH(PositiveBitsImpl)(w, n, total, bits);
}

void Probs(const float* w, size_t n, double total, float* p) {
  HWY_DYNAMIC_DISPATCH(ProbsImpl)(w, n, total, p);
}

namespace {

constexpr int64_t kTooClose = -2;

// The exact walk of PickDenseScalar, decided from approximate block sums wherever the
// approximation cannot change the answer: sums[b] * scale is block b's sum of the p_i
// within rel times it, plus double rounding. With S the sum of the p_i, every running
// sum the exact walk or this one forms is then within E of the exact real-number
// prefix sum (rel S, plus 2^-53 S per double addition, plus a subnormal step per
// element). A prefix is "surely below" the walk's target if it is below by more than
// E, "surely above" if above by more than E; a token whose interval straddles the
// target's uncertainty window returns kTooClose.
int64_t WalkFromBlockSums(const float* w, size_t n, double total, double u, const double* sums,
                          double scale, double rel) {
  const size_t blocks = (n + kDrawBlock - 1) / kDrawBlock;
  double approx_n = 0.0;  // approximate sum of all p_i
  for (size_t b = 0; b < blocks; ++b) approx_n += sums[b] * scale;
  const double slack =
      rel + 8.0 * static_cast<double>(n + 2 * blocks + 64) * std::ldexp(1.0, -53);
  const double e = slack * approx_n * 1.01 + static_cast<double>(n) * std::ldexp(1.0, -149);
  // cum_n is within e of approx_n; target = u * cum_n rounded.
  const double t_lo = u * (approx_n - e) * (1.0 - std::ldexp(1.0, -51));
  const double t_hi = u * (approx_n + e) * (1.0 + std::ldexp(1.0, -51));
  double prefix = 0.0;
  size_t b = 0;
  for (; b < blocks; ++b) {
    const double next = prefix + sums[b] * scale;
    if (next + e > t_lo) break;  // this block may hold the crossing
    prefix = next;
  }
  double cum = prefix;
  for (size_t i = b * kDrawBlock; i < n; ++i) {
    const float p = ProbOf(w[i], total);
    if (!(p > 0.0f)) continue;
    cum += p;
    if (cum + e <= t_lo) continue;             // surely not crossed yet
    if (cum - e > t_hi) return static_cast<int64_t>(i);  // surely the first crossing
    break;                                     // too close to call
  }
  return kTooClose;
}

}  // namespace

// First from sums of w: p_i = min(1, RN(w_i s)) is within 2^-24 of w_i s, so with scale
// s the sums are within 2^-24 relative (a window of ~1e-7 of the mass, which a
// sigma-3 row's many small tokens still straddle now and then). Then, if too close,
// from sums of the p_i themselves (one more SIMD pass; only double rounding is left);
// the sequential walk only if even that cannot decide.
int64_t PickDense(const float* w, size_t n, double total, double u,
                  const double* block_sums) {
  if (n < 4 * kDrawBlock || !(total >= kMinScaledTotal)) return PickDenseScalar(w, n, total, u);
  const size_t blocks = (n + kDrawBlock - 1) / kDrawBlock;
  double own[(static_cast<size_t>(kMaxVocab) + kDrawBlock - 1) / kDrawBlock];
  if (blocks > sizeof(own) / sizeof(own[0])) return PickDenseScalar(w, n, total, u);
  const double* sums = block_sums;
  if (sums == nullptr) {
    HWY_DYNAMIC_DISPATCH(BlockSumsImpl)(w, n, own);
    sums = own;
  }
  const double scale = static_cast<float>(1.0 / total);  // ProbOf's factor
  int64_t picked = WalkFromBlockSums(w, n, total, u, sums, scale, std::ldexp(1.0, -24));
  if (picked != kTooClose) return picked;
  HWY_DYNAMIC_DISPATCH(ProbBlockSumsImpl)(w, n, total, own);
  picked = WalkFromBlockSums(w, n, total, u, own, 1.0, 0.0);
  if (picked != kTooClose) return picked;
  return PickDenseScalar(w, n, total, u);
}


}  // namespace tokensampler::sampler::kernels
#endif  // HWY_ONCE
