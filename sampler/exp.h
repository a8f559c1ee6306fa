// The exp and the probability every kernel, scalar or SIMD, and every stage uses.
//
// Both are built only from operations IEEE 754 rounds exactly (add, sub, mul, div, max,
// compare, integer ops) in a fixed order, never from fused multiply-add or a library
// exp, so their vector forms (sampler/kernels/simd-inl.h) give the same bits on every
// target. That needs the compiler not to contract a * b + c into one fused operation:
// the sampler library and its users compile with -ffp-contract=off (sampler/CMakeLists.txt;
// tests/sampler/fp_contract_test.cc catches its loss).
#ifndef TOKENSAMPLER_SAMPLER_EXP_H_
#define TOKENSAMPLER_SAMPLER_EXP_H_

#include <cstdint>
#include <cstring>

#include "sampler/half.h"

namespace tokensampler::sampler::kernels {

// Constants of ExpNonPositive. The polynomial is Cephes' expf (S. L. Moshier, Cephes
// Math Library, expf.c): exp(r) ~ 1 + r + r^2 P(r) on |r| <= ln2/2, about 1 ulp.
namespace exp_constants {
inline constexpr float kMinArg = -104.0f;      // below this exp(x) rounds to 0 in float
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23: x + magic rounds x
inline constexpr int32_t kRoundMagicBits = 0x4B400000;
inline constexpr float kLn2Hi = 0.693359375f;  // 9 significant bits: n * kLn2Hi is exact
inline constexpr float kLn2Lo = -2.12194440e-4f;
inline constexpr float kP5 = 1.9875691500e-4f;
inline constexpr float kP4 = 1.3981999507e-3f;
inline constexpr float kP3 = 8.3334519073e-3f;
inline constexpr float kP2 = 4.1665795894e-2f;
inline constexpr float kP1 = 1.6666665459e-1f;
inline constexpr float kP0 = 5.0000001201e-1f;
}  // namespace exp_constants

// exp(x) for x <= 0 (and -inf), to about 1 ulp, subnormal results included; exactly
// 1 for x == 0 and exactly 0 for x < -104 or -inf. Steps: n = round(x log2 e) by the
// add-magic trick, r = x - n ln2 in two exact-ish parts, exp(r) by the polynomial, then
// 2^n applied as two power-of-two factors 2^(n>>1) and 2^(n - (n>>1)) so that results
// below 2^-126 round once into the subnormals.
inline float ExpNonPositive(float x) {
  namespace c = exp_constants;
  const float xc = x > c::kMinArg ? x : c::kMinArg;
  float t = xc * c::kLog2e;
  t = t + c::kRoundMagic;
  const float nf = t - c::kRoundMagic;
  int32_t t_bits;
  std::memcpy(&t_bits, &t, sizeof(t_bits));
  const int32_t n = t_bits - c::kRoundMagicBits;
  float r = xc - nf * c::kLn2Hi;
  r = r - nf * c::kLn2Lo;
  float p = c::kP5;
  p = p * r + c::kP4;
  p = p * r + c::kP3;
  p = p * r + c::kP2;
  p = p * r + c::kP1;
  p = p * r + c::kP0;
  float y = p * (r * r);
  y = y + r;
  y = y + 1.0f;
  const int32_t n1 = n >> 1;
  const int32_t n2 = n - n1;
  y = y * FloatFromBits(static_cast<uint32_t>(n1 + 127) << 23);
  y = y * FloatFromBits(static_cast<uint32_t>(n2 + 127) << 23);
  return x < c::kMinArg ? 0.0f : y;
}

// The final probability of a token with weight w when the kept weights sum to total:
// p = min(1, w * s) in float, s = float(1 / total) (computed in double, rounded once),
// the multiply by the reciprocal a SIMD softmax does. It is within 2^-23 relative of
// w / total and never above 1. A total below kMinScaledTotal (only a set of tiny
// survivors could have one, and s would leave float's range) divides instead:
// p = float(double(w) / total). Every kernel and the scalar code use this function or
// its vector form, so the bits are the same everywhere.
inline constexpr double kMinScaledTotal = 0x1p-64;
inline float ProbOf(float w, double total) {
  if (total < kMinScaledTotal) return static_cast<float>(static_cast<double>(w) / total);
  const float p = w * static_cast<float>(1.0 / total);
  return p < 1.0f ? p : 1.0f;
}

}  // namespace tokensampler::sampler::kernels

#endif  // TOKENSAMPLER_SAMPLER_EXP_H_
