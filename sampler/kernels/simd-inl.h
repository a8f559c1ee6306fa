// Shared Highway building blocks of the SIMD kernels (sampler/kernels/*.cc), included
// once per target by each kernel file (Highway's -inl.h pattern: the guard toggles with
// HWY_TARGET_TOGGLE). Every function here is the vector form of a scalar definition and
// gives its bits: ExpVec of ExpNonPositive (sampler/exp.h), DecodeBf16 / DecodeFp16 of
// BFloat16ToFloat / Float16ToFloat (sampler/half.h).
#if defined(TOKENSAMPLER_SAMPLER_KERNELS_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TOKENSAMPLER_SAMPLER_KERNELS_SIMD_INL_H_
#undef TOKENSAMPLER_SAMPLER_KERNELS_SIMD_INL_H_
#else
#define TOKENSAMPLER_SAMPLER_KERNELS_SIMD_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "hwy/highway.h"
#include "sampler/exp.h"
#include "sampler/half.h"
#include "sampler/params.h"
#include "sampler/stages/bitmask.h"

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

// The vector form of ExpNonPositive (sampler/exp.h), operation for operation.
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

// Lane j's bit in a mask word, for AllowedLanes on targets of fewer than 8 lanes.
alignas(64) inline constexpr uint32_t kLaneBits[32] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

// Lanes [i, i + N) of a token bitmask (sampler/stages/bitmask.h) as a mask: lane j is
// true when token i + j is allowed. With 8 lanes or more, the (N + 7) / 8 bytes from
// byte i / 8 are those lanes' bits exactly (AVX-512: one mask-register load); with
// fewer, the lanes test their bits of the 32-bit word. No per-token branch either way.
// REQUIRES: i a multiple of N, N divides 32 (every x86 target), tokens [i, i + N) in
// the bitmask's range.
HWY_INLINE hn::Mask<DF> AllowedLanes(DF d, const uint8_t* bitmask, size_t i) {
  static_assert(32 % hn::MaxLanes(DF()) == 0, "a vector's lanes share one mask word");
  if constexpr (hn::MaxLanes(DF()) >= 8) {
    return hn::LoadMaskBits(d, bitmask + i / 8);
  } else {
    const DU du;
    const uint32_t bits = stages::BitmaskWord(bitmask, i >> 5) >> (i & 31);
    return hn::RebindMask(d, hn::TestBit(hn::Set(du, bits), hn::LoadU(du, kLaneBits)));
  }
}

// v with the lanes the bitmask masks set to -inf.
HWY_INLINE VF MaskLanes(DF d, const uint8_t* bitmask, size_t i, VF v) {
  return hn::IfThenElse(AllowedLanes(d, bitmask, i), v,
                        hn::Set(d, -std::numeric_limits<float>::infinity()));
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

}  // namespace HWY_NAMESPACE
}  // namespace tokensampler::sampler::kernels
HWY_AFTER_NAMESPACE();

#endif  // TOKENSAMPLER_SAMPLER_KERNELS_SIMD_INL_H_
