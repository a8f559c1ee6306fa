#include "client/half.h"

#include <cstring>

#include "sampler/half.h"

namespace tokensampler::client {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// Shifts `m` right by `shift` (>= 1) rounding to nearest, ties to even.
uint32_t ShiftRoundEven(uint32_t m, int shift) {
  const uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return (rem > half || (rem == half && (q & 1))) ? q + 1 : q;
}

}  // namespace

uint16_t Float32ToBfloat16(float value) {
  const uint32_t u = Bits(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((u >> 16) | 0x0040u);  // keep sign, force quiet NaN
  }
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry out of the
  // mantissa bumps the exponent, and the largest finite values round to inf as they should.
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float Bfloat16ToFloat32(uint16_t bits) { return sampler::BFloat16ToFloat(bits); }

uint16_t Float32ToFloat16(float value) {
  const uint32_t u = Bits(value);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;  // NaN
  // 65520 = halfway between 65504 (largest half) and 65536; ties to even go up to inf.
  if (a >= 0x477ff000u) return sign | 0x7c00u;
  if (a < 0x38800000u) {                        // below 2^-14: a half subnormal (or zero)
    if (a <= 0x33000000u) return sign;          // <= 2^-25 rounds to zero (2^-25 ties to even 0)
    const int exp = static_cast<int>(a >> 23);  // 102 .. 112
    const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    // value = mant * 2^(exp - 150); in units of 2^-24 that is mant >> (126 - exp).
    // A result of 0x400 is the smallest normal, which is the right encoding.
    return sign | static_cast<uint16_t>(ShiftRoundEven(mant, 126 - exp));
  }
  // Normal: rebias the exponent (127 -> 15) and round away 13 mantissa bits. A carry
  // from the mantissa into the exponent is the correct rounding.
  return sign | static_cast<uint16_t>(ShiftRoundEven(a - (112u << 23), 13));
}

float Float16ToFloat32(uint16_t bits) { return sampler::Float16ToFloat(bits); }

}  // namespace tokensampler::client
