// SIMD kernels of the whole row: decode (bf16 / fp16 / fp32), max, exp-sum, argmax.
// Contracts in sampler/kernels.h; scalar references in sampler/kernels/scalar.cc.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "sampler/kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "sampler/kernels/row.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "sampler/kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tokensampler::sampler::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Shared body: `load(i)` decodes lanes [i, i + N); `scalar(i)` element i. With kMasked,
// the lanes `bitmask` masks become -inf after the check (stored and maximised so) and,
// with kRaw, *raw_max receives the maximum before the mask; without kMasked, *raw_max
// (if not null) = *max.
template <bool kStore, bool kMasked, bool kRaw, class Load, class Scalar>
HWY_INLINE int64_t DecodeLoop(size_t n, const Load& load, const Scalar& scalar,
                              const uint8_t* bitmask, float* out, float* max, float* raw_max) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF inf = hn::Set(d, std::numeric_limits<float>::infinity());
  VF m0 = hn::Set(d, -std::numeric_limits<float>::infinity());
  VF m1 = m0;
  VF r0 = m0;  // the raw maxima (kMasked)
  VF r1 = m0;
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    VF a = load(i);
    VF b = load(i + N);
    // NaN and +inf both fail `v < inf`.
    if (HWY_UNLIKELY(!hn::AllTrue(d, hn::And(hn::Lt(a, inf), hn::Lt(b, inf))))) break;
    if constexpr (kMasked) {
      if constexpr (kRaw) {
        r0 = hn::Max(r0, a);
        r1 = hn::Max(r1, b);
      }
      a = MaskLanes(d, bitmask, i, a);
      b = MaskLanes(d, bitmask, i + N, b);
    }
    if constexpr (kStore) {
      hn::StoreU(a, d, out + i);
      hn::StoreU(b, d, out + i + N);
    }
    m0 = hn::Max(m0, a);
    m1 = hn::Max(m1, b);
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
  float raw = kMasked ? hn::GetLane(hn::MaxOfLanes(d, hn::Max(r0, r1))) : m;
  for (; i < n; ++i) {
    float v = scalar(i);
    if (!(v < std::numeric_limits<float>::infinity())) return static_cast<int64_t>(i);
    raw = v > raw ? v : raw;
    if constexpr (kMasked) {
      v = stages::BitmaskAllows(bitmask, i) ? v : -std::numeric_limits<float>::infinity();
    }
    if constexpr (kStore) out[i] = v;
    m = v > m ? v : m;
  }
  *max = m;
  if (raw_max != nullptr) *raw_max = raw;
  return -1;
}

// DecodeLoop with kStore = (out != null), kMasked = (bitmask != null) and kRaw =
// (raw_max != null).
template <class Load, class Scalar>
HWY_INLINE int64_t DecodeAny(size_t n, const Load& load, const Scalar& scalar,
                             const uint8_t* bitmask, float* out, float* max, float* raw_max) {
  const auto masked = [&](auto store) {
    constexpr bool kStore = decltype(store)::value;
    return raw_max == nullptr
               ? DecodeLoop<kStore, true, false>(n, load, scalar, bitmask, out, max, raw_max)
               : DecodeLoop<kStore, true, true>(n, load, scalar, bitmask, out, max, raw_max);
  };
  if (out == nullptr) {
    return bitmask == nullptr
               ? DecodeLoop<false, false, false>(n, load, scalar, bitmask, out, max, raw_max)
               : masked(std::false_type());
  }
  return bitmask == nullptr
             ? DecodeLoop<true, false, false>(n, load, scalar, bitmask, out, max, raw_max)
             : masked(std::true_type());
}

int64_t DecodeAndMaxImpl(const LogitsView& in, float* out, float* max, const uint8_t* bitmask,
                         float* raw_max) {
  return WithRowReader(in, [&](const auto& load, const auto& scalar) {
    return DecodeAny(in.size, load, scalar, bitmask, out, max, raw_max);
  });
}

float MaxImpl(const float* z, size_t n) {
  const DF d;
  const size_t N = hn::Lanes(d);
  VF m0 = hn::Set(d, -std::numeric_limits<float>::infinity());
  VF m1 = m0;
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    m0 = hn::Max(m0, hn::LoadU(d, z + i));
    m1 = hn::Max(m1, hn::LoadU(d, z + i + N));
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
  for (; i < n; ++i) m = z[i] > m ? z[i] : m;
  return m;
}

// ExpSum with the fixed reduction order of kernels.h, over the row whose lanes [i, i + N)
// `load(i)` gives and whose element i `scalar(i)` gives: lane j of accumulator k holds
// the partial sum of the elements whose index in the block is k * N + j (mod 16), so
// each of the 16 partials adds the same elements in the same order as the scalar loop.
// With block_sums, also block_sums[b] = SumRange of block b's weights, read back while
// the block is still in L1 (kSumBlock == kDrawBlock). Without kStore, w is not written
// (block_sums must be null); the total is the same.
// With kMasked, the lanes `bitmask` masks weigh +0 (what -inf gives): their exp is
// computed from the unmasked logit and then replaced, so that a masked lane never sends
// its vector down ExpVec's slower path for very negative arguments.
template <bool kStore, bool kMasked = false, class Load, class Scalar>
HWY_INLINE double ExpSumLoop(size_t n, const Load& load, const Scalar& scalar, float max,
                             float temperature, float* w, double* block_sums,
                             const uint8_t* bitmask = nullptr) {
  const DF d;
  constexpr size_t kN = hn::MaxLanes(DF());
  // Lanes wider than 16 floats would mix partials (no x86 target has them): the scalar
  // order instead.
  constexpr size_t kVecLanes = kN > kSumLanes ? 0 : kN;
  constexpr size_t kAcc = kN > kSumLanes ? 1 : kSumLanes / kN;
  const VF vmax = hn::Set(d, max);
  const VF vt = hn::Set(d, temperature);
  const bool unit_t = temperature == 1.0f;  // x / 1 == x: skip the division
  double total = 0.0;
  HWY_ALIGN float partial[kSumLanes > kN ? kSumLanes : kN];
  for (size_t block = 0; block < n; block += kSumBlock) {
    const size_t end = block + kSumBlock < n ? block + kSumBlock : n;
    size_t i = block;
    if constexpr (kVecLanes > 0) {
      VF acc[kAcc];
      for (size_t k = 0; k < kAcc; ++k) acc[k] = hn::Zero(d);
      if (unit_t) {
        for (; i + kSumLanes <= end; i += kSumLanes) {
          for (size_t k = 0; k < kAcc; ++k) {
            VF e = ExpVecAny(d, hn::Sub(load(i + k * kN), vmax));
            if constexpr (kMasked) e = hn::IfThenElseZero(AllowedLanes(d, bitmask, i + k * kN), e);
            if constexpr (kStore) hn::StoreU(e, d, w + i + k * kN);
            acc[k] = hn::Add(acc[k], e);
          }
        }
      } else {
        for (; i + kSumLanes <= end; i += kSumLanes) {
          for (size_t k = 0; k < kAcc; ++k) {
            VF e = ExpVecAny(d, hn::Div(hn::Sub(load(i + k * kN), vmax), vt));
            if constexpr (kMasked) e = hn::IfThenElseZero(AllowedLanes(d, bitmask, i + k * kN), e);
            if constexpr (kStore) hn::StoreU(e, d, w + i + k * kN);
            acc[k] = hn::Add(acc[k], e);
          }
        }
      }
      for (size_t k = 0; k < kAcc; ++k) hn::StoreU(acc[k], d, partial + k * kN);
    } else {
      for (size_t j = 0; j < kSumLanes; ++j) partial[j] = 0.0f;
    }
    for (; i < end; ++i) {
      float v = scalar(i);
      if constexpr (kMasked) {
        v = stages::BitmaskAllows(bitmask, i) ? v : -std::numeric_limits<float>::infinity();
      }
      const float e = ExpNonPositive((v - max) / temperature);
      if constexpr (kStore) w[i] = e;
      partial[(i - block) % kSumLanes] += e;
    }
    for (size_t j = 0; j < kSumLanes; ++j) total += partial[j];
    if (kStore && block_sums != nullptr) {
      block_sums[block / kSumBlock] = SumRange(w, block, end);
    }
  }
  return total;
}

double ExpSumImpl(const float* z, size_t n, float max, float temperature, float* w,
                  double* block_sums, const uint8_t* bitmask) {
  const DF d;
  const auto load = [&](size_t i) { return hn::LoadU(d, z + i); };
  const auto scalar = [&](size_t i) { return z[i]; };
  if (bitmask != nullptr) {
    return ExpSumLoop</*kStore=*/true, /*kMasked=*/true>(n, load, scalar, max, temperature, w,
                                                         block_sums, bitmask);
  }
  return ExpSumLoop</*kStore=*/true>(n, load, scalar, max, temperature, w, block_sums);
}

double ExpSumTotalImpl(const LogitsView& in, float max, float temperature) {
  return WithRowReader(in, [&](const auto& load, const auto& scalar) {
    return ExpSumLoop</*kStore=*/false>(in.size, load, scalar, max, temperature, nullptr,
                                        nullptr);
  });
}

// The end of an argmax over four (best value, index) chains that covered [0, i): the
// lowest index among the lanes equal to the overall maximum is the first maximum of that
// prefix; then the tail [i, n) element by element through `scalar`. With `check`, returns
// the index of the first NaN or +inf of the tail (the chains stop before a block holding
// one), else -1 with *argmax and *max set.
// With a `bitmask`, the tail's masked elements count as -inf (after their check).
template <class VI, class Scalar>
HWY_INLINE int64_t FinishArgmax(VF b0, VF b1, VF b2, VF b3, VI i0, VI i1, VI i2, VI i3, size_t i,
                                size_t n, const Scalar& scalar, bool check, size_t* argmax,
                                float* max, const uint8_t* bitmask = nullptr) {
  const DF d;
  const DI di;
  const VF top = hn::MaxOfLanes(d, hn::Max(hn::Max(b0, b1), hn::Max(b2, b3)));
  float m = hn::GetLane(top);
  size_t result = 0;
  if (i > 0 && m > -std::numeric_limits<float>::infinity()) {
    const auto none = hn::Set(di, std::numeric_limits<int32_t>::max());
    auto pick = [&](VF b, VI ix) {
      return hn::IfThenElse(hn::RebindMask(di, hn::Eq(b, top)), ix, none);
    };
    const auto cand = hn::Min(hn::Min(pick(b0, i0), pick(b1, i1)),
                              hn::Min(pick(b2, i2), pick(b3, i3)));
    result = static_cast<size_t>(hn::GetLane(hn::MinOfLanes(di, cand)));
  }
  for (; i < n; ++i) {
    float v = scalar(i);
    if (check && !(v < std::numeric_limits<float>::infinity())) return static_cast<int64_t>(i);
    if (bitmask != nullptr && !stages::BitmaskAllows(bitmask, i)) {
      v = -std::numeric_limits<float>::infinity();
    }
    if (v > m) {
      m = v;
      result = i;
    }
  }
  *argmax = result;
  *max = m;
  return -1;
}

// Greedy straight from the input: per lane the best value and the lowest index holding
// it, with (if `check`) the NaN/+inf rule of DecodeAndMax, and no copy of the row. Four
// independent (best, index) chains hide the compare-and-blend latency; each keeps the
// lowest index of its maximum (strict >), so the lowest index among the chains' lanes
// equal to the overall maximum is the first maximum of the row. With kMasked, the lanes
// `bitmask` masks read as -inf after the check.
template <bool kMasked = false, class Load, class Scalar>
HWY_INLINE int64_t ArgmaxLoop(size_t n, const Load& load, const Scalar& scalar, bool check,
                              size_t* argmax, float* max, const uint8_t* bitmask = nullptr) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  const VF inf = hn::Set(d, std::numeric_limits<float>::infinity());
  const VF neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  VF b0 = neg_inf, b1 = neg_inf, b2 = neg_inf, b3 = neg_inf;
  auto i0 = hn::Zero(di), i1 = i0, i2 = i0, i3 = i0;
  auto idx = hn::Iota(di, 0);
  const auto step = hn::Set(di, static_cast<int32_t>(N));
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const VF v0 = load(d, i), v1 = load(d, i + N), v2 = load(d, i + 2 * N),
             v3 = load(d, i + 3 * N);
    if (check) {
      const auto ok = hn::And(hn::And(hn::Lt(v0, inf), hn::Lt(v1, inf)),
                              hn::And(hn::Lt(v2, inf), hn::Lt(v3, inf)));
      if (HWY_UNLIKELY(!hn::AllTrue(d, ok))) break;
    }
    auto g0 = hn::Gt(v0, b0), g1 = hn::Gt(v1, b1), g2 = hn::Gt(v2, b2), g3 = hn::Gt(v3, b3);
    if constexpr (kMasked) {
      // A masked lane never beats its chain (as -inf would not): one AND per vector.
      g0 = hn::And(g0, AllowedLanes(d, bitmask, i));
      g1 = hn::And(g1, AllowedLanes(d, bitmask, i + N));
      g2 = hn::And(g2, AllowedLanes(d, bitmask, i + 2 * N));
      g3 = hn::And(g3, AllowedLanes(d, bitmask, i + 3 * N));
    }
    b0 = hn::IfThenElse(g0, v0, b0);
    b1 = hn::IfThenElse(g1, v1, b1);
    b2 = hn::IfThenElse(g2, v2, b2);
    b3 = hn::IfThenElse(g3, v3, b3);
    const auto x1 = hn::Add(idx, step);
    const auto x2 = hn::Add(x1, step);
    const auto x3 = hn::Add(x2, step);
    i0 = hn::IfThenElse(hn::RebindMask(di, g0), idx, i0);
    i1 = hn::IfThenElse(hn::RebindMask(di, g1), x1, i1);
    i2 = hn::IfThenElse(hn::RebindMask(di, g2), x2, i2);
    i3 = hn::IfThenElse(hn::RebindMask(di, g3), x3, i3);
    idx = hn::Add(x3, step);
  }
  return FinishArgmax(b0, b1, b2, b3, i0, i1, i2, i3, i, n, scalar, check, argmax, max,
                      kMasked ? bitmask : nullptr);
}

size_t ArgmaxImpl(const float* z, size_t n) {
  size_t argmax = 0;
  float max = 0.0f;
  ArgmaxLoop(
      n, [z](DF d, size_t i) { return hn::LoadU(d, z + i); }, [z](size_t i) { return z[i]; },
      /*check=*/false, &argmax, &max);
  return argmax;
}


// Greedy on bf16 without widening loads: a 32-bit lane holds two bf16 (little-endian:
// element 2j low, 2j + 1 high), and `lane << 16` and `lane & 0xFFFF0000` are both exact
// floats. Two chains per loaded vector (even and odd elements, their own index vectors)
// and two vectors per step; the merge is ArgmaxLoop's (lowest index among the lanes equal
// to the maximum), so the result is the first maximum of the row.
int64_t Bf16ArgmaxImpl(const unsigned char* bytes, size_t n, size_t* argmax, float* max) {
  const DF d;
  const DI di;
  const DU du;
  const size_t N = hn::Lanes(d);
  const VF inf = hn::Set(d, std::numeric_limits<float>::infinity());
  const VF neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  const auto high = hn::Set(du, 0xFFFF0000u);
  VF b0 = neg_inf, b1 = neg_inf, b2 = neg_inf, b3 = neg_inf;
  auto i0 = hn::Zero(di), i1 = i0, i2 = i0, i3 = i0;
  auto even_idx = hn::Add(hn::Iota(di, 0), hn::Iota(di, 0));  // 0, 2, 4, ...
  const auto one = hn::Set(di, 1);
  const auto step = hn::Set(di, static_cast<int32_t>(2 * N));
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const auto u0 = hn::LoadU(du, reinterpret_cast<const uint32_t*>(bytes + 2 * i));
    const auto u1 = hn::LoadU(du, reinterpret_cast<const uint32_t*>(bytes + 2 * (i + 2 * N)));
    const VF e0 = hn::BitCast(d, hn::ShiftLeft<16>(u0)), o0 = hn::BitCast(d, hn::And(u0, high));
    const VF e1 = hn::BitCast(d, hn::ShiftLeft<16>(u1)), o1 = hn::BitCast(d, hn::And(u1, high));
    const auto ok = hn::And(hn::And(hn::Lt(e0, inf), hn::Lt(o0, inf)),
                            hn::And(hn::Lt(e1, inf), hn::Lt(o1, inf)));
    if (HWY_UNLIKELY(!hn::AllTrue(d, ok))) break;
    const auto g0 = hn::Gt(e0, b0), g1 = hn::Gt(o0, b1), g2 = hn::Gt(e1, b2),
               g3 = hn::Gt(o1, b3);
    b0 = hn::IfThenElse(g0, e0, b0);
    b1 = hn::IfThenElse(g1, o0, b1);
    b2 = hn::IfThenElse(g2, e1, b2);
    b3 = hn::IfThenElse(g3, o1, b3);
    const auto x2 = hn::Add(even_idx, step);
    i0 = hn::IfThenElse(hn::RebindMask(di, g0), even_idx, i0);
    i1 = hn::IfThenElse(hn::RebindMask(di, g1), hn::Add(even_idx, one), i1);
    i2 = hn::IfThenElse(hn::RebindMask(di, g2), x2, i2);
    i3 = hn::IfThenElse(hn::RebindMask(di, g3), hn::Add(x2, one), i3);
    even_idx = hn::Add(x2, step);
  }
  return FinishArgmax(
      b0, b1, b2, b3, i0, i1, i2, i3, i, n,
      [bytes](size_t k) { return BFloat16ToFloat(Bits16(bytes, k)); }, /*check=*/true, argmax,
      max);
}

int64_t DecodeArgmaxImpl(const LogitsView& in, size_t* argmax, float* max, const uint8_t* bitmask) {
  const unsigned char* bytes = static_cast<const unsigned char*>(in.data);
  if (bitmask != nullptr) {
    // Lanes in token order (not Bf16ArgmaxImpl's even/odd split), so that lane j of the
    // vector at i is token i + j, whose bit AllowedLanes reads.
    return WithRowReader(in, [&](const auto& load, const auto& scalar) {
      return ArgmaxLoop</*kMasked=*/true>(
          in.size, [&](DF, size_t i) { return load(i); }, scalar, /*check=*/true, argmax, max,
          bitmask);
    });
  }
  switch (in.dtype) {
    case Dtype::kBFloat16:
      return Bf16ArgmaxImpl(bytes, in.size, argmax, max);
    case Dtype::kFloat16:
      return ArgmaxLoop(
          in.size, [bytes](DF d, size_t i) { return DecodeFp16(d, bytes + 2 * i); },
          [bytes](size_t i) { return Float16ToFloat(Bits16(bytes, i)); }, true, argmax, max);
    case Dtype::kFloat32:
    default:
      return ArgmaxLoop(
          in.size,
          [bytes](DF d, size_t i) {
            return hn::LoadU(d, reinterpret_cast<const float*>(bytes) + i);
          },
          [bytes](size_t i) {
            float v;
            std::memcpy(&v, bytes + 4 * i, sizeof(v));
            return v;
          },
          true, argmax, max);
  }
}

int64_t TargetImpl() { return HWY_TARGET; }
}  // namespace HWY_NAMESPACE
}  // namespace tokensampler::sampler::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tokensampler::sampler::kernels {

HWY_EXPORT(DecodeAndMaxImpl);
HWY_EXPORT(MaxImpl);
HWY_EXPORT(ExpSumImpl);
HWY_EXPORT(ExpSumTotalImpl);
HWY_EXPORT(ArgmaxImpl);
HWY_EXPORT(DecodeArgmaxImpl);
HWY_EXPORT(TargetImpl);

int64_t DecodeAndMax(const LogitsView& in, float* out, float* max, const uint8_t* bitmask,
                     float* raw_max) {
  return HWY_DYNAMIC_DISPATCH(DecodeAndMaxImpl)(in, out, max, bitmask, raw_max);
}
int64_t MaxChecked(const float* z, size_t n, float* max, const uint8_t* bitmask, float* raw_max) {
  return DecodeAndMax(LogitsView{z, n, Dtype::kFloat32}, nullptr, max, bitmask, raw_max);
}
float Max(const float* z, size_t n) { return HWY_DYNAMIC_DISPATCH(MaxImpl)(z, n); }
double ExpSum(const float* z, size_t n, float max, float temperature, float* w,
              const uint8_t* bitmask) {
  return HWY_DYNAMIC_DISPATCH(ExpSumImpl)(z, n, max, temperature, w, nullptr, bitmask);
}
double ExpSumBlocks(const float* z, size_t n, float max, float temperature, float* w,
                    double* block_sums, const uint8_t* bitmask) {
  return HWY_DYNAMIC_DISPATCH(ExpSumImpl)(z, n, max, temperature, w, block_sums, bitmask);
}
double ExpSumTotal(const LogitsView& in, float max, float temperature) {
  return HWY_DYNAMIC_DISPATCH(ExpSumTotalImpl)(in, max, temperature);
}
double ExpSumTotal(const float* z, size_t n, float max, float temperature) {
  return ExpSumTotal(LogitsView{z, n, Dtype::kFloat32}, max, temperature);
}
size_t Argmax(const float* z, size_t n) { return HWY_DYNAMIC_DISPATCH(ArgmaxImpl)(z, n); }
int64_t DecodeArgmax(const LogitsView& in, size_t* argmax, float* max, const uint8_t* bitmask) {
  return HWY_DYNAMIC_DISPATCH(DecodeArgmaxImpl)(in, argmax, max, bitmask);
}
int64_t DispatchedTarget() { return HWY_DYNAMIC_DISPATCH(TargetImpl)(); }

}  // namespace tokensampler::sampler::kernels
#endif  // HWY_ONCE
