#include "sampler/kernels.h"

#include "sampler/kernels_hwy.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace tokensampler::sampler::kernels {

namespace {

uint16_t Load16(const void* data, size_t i) {
  uint16_t bits;
  std::memcpy(&bits, static_cast<const unsigned char*>(data) + 2 * i, sizeof(bits));
  return bits;
}

float Load32(const void* data, size_t i) {
  float v;
  std::memcpy(&v, static_cast<const unsigned char*>(data) + 4 * i, sizeof(v));
  return v;
}

// Shared body of the decode pass: `load(i)` yields element i as float.
template <typename Load>
int64_t DecodeLoop(size_t n, Load load, float* out, float* max) {
  float m = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) {
    const float v = load(i);
    // NaN fails `v < inf`; +inf fails it too: one compare catches both.
    if (!(v < std::numeric_limits<float>::infinity())) return static_cast<int64_t>(i);
    out[i] = v;
    m = v > m ? v : m;
  }
  *max = m;
  return -1;
}

}  // namespace

float BFloat16ToFloat(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

float Float16ToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  const uint32_t mantissa = bits & 0x3FFu;
  uint32_t u;
  if (exponent == 0x1F) {  // inf or NaN
    u = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal
    u = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    u = sign;
  } else {  // subnormal: mantissa * 2^-24, exact in float
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    float f = sign ? -magnitude : magnitude;
    return f;
  }
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

int64_t DecodeAndMaxScalar(const LogitsView& in, float* out, float* max) {
  switch (in.dtype) {
    case Dtype::kBFloat16:
      return DecodeLoop(in.size, [&](size_t i) { return BFloat16ToFloat(Load16(in.data, i)); },
                        out, max);
    case Dtype::kFloat16:
      return DecodeLoop(in.size, [&](size_t i) { return Float16ToFloat(Load16(in.data, i)); },
                        out, max);
    case Dtype::kFloat32:
    default:
      return DecodeLoop(in.size, [&](size_t i) { return Load32(in.data, i); }, out, max);
  }
}

int64_t DecodeAndMax(const LogitsView& in, float* out, float* max) {
  return DecodeAndMaxSimd(in, out, max);
}

float MaxScalar(const float* z, size_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) m = z[i] > m ? z[i] : m;
  return m;
}

float Max(const float* z, size_t n) { return MaxSimd(z, n); }

double ExpSumScalar(const float* z, size_t n, float max, float temperature, float* w) {
  double total = 0.0;
  for (size_t block = 0; block < n; block += kSumBlock) {
    const size_t end = block + kSumBlock < n ? block + kSumBlock : n;
    float partial[kSumLanes] = {};
    for (size_t i = block; i < end; ++i) {
      // Division, not multiplication by 1/T: exact 0 for z == max at any T > 0.
      const float e = ExpNonPositive((z[i] - max) / temperature);
      w[i] = e;
      partial[(i - block) % kSumLanes] += e;
    }
    for (size_t j = 0; j < kSumLanes; ++j) total += partial[j];
  }
  return total;
}

double ExpSum(const float* z, size_t n, float max, float temperature, float* w) {
  return ExpSumSimd(z, n, max, temperature, w);
}

size_t ArgmaxScalar(const float* z, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (z[i] > z[best]) best = i;
  }
  return best;
}

size_t Argmax(const float* z, size_t n) { return ArgmaxSimd(z, n); }

}  // namespace tokensampler::sampler::kernels
