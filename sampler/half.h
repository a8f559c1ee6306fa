// The one scalar decoder of 16-bit logits (bfloat16, IEEE binary16) to float, used by
// the kernels' scalar paths and references and by the client. Exact: every 16-bit value,
// subnormals, signed zeros, infinities and NaN payloads included, becomes the float of
// the same value (bits checked against the SIMD decoders on every pattern in
// tests/sampler/kernels_row_test.cc).
#ifndef TOKENSAMPLER_SAMPLER_HALF_H_
#define TOKENSAMPLER_SAMPLER_HALF_H_

#include <cstdint>
#include <cstring>

namespace tokensampler::sampler {

// The float whose bits are `bits`.
inline float FloatFromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// bfloat16 is the top half of a float32.
inline float BFloat16ToFloat(uint16_t bits) {
  return FloatFromBits(static_cast<uint32_t>(bits) << 16);
}

// A half's exponent and mantissa, shifted into a float's and read as a float, are the
// value times 2^-112 (subnormal halves become float subnormals): multiplying by 2^112 is
// exact. Exponent 31 (inf, NaN) maps to float exponent 255 instead, payload kept. The
// SIMD decoder (DecodeFp16 in sampler/kernels/simd-inl.h) is this, lane by lane.
inline constexpr float kTwoPow112 = 5.192296858534828e33f;
inline float Float16ToFloat(uint16_t bits) {
  const uint32_t magnitude = static_cast<uint32_t>(bits & 0x7FFFu) << 13;
  const float v = (bits & 0x7C00u) == 0x7C00u ? FloatFromBits(magnitude | 0x7F800000u)
                                               : FloatFromBits(magnitude) * kTwoPow112;
  return (bits & 0x8000u) != 0 ? -v : v;
}

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_HALF_H_
