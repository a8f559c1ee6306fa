// The SIMD body of ApplyBitmask, compiled once per target (foreach_target) and picked at
// run time (HWY_DYNAMIC_DISPATCH), like sampler/kernels_hwy.cc.
#include "sampler/stages/bitmask.h"

#include <cstddef>
#include <cstdint>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "sampler/stages/bitmask.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#ifndef TOKENSAMPLER_SAMPLER_STAGES_BITMASK_ONCE_
#define TOKENSAMPLER_SAMPLER_STAGES_BITMASK_ONCE_
namespace tokensampler::sampler::stages {
// Word `w` of a little-endian bitmask, whatever the host's byte order.
inline uint32_t BitmaskWord(const uint8_t* bitmask, size_t w) {
  const uint8_t* b = bitmask + 4 * w;
  return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
         static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
}
// Lane j's bit, for the lanes of one vector.
alignas(64) inline constexpr uint32_t kLaneBits[32] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};
}  // namespace tokensampler::sampler::stages
#endif  // TOKENSAMPLER_SAMPLER_STAGES_BITMASK_ONCE_

HWY_BEFORE_NAMESPACE();
namespace tokensampler::sampler::stages {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

float ApplyBitmaskImpl(const uint8_t* bitmask, const float* in, size_t n, float* out) {
  const hn::ScalableTag<float> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  const size_t N = hn::Lanes(d);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  float max = -kInf;
  size_t i = 0;
  if (N <= 32) {  // a vector's lanes then share one word (N is a power of two)
    const auto lane_bits = hn::LoadU(du, kLaneBits);
    const auto neg_inf = hn::Set(d, -kInf);
    auto m = neg_inf;
    for (; i + N <= n; i += N) {
      const uint32_t bits = BitmaskWord(bitmask, i >> 5) >> (i & 31);
      const auto allowed = hn::RebindMask(d, hn::TestBit(hn::Set(du, bits), lane_bits));
      const auto v = hn::IfThenElse(allowed, hn::LoadU(d, in + i), neg_inf);
      hn::StoreU(v, d, out + i);
      m = hn::Max(m, v);
    }
    max = hn::GetLane(hn::MaxOfLanes(d, m));
  }
  for (; i < n; ++i) {
    const float v = (BitmaskWord(bitmask, i >> 5) >> (i & 31)) & 1u ? in[i] : -kInf;
    out[i] = v;
    max = v > max ? v : max;
  }
  return max;
}

}  // namespace HWY_NAMESPACE
}  // namespace tokensampler::sampler::stages
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tokensampler::sampler::stages {

HWY_EXPORT(ApplyBitmaskImpl);

float ApplyBitmask(const uint8_t* bitmask, const float* in, size_t n, float* out) {
  return HWY_DYNAMIC_DISPATCH(ApplyBitmaskImpl)(bitmask, in, n, out);
}

float ApplyBitmaskScalar(const uint8_t* bitmask, const float* in, size_t n, float* out) {
  float max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) {
    out[i] = BitmaskAllows(bitmask, i) ? in[i] : -std::numeric_limits<float>::infinity();
    max = out[i] > max ? out[i] : max;
  }
  return max;
}

}  // namespace tokensampler::sampler::stages
#endif  // HWY_ONCE
