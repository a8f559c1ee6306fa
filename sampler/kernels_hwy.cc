// Highway SIMD bodies of the kernels, compiled once per target (foreach_target) and
// picked at run time (HWY_DYNAMIC_DISPATCH). See kernels_hwy.h for the bit-identity
// contract with the scalar references in kernels.cc.
#include "sampler/kernels_hwy.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <cmath>
#include <limits>

#include "sampler/kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "sampler/kernels_hwy.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tokensampler::sampler::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using VF = hn::Vec<DF>;

// The core of ExpNonPositive shared by the two vector forms below: for x >= -104,
// n = round(x log2 e) and y ~ exp(x - n ln 2) in [0.7, 1.42], exp(x) = y 2^n.
HWY_INLINE VF ExpCore(DF d, VF x, hn::Vec<DI>* n_out) {
  namespace c = exp_constants;
  const DI di;
  VF t = hn::Mul(x, hn::Set(d, c::kLog2e));
  t = hn::Add(t, hn::Set(d, c::kRoundMagic));
  const VF nf = hn::Sub(t, hn::Set(d, c::kRoundMagic));
  *n_out = hn::Sub(hn::BitCast(di, t), hn::Set(di, c::kRoundMagicBits));
  VF r = hn::Sub(x, hn::Mul(nf, hn::Set(d, c::kLn2Hi)));
  r = hn::Sub(r, hn::Mul(nf, hn::Set(d, c::kLn2Lo)));
  VF p = hn::Set(d, c::kP5);
  p = hn::Add(hn::Mul(p, r), hn::Set(d, c::kP4));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, c::kP3));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, c::kP2));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, c::kP1));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, c::kP0));
  VF y = hn::Mul(p, hn::Mul(r, r));
  y = hn::Add(y, r);
  return hn::Add(y, hn::Set(d, 1.0f));
}

// The vector form of ExpNonPositive (kernels_hwy.h), operation for operation.
HWY_INLINE VF ExpVec(DF d, VF x) {
  namespace c = exp_constants;
  const DI di;
  hn::Vec<DI> n;
  VF y = ExpCore(d, hn::Max(x, hn::Set(d, c::kMinArg)), &n);
  const auto n1 = hn::ShiftRight<1>(n);
  const auto n2 = hn::Sub(n, n1);
  const auto bias = hn::Set(di, 127);
  y = hn::Mul(y, hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(n1, bias))));
  y = hn::Mul(y, hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(n2, bias))));
  return hn::IfThenZeroElse(hn::Lt(x, hn::Set(d, c::kMinArg)), y);
}

// Above this, ExpNonPositive's result is a normal float (x log2 e >= -124.07, so
// n >= -124 and y 2^n >= 2^-124.5) and neither its clamp nor its zeroing applies.
inline constexpr float kExpNormalArg = -86.0f;

// ExpVec for lanes that are all >= kExpNormalArg: the same bits with fewer operations.
// A power of two times a normal float, with a normal result, is exact, so ExpVec's two
// scale factors together are one add of n to y's exponent field.
HWY_INLINE VF ExpVecNormal(DF d, VF x) {
  const DI di;
  hn::Vec<DI> n;
  const VF y = ExpCore(d, x, &n);
  return hn::BitCast(d, hn::Add(hn::BitCast(di, y), hn::ShiftLeft<23>(n)));
}

// ExpVec, through ExpVecNormal when every lane allows it (all but rows with masked or
// very unlikely tokens).
HWY_INLINE VF ExpVecAny(DF d, VF x) {
  if (HWY_LIKELY(hn::AllFalse(d, hn::Lt(x, hn::Set(d, kExpNormalArg))))) {
    return ExpVecNormal(d, x);
  }
  return ExpVec(d, x);
}

// Element i of a 16-bit row as its bits (the row may be unaligned).
HWY_INLINE uint16_t Bits16(const unsigned char* bytes, size_t i) {
  uint16_t b;
  std::memcpy(&b, bytes + 2 * i, sizeof(b));
  return b;
}

// Decodes lanes of 16-bit elements to float, exactly like BFloat16ToFloat or
// Float16ToFloat.
HWY_INLINE VF DecodeBf16(DF d, const unsigned char* bytes) {
  const DU du;
  const hn::Rebind<uint16_t, DF> d16;
  const auto bits = hn::PromoteTo(du, hn::LoadU(d16, reinterpret_cast<const uint16_t*>(bytes)));
  return hn::BitCast(d, hn::ShiftLeft<16>(bits));
}

HWY_INLINE VF DecodeFp16(DF d, const unsigned char* bytes) {
  // A half's exponent and mantissa, shifted into a float's, read as a float, are the
  // value times 2^-112 (subnormal halves become float subnormals): multiplying by
  // 2^112 is exact. Exponent 31 (inf/NaN) maps to float exponent 255 instead.
  const DU du;
  const hn::Rebind<uint16_t, DF> d16;
  const auto h = hn::PromoteTo(du, hn::LoadU(d16, reinterpret_cast<const uint16_t*>(bytes)));
  const auto magnitude = hn::ShiftLeft<13>(hn::And(h, hn::Set(du, 0x7FFFu)));
  const VF scaled = hn::Mul(hn::BitCast(d, magnitude), hn::Set(d, 5.192296858534828e33f));
  const auto special = hn::Eq(hn::And(h, hn::Set(du, 0x7C00u)), hn::Set(du, 0x7C00u));
  const auto inf_nan = hn::Or(magnitude, hn::Set(du, 0x7F800000u));
  const auto mag_bits = hn::IfThenElse(special, inf_nan, hn::BitCast(du, scaled));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  return hn::BitCast(d, hn::Or(mag_bits, sign));
}

// Float16ToFloat, inline, by DecodeFp16's arithmetic.
HWY_INLINE float HalfToFloat(uint16_t h) {
  const int32_t magnitude = static_cast<int32_t>(h & 0x7FFFu) << 13;
  const float v = (h & 0x7C00u) == 0x7C00u
                      ? FloatFromBits(magnitude | 0x7F800000)
                      : FloatFromBits(magnitude) * 5.192296858534828e33f;  // * 2^112: exact
  return (h & 0x8000u) != 0 ? -v : v;
}

// Calls f(load, scalar) with the readers of `in`'s dtype: `load(i)` decodes lanes
// [i, i + N) to float, `scalar(i)` element i (the row may be unaligned).
template <class F>
HWY_INLINE auto WithRowReader(const LogitsView& in, const F& f) {
  const DF d;
  const unsigned char* bytes = static_cast<const unsigned char*>(in.data);
  switch (in.dtype) {
    case Dtype::kBFloat16:
      return f([&](size_t i) { return DecodeBf16(d, bytes + 2 * i); },
               [&](size_t i) { return BFloat16ToFloat(Bits16(bytes, i)); });
    case Dtype::kFloat16:
      return f([&](size_t i) { return DecodeFp16(d, bytes + 2 * i); },
               [&](size_t i) { return Float16ToFloat(Bits16(bytes, i)); });
    case Dtype::kFloat32:
    default:
      return f([&](size_t i) { return hn::LoadU(d, reinterpret_cast<const float*>(bytes) + i); },
               [&](size_t i) {
                 float v;
                 std::memcpy(&v, bytes + 4 * i, sizeof(v));
                 return v;
               });
  }
}

// Shared body: `load(i)` decodes lanes [i, i + N); `scalar(i)` element i.
template <bool kStore = true, class Load, class Scalar>
HWY_INLINE int64_t DecodeLoop(size_t n, const Load& load, const Scalar& scalar, float* out,
                              float* max) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF inf = hn::Set(d, std::numeric_limits<float>::infinity());
  VF m0 = hn::Set(d, -std::numeric_limits<float>::infinity());
  VF m1 = m0;
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const VF a = load(i);
    const VF b = load(i + N);
    // NaN and +inf both fail `v < inf`.
    if (HWY_UNLIKELY(!hn::AllTrue(d, hn::And(hn::Lt(a, inf), hn::Lt(b, inf))))) break;
    if constexpr (kStore) {
      hn::StoreU(a, d, out + i);
      hn::StoreU(b, d, out + i + N);
    }
    m0 = hn::Max(m0, a);
    m1 = hn::Max(m1, b);
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
  for (; i < n; ++i) {
    const float v = scalar(i);
    if (!(v < std::numeric_limits<float>::infinity())) return static_cast<int64_t>(i);
    if constexpr (kStore) out[i] = v;
    m = v > m ? v : m;
  }
  *max = m;
  return -1;
}

int64_t MaxCheckedImpl(const float* z, size_t n, float* max) {
  const DF d;
  return DecodeLoop</*kStore=*/false>(
      n, [&](size_t i) { return hn::LoadU(d, z + i); }, [&](size_t i) { return z[i]; },
      nullptr, max);
}

int64_t DecodeAndMaxImpl(const LogitsView& in, float* out, float* max) {
  return WithRowReader(in, [&](const auto& load, const auto& scalar) {
    return DecodeLoop(in.size, load, scalar, out, max);
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

// The sum of w[begin, end) in double, in any order (two chains of promoted lanes).
HWY_INLINE double SumRange(const float* w, size_t begin, size_t end) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh;
  const size_t N = hn::Lanes(dd);
  auto a0 = hn::Zero(dd);
  auto a1 = hn::Zero(dd);
  size_t i = begin;
  for (; i + 2 * N <= end; i += 2 * N) {
    a0 = hn::Add(a0, hn::PromoteTo(dd, hn::LoadU(dh, w + i)));
    a1 = hn::Add(a1, hn::PromoteTo(dd, hn::LoadU(dh, w + i + N)));
  }
  double sum = hn::GetLane(hn::SumOfLanes(dd, hn::Add(a0, a1)));
  for (; i < end; ++i) sum += w[i];
  return sum;
}

// ExpSum with the fixed reduction order of kernels.h, over the row whose lanes [i, i + N)
// `load(i)` gives and whose element i `scalar(i)` gives: lane j of accumulator k holds
// the partial sum of the elements whose index in the block is k * N + j (mod 16), so
// each of the 16 partials adds the same elements in the same order as the scalar loop.
// With block_sums, also block_sums[b] = SumRange of block b's weights, read back while
// the block is still in L1 (kSumBlock == kDrawBlock). Without kStore, w is not written
// (block_sums must be null); the total is the same.
template <bool kStore, class Load, class Scalar>
HWY_INLINE double ExpSumLoop(size_t n, const Load& load, const Scalar& scalar, float max,
                             float temperature, float* w, double* block_sums) {
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
            const VF e = ExpVecAny(d, hn::Sub(load(i + k * kN), vmax));
            if constexpr (kStore) hn::StoreU(e, d, w + i + k * kN);
            acc[k] = hn::Add(acc[k], e);
          }
        }
      } else {
        for (; i + kSumLanes <= end; i += kSumLanes) {
          for (size_t k = 0; k < kAcc; ++k) {
            const VF e = ExpVecAny(d, hn::Div(hn::Sub(load(i + k * kN), vmax), vt));
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
      const float e = ExpNonPositive((scalar(i) - max) / temperature);
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
                  double* block_sums) {
  const DF d;
  return ExpSumLoop</*kStore=*/true>(
      n, [&](size_t i) { return hn::LoadU(d, z + i); }, [&](size_t i) { return z[i]; }, max,
      temperature, w, block_sums);
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
template <class VI, class Scalar>
HWY_INLINE int64_t FinishArgmax(VF b0, VF b1, VF b2, VF b3, VI i0, VI i1, VI i2, VI i3,
                                size_t i, size_t n, const Scalar& scalar, bool check,
                                size_t* argmax, float* max) {
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
    const float v = scalar(i);
    if (check && !(v < std::numeric_limits<float>::infinity())) return static_cast<int64_t>(i);
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
// equal to the overall maximum is the first maximum of the row.
template <class Load, class Scalar>
HWY_INLINE int64_t ArgmaxLoop(size_t n, const Load& load, const Scalar& scalar, bool check,
                              size_t* argmax, float* max) {
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
    const auto g0 = hn::Gt(v0, b0), g1 = hn::Gt(v1, b1), g2 = hn::Gt(v2, b2),
               g3 = hn::Gt(v3, b3);
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
  return FinishArgmax(b0, b1, b2, b3, i0, i1, i2, i3, i, n, scalar, check, argmax, max);
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

int64_t DecodeArgmaxImpl(const LogitsView& in, size_t* argmax, float* max) {
  const unsigned char* bytes = static_cast<const unsigned char*>(in.data);
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

// Streams z once keeping a buffer of ids whose logit beats the bar; see TopKCandidates.
size_t TopKCandidatesImpl(const float* z, size_t n, size_t k, int32_t* buf, size_t cap,
                          float* bar_out, float floor) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  float bar = floor;
  size_t count = 0;
  auto shrink = [&]() {
    // Keep the best k (z descending, id ascending); the k-th's logit becomes the bar:
    // a later token (higher id) must beat it strictly.
    std::nth_element(buf, buf + (k - 1), buf + count, [z](int32_t a, int32_t b) {
      return z[a] > z[b] || (z[a] == z[b] && a < b);
    });
    bar = z[buf[k - 1]];
    count = k;
  };
  size_t i = 0;
  auto idx = hn::Iota(di, 0);
  const auto stride = hn::Set(di, static_cast<int32_t>(N));
  for (; i + N <= n; i += N, idx = hn::Add(idx, stride)) {
    const auto pass = hn::Gt(hn::LoadU(d, z + i), hn::Set(d, bar));
    if (HWY_LIKELY(hn::AllFalse(d, pass))) continue;
    if (count + 2 * N > cap) shrink();
    // The bar may have risen: compare again.
    const auto pass2 = hn::RebindMask(di, hn::Gt(hn::LoadU(d, z + i), hn::Set(d, bar)));
    hn::StoreU(hn::Compress(idx, pass2), di, buf + count);  // full vector: needs slack
    count += hn::CountTrue(di, pass2);
  }
  for (; i < n; ++i) {
    if (z[i] > bar) {
      if (count + 1 > cap) shrink();
      if (z[i] > bar) buf[count++] = static_cast<int32_t>(i);
    }
  }
  *bar_out = bar;
  return count;
}

// TopKCandidatesImpl's buffer and steps for a row whose logits are read through
// `value(id)`: the same comparisons in the same order, hence the same buffer.
template <class Value>
struct TopKBuffer {
  const Value& value;
  size_t k;
  int32_t* buf;
  size_t cap;
  float bar;
  size_t count = 0;

  // Keeps the best k (logit descending, id ascending); the k-th's logit becomes the
  // bar: a later token (higher id) must beat it strictly.
  void Shrink() {
    std::nth_element(buf, buf + (k - 1), buf + count, [this](int32_t a, int32_t b) {
      const float za = value(a);
      const float zb = value(b);
      return za > zb || (za == zb && a < b);
    });
    bar = value(buf[k - 1]);
    count = k;
  }

  // Appends the lanes of v (ids `ids`) that beat the bar, shrinking first if a full
  // vector might not fit.
  HWY_INLINE void Offer(VF v, hn::Vec<DI> ids) {
    const DF d;
    const DI di;
    if (count + 2 * hn::Lanes(d) > cap) Shrink();
    // The bar may have risen: compare again.
    const auto pass = hn::RebindMask(di, hn::Gt(v, hn::Set(d, bar)));
    hn::StoreU(hn::Compress(ids, pass), di, buf + count);  // full vector: needs slack
    count += hn::CountTrue(di, pass);
  }

  void OfferOne(size_t i, float v) {
    if (v > bar) {
      if (count + 1 > cap) Shrink();
      if (v > bar) buf[count++] = static_cast<int32_t>(i);
    }
  }
};

// TopKCandidatesImpl on a 16-bit row decoded as it goes, with DecodeAndMax's check.
// `pair(i, &a, &b)` decodes elements [i, i + 2N) into a and b in any lane order (only
// the all-below-the-bar test reads them); `load(i)` decodes [i, i + N) in order. Whole
// blocks of 2N whose lanes are all <= the bar are skipped: a lane that is not, NaN
// included, sends its block through the per-N steps of TopKCandidatesImpl, which
// therefore sees the same vectors at the same bars and leaves the same buffer, after
// checking the block for NaN/+inf. A +inf always fails the skip test: the bar is -inf,
// the floor (< +inf) or the logit of a buffered, hence checked, id.
template <class Pair, class Load, class Value>
HWY_INLINE int64_t TopKLoop16(size_t n, const Pair& pair, const Load& load, const Value& value,
                              TopKBuffer<Value>& top) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  const VF inf = hn::Set(d, std::numeric_limits<float>::infinity());
  const auto iota = hn::Iota(di, 0);
  auto offer = [&](size_t at) {
    const VF v = load(at);
    if (hn::AllFalse(d, hn::Gt(v, hn::Set(d, top.bar)))) return;
    top.Offer(v, hn::Add(iota, hn::Set(di, static_cast<int32_t>(at))));
  };
  size_t i = 0;
  bool stopped = false;  // at a block holding a NaN or +inf
  for (; i + 2 * N <= n; i += 2 * N) {
    VF a, b;
    pair(i, &a, &b);
    const VF bar = hn::Set(d, top.bar);
    if (HWY_LIKELY(hn::AllTrue(d, hn::And(hn::Le(a, bar), hn::Le(b, bar))))) continue;
    if (!hn::AllTrue(d, hn::And(hn::Lt(a, inf), hn::Lt(b, inf)))) {
      stopped = true;
      break;
    }
    offer(i);
    offer(i + N);
  }
  if (!stopped && i + N <= n) {
    if (hn::AllTrue(d, hn::Lt(load(i), inf))) {
      offer(i);
      i += N;
    } else {
      stopped = true;
    }
  }
  for (; i < n; ++i) {
    const float v = value(i);
    if (!(v < std::numeric_limits<float>::infinity())) return static_cast<int64_t>(i);
    if (!stopped) top.OfferOne(i, v);
  }
  return -1;
}

int64_t DecodeTopKCandidatesImpl(const LogitsView& in, size_t k, int32_t* buf, size_t cap,
                                 size_t* count, float* bar_out, float floor) {
  const DF d;
  const DU du;
  const size_t N = hn::Lanes(d);
  const unsigned char* bytes = static_cast<const unsigned char*>(in.data);
  int64_t bad;
  if (in.dtype == Dtype::kBFloat16) {
    auto value = [bytes](size_t i) {  // BFloat16ToFloat, inline: Shrink calls it a lot
      return FloatFromBits(static_cast<int32_t>(uint32_t{Bits16(bytes, i)} << 16));
    };
    TopKBuffer<decltype(value)> top{value, k, buf, cap, floor};
    // Two bf16 per 32-bit lane (element 2j low, 2j + 1 high): `lane << 16` and
    // `lane & 0xFFFF0000` are both exact floats.
    const auto high = hn::Set(du, 0xFFFF0000u);
    const auto pair = [&](size_t i, VF* a, VF* b) {
      const auto u = hn::LoadU(du, reinterpret_cast<const uint32_t*>(bytes + 2 * i));
      *a = hn::BitCast(d, hn::ShiftLeft<16>(u));
      *b = hn::BitCast(d, hn::And(u, high));
    };
    const auto load = [&](size_t i) { return DecodeBf16(d, bytes + 2 * i); };
    bad = TopKLoop16(in.size, pair, load, value, top);
    *count = top.count;
    *bar_out = top.bar;
  } else {
    auto value = [bytes](size_t i) { return HalfToFloat(Bits16(bytes, i)); };
    TopKBuffer<decltype(value)> top{value, k, buf, cap, floor};
    const auto load = [&](size_t i) { return DecodeFp16(d, bytes + 2 * i); };
#if HWY_ARCH_X86 && HWY_TARGET < HWY_SSE4 && !defined(HWY_DISABLE_F16C)
    // F16C's conversion (Highway's PromoteTo here), exact like DecodeFp16 and cheaper:
    // the skip test only compares the values. (Highway's fallback without F16C turns
    // inf and NaN into finite values, hence DecodeFp16 there.)
    const hn::Rebind<hwy::float16_t, DF> dh;
    const auto pair = [&](size_t i, VF* a, VF* b) {
      const auto* halves = reinterpret_cast<const hwy::float16_t*>(bytes) + i;
      *a = hn::PromoteTo(d, hn::LoadU(dh, halves));
      *b = hn::PromoteTo(d, hn::LoadU(dh, halves + N));
    };
#else
    const auto pair = [&](size_t i, VF* a, VF* b) {
      *a = load(i);
      *b = load(i + N);
    };
#endif
    bad = TopKLoop16(in.size, pair, load, value, top);
    *count = top.count;
    *bar_out = top.bar;
  }
  return bad;
}

// ids of every z[i] >= threshold (ascending), and the sum of their w in ExpSum's fixed
// order (16 float partials per block of kSumBlock, then double): the same bits on every
// target.
size_t CollectAtLeastImpl(const float* z, const float* w, size_t n, float threshold,
                          int32_t* ids, double* mass, float* zs, float* ws) {
  const DF d;
  const DI di;
  constexpr size_t kN = hn::MaxLanes(DF());
  if constexpr (kN > kSumLanes) {
    return CollectAtLeastScalar(z, w, n, threshold, ids, mass, zs, ws);
  } else {
    constexpr size_t kAcc = kSumLanes / kN;
    const VF t = hn::Set(d, threshold);
    const auto iota = hn::Iota(di, 0);  // Iota is a memory round trip: once
    const bool values = zs != nullptr;
    size_t count = 0;
    double total = 0.0;
    HWY_ALIGN float partial[kSumLanes];
    for (size_t block = 0; block < n; block += kSumBlock) {
      const size_t end = block + kSumBlock < n ? block + kSumBlock : n;
      VF acc[kAcc];
      for (size_t k = 0; k < kAcc; ++k) acc[k] = hn::Zero(d);
      size_t i = block;
      for (; i + kSumLanes <= end; i += kSumLanes) {
        for (size_t k = 0; k < kAcc; ++k) {
          const size_t at = i + k * kN;
          const VF zv = hn::LoadU(d, z + at);
          const auto keep = hn::Ge(zv, t);
          if (hn::AllFalse(d, keep)) continue;
          const VF wv = hn::LoadU(d, w + at);
          acc[k] = hn::Add(acc[k], hn::IfThenElseZero(keep, wv));
          const auto keep_i = hn::RebindMask(di, keep);
          // Register compress + full store (memory-destination compress is slow on
          // some CPUs): at most `at` ids precede, so the store stays below at + N <= n.
          const auto lane_ids = hn::Add(iota, hn::Set(di, static_cast<int32_t>(at)));
          hn::StoreU(hn::Compress(lane_ids, keep_i), di, ids + count);
          if (values) {
            hn::StoreU(hn::Compress(zv, keep), d, zs + count);
            hn::StoreU(hn::Compress(wv, keep), d, ws + count);
          }
          count += hn::CountTrue(di, keep_i);
        }
      }
      for (size_t k = 0; k < kAcc; ++k) hn::StoreU(acc[k], d, partial + k * kN);
      for (; i < end; ++i) {
        if (z[i] >= threshold) {
          if (values) {
            zs[count] = z[i];
            ws[count] = w[i];
          }
          ids[count++] = static_cast<int32_t>(i);
          partial[(i - block) % kSumLanes] += w[i];
        }
      }
      for (size_t j = 0; j < kSumLanes; ++j) total += partial[j];
    }
    *mass = total;
    return count;
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

// LogitBuckets: bucket[i] = trunc(min((z_max - z[i]) * scale, last)).
void LogitBucketsImpl(const float* z, size_t n, float z_max, float scale, uint16_t last,
                      uint16_t* bucket) {
  const DF d;
  const DI di;
  const hn::Rebind<uint16_t, DF> d16;
  const size_t N = hn::Lanes(d);
  const VF vmax = hn::Set(d, z_max);
  const VF vscale = hn::Set(d, scale);
  const VF vlast = hn::Set(d, static_cast<float>(last));
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const VF b = hn::Min(hn::Mul(hn::Sub(vmax, hn::LoadU(d, z + i)), vscale), vlast);
    hn::StoreU(hn::DemoteTo(d16, hn::ConvertTo(di, b)), d16, bucket + i);
  }
  for (; i < n; ++i) bucket[i] = LogitBucket(z[i], z_max, scale, last);
}

// SplitAtBucket: counts bucket[i] < cut; lists the positions i with bucket[i] == cut.
size_t SplitAtBucketImpl(const uint16_t* bucket, size_t n, uint16_t cut, uint32_t* at_cut,
                         size_t* n_at_cut) {
  const hn::ScalableTag<int32_t> di;
  const hn::Rebind<uint16_t, decltype(di)> d16;
  const size_t N = hn::Lanes(di);
  const auto vcut = hn::Set(di, cut);
  const auto iota = hn::Iota(di, 0);
  auto below = hn::Zero(di);
  size_t found = 0;
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto b = hn::PromoteTo(di, hn::LoadU(d16, bucket + i));
    below = hn::Sub(below, hn::VecFromMask(di, hn::Lt(b, vcut)));  // true lanes are -1
    const auto eq = hn::Eq(b, vcut);
    if (HWY_UNLIKELY(!hn::AllFalse(di, eq))) {
      const auto pos = hn::Add(iota, hn::Set(di, static_cast<int32_t>(i)));
      hn::StoreU(hn::Compress(pos, eq), di, reinterpret_cast<int32_t*>(at_cut) + found);
      found += hn::CountTrue(di, eq);
    }
  }
  size_t count = static_cast<size_t>(hn::GetLane(hn::SumOfLanes(di, below)));
  for (; i < n; ++i) {
    count += bucket[i] < cut;
    if (bucket[i] == cut) at_cut[found++] = static_cast<uint32_t>(i);
  }
  *n_at_cut = found;
  return count;
}

// KeepAboveCut: compacts ids (and z) in place, keeping position i if bucket[i] < cut, or
// bucket[i] == cut and (z[i], -ids[i]) >= (z_worst, -id_worst).
size_t KeepAboveCutImpl(int32_t* ids, float* z, const uint16_t* bucket, size_t n,
                        uint16_t cut, float z_worst, int32_t id_worst) {
  const DF d;
  const DI di;
  const hn::Rebind<uint16_t, DF> d16;
  const size_t N = hn::Lanes(d);
  const auto vcut = hn::Set(di, cut);
  const auto zw = hn::Set(di, OrderedBits(z_worst + 0.0f));
  const auto idw = hn::Set(di, id_worst);
  const auto magnitude = hn::Set(di, 0x7FFFFFFF);
  size_t out = 0;
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto b = hn::PromoteTo(di, hn::LoadU(d16, bucket + i));
    const auto id = hn::LoadU(di, ids + i);
    const VF zv = hn::LoadU(d, z + i);
    const auto bits = hn::BitCast(di, hn::Add(zv, hn::Zero(d)));  // -0 + 0 = +0
    const auto zo = hn::Xor(bits, hn::And(hn::ShiftRight<31>(bits), magnitude));
    const auto better =
        hn::Or(hn::Gt(zo, zw), hn::And(hn::Eq(zo, zw), hn::Not(hn::Gt(id, idw))));
    const auto keep = hn::Or(hn::Lt(b, vcut), hn::And(hn::Eq(b, vcut), better));
    // Full-vector stores at out <= i only overwrite lanes already loaded.
    hn::StoreU(hn::Compress(id, keep), di, ids + out);
    hn::StoreU(hn::Compress(zv, hn::RebindMask(d, keep)), d, z + out);
    out += hn::CountTrue(di, keep);
  }
  for (; i < n; ++i) {
    const int32_t zo = OrderedBits(z[i] + 0.0f);
    const int32_t zwo = OrderedBits(z_worst + 0.0f);
    const bool keep = bucket[i] < cut ||
                      (bucket[i] == cut && (zo > zwo || (zo == zwo && ids[i] <= id_worst)));
    ids[out] = ids[i];
    z[out] = z[i];
    out += keep;
  }
  return out;
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
HWY_EXPORT(TargetImpl);
HWY_EXPORT(DecodeArgmaxImpl);
HWY_EXPORT(BlockSumsImpl);
HWY_EXPORT(ProbBlockSumsImpl);
HWY_EXPORT(TopKCandidatesImpl);
HWY_EXPORT(DecodeTopKCandidatesImpl);
HWY_EXPORT(CollectAtLeastImpl);
HWY_EXPORT(ProbsImpl);
HWY_EXPORT(MaxCheckedImpl);
HWY_EXPORT(SumImpl);
HWY_EXPORT(LogitBucketsImpl);
HWY_EXPORT(SplitAtBucketImpl);
HWY_EXPORT(KeepAboveCutImpl);

void LogitBuckets(const float* z, size_t n, float z_max, float scale, uint16_t last,
                  uint16_t* bucket) {
  HWY_DYNAMIC_DISPATCH(LogitBucketsImpl)(z, n, z_max, scale, last, bucket);
}

size_t SplitAtBucket(const uint16_t* bucket, size_t n, uint16_t cut, uint32_t* at_cut,
                     size_t* n_at_cut) {
  return HWY_DYNAMIC_DISPATCH(SplitAtBucketImpl)(bucket, n, cut, at_cut, n_at_cut);
}

size_t KeepAboveCut(int32_t* ids, float* z, const uint16_t* bucket, size_t n, uint16_t cut,
                    float z_worst, int32_t id_worst) {
  return HWY_DYNAMIC_DISPATCH(KeepAboveCutImpl)(ids, z, bucket, n, cut, z_worst, id_worst);
}

double Sum(const float* w, size_t n) { return HWY_DYNAMIC_DISPATCH(SumImpl)(w, n); }

double SumScalar(const float* w, size_t n) {
  double lanes[kSumDoubleLanes] = {};
  for (size_t i = 0; i < n; ++i) lanes[i % kSumDoubleLanes] += w[i];
  double total = 0.0;
  for (double lane : lanes) total += lane;
  return total;
}

int64_t MaxChecked(const float* z, size_t n, float* max) {
  return HWY_DYNAMIC_DISPATCH(MaxCheckedImpl)(z, n, max);
}

int64_t MaxCheckedScalar(const float* z, size_t n, float* max) {
  float m = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) {
    if (!(z[i] < std::numeric_limits<float>::infinity())) return static_cast<int64_t>(i);
    m = z[i] > m ? z[i] : m;
  }
  *max = m;
  return -1;
}

void Probs(const float* w, size_t n, double total, float* p) {
  HWY_DYNAMIC_DISPATCH(ProbsImpl)(w, n, total, p);
}

void ProbsScalar(const float* w, size_t n, double total, float* p) {
  for (size_t i = 0; i < n; ++i) p[i] = ProbOf(w[i], total);
}

int64_t DecodeArgmaxSimd(const LogitsView& in, size_t* argmax, float* max) {
  return HWY_DYNAMIC_DISPATCH(DecodeArgmaxImpl)(in, argmax, max);
}

size_t TopKCandidates(const float* z, size_t n, size_t k, int32_t* buf, size_t cap,
                      float* bar, float floor) {
  return HWY_DYNAMIC_DISPATCH(TopKCandidatesImpl)(z, n, k, buf, cap, bar, floor);
}

int64_t DecodeTopKCandidates(const LogitsView& in, size_t k, int32_t* buf, size_t cap,
                             size_t* count, float* bar, float floor) {
  return HWY_DYNAMIC_DISPATCH(DecodeTopKCandidatesImpl)(in, k, buf, cap, count, bar, floor);
}

size_t CollectAtLeast(const float* z, const float* w, size_t n, float threshold, int32_t* ids,
                      double* mass, float* zs, float* ws) {
  return HWY_DYNAMIC_DISPATCH(CollectAtLeastImpl)(z, w, n, threshold, ids, mass, zs, ws);
}

size_t CollectAtLeastScalar(const float* z, const float* w, size_t n, float threshold,
                            int32_t* ids, double* mass, float* zs, float* ws) {
  size_t count = 0;
  double total = 0.0;
  for (size_t block = 0; block < n; block += kSumBlock) {
    const size_t end = block + kSumBlock < n ? block + kSumBlock : n;
    float partial[kSumLanes] = {};
    for (size_t i = block; i < end; ++i) {
      if (z[i] >= threshold) {
        if (zs != nullptr) {
          zs[count] = z[i];
          ws[count] = w[i];
        }
        ids[count++] = static_cast<int32_t>(i);
        partial[(i - block) % kSumLanes] += w[i];
      }
    }
    for (size_t j = 0; j < kSumLanes; ++j) total += partial[j];
  }
  *mass = total;
  return count;
}

int64_t DecodeArgmaxScalar(const LogitsView& in, size_t* argmax, float* max) {
  float m = -std::numeric_limits<float>::infinity();
  size_t best = 0;
  for (size_t i = 0; i < in.size; ++i) {
    float v;
    const unsigned char* bytes = static_cast<const unsigned char*>(in.data);
    if (in.dtype == Dtype::kFloat32) {
      std::memcpy(&v, bytes + 4 * i, sizeof(v));
    } else {
      uint16_t b;
      std::memcpy(&b, bytes + 2 * i, sizeof(b));
      v = in.dtype == Dtype::kBFloat16 ? BFloat16ToFloat(b) : Float16ToFloat(b);
    }
    if (!(v < std::numeric_limits<float>::infinity())) return static_cast<int64_t>(i);
    if (v > m) {
      m = v;
      best = i;
    }
  }
  *argmax = best;
  *max = m;
  return -1;
}

int64_t PickDenseScalar(const float* w, size_t n, double total, double u) {
  double cum_n = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float p = ProbOf(w[i], total);
    if (p > 0.0f) cum_n += p;
  }
  const double target = u * cum_n;
  double cum = 0.0;
  int64_t last = -1;
  for (size_t i = 0; i < n; ++i) {
    const float p = ProbOf(w[i], total);
    if (p > 0.0f) {
      cum += p;
      last = static_cast<int64_t>(i);
      if (cum > target) return last;
    }
  }
  return last;
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

int64_t DecodeAndMaxSimd(const LogitsView& in, float* out, float* max) {
  return HWY_DYNAMIC_DISPATCH(DecodeAndMaxImpl)(in, out, max);
}
float MaxSimd(const float* z, size_t n) { return HWY_DYNAMIC_DISPATCH(MaxImpl)(z, n); }
double ExpSumSimd(const float* z, size_t n, float max, float temperature, float* w) {
  return HWY_DYNAMIC_DISPATCH(ExpSumImpl)(z, n, max, temperature, w, nullptr);
}
double ExpSumBlocks(const float* z, size_t n, float max, float temperature, float* w,
                    double* block_sums) {
  return HWY_DYNAMIC_DISPATCH(ExpSumImpl)(z, n, max, temperature, w, block_sums);
}
double ExpSumTotal(const LogitsView& in, float max, float temperature) {
  return HWY_DYNAMIC_DISPATCH(ExpSumTotalImpl)(in, max, temperature);
}
double ExpSumTotal(const float* z, size_t n, float max, float temperature) {
  return ExpSumTotal(LogitsView{z, n, Dtype::kFloat32}, max, temperature);
}
size_t ArgmaxSimd(const float* z, size_t n) { return HWY_DYNAMIC_DISPATCH(ArgmaxImpl)(z, n); }
int64_t DispatchedTarget() { return HWY_DYNAMIC_DISPATCH(TargetImpl)(); }

}  // namespace tokensampler::sampler::kernels
#endif  // HWY_ONCE
