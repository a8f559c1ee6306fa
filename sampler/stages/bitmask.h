// Token bitmasks (structured output): the layout xgrammar and vLLM use, ceil(V / 32)
// little-endian uint32 words, bit j % 32 of word j / 32 set = token j allowed. The same
// layout carries a result's kept set back.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_BITMASK_H_
#define TOKENSAMPLER_SAMPLER_STAGES_BITMASK_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace tokensampler::sampler::stages {

// Bytes of a bitmask over `vocab` tokens: 4 * ceil(vocab / 32).
inline size_t BitmaskBytes(size_t vocab) { return 4 * ((vocab + 31) / 32); }

// Bit `id` of a bitmask (byte id / 8, bit id % 8: the little-endian word layout).
inline bool BitmaskAllows(const uint8_t* bitmask, size_t id) {
  return (bitmask[id >> 3] >> (id & 7)) & 1;
}
inline void BitmaskSet(uint8_t* bitmask, size_t id) {
  bitmask[id >> 3] = static_cast<uint8_t>(bitmask[id >> 3] | (1u << (id & 7)));
}

// out[i] = in[i] where bit i of `bitmask` is set, else -inf, for i in [0, n); returns the
// maximum of out (-inf when every token is masked). One SIMD pass with no per-token
// branch: each vector of lanes reads its bits from one mask word (the lane counts, 1 to
// 16, divide 32). `in` may equal `out`; no alignment needed. REQUIRES: `bitmask` holds
// BitmaskBytes(n) bytes (bits past n are ignored).
float ApplyBitmask(const uint8_t* bitmask, const float* in, size_t n, float* out);

// The scalar reference of ApplyBitmask, element by element; the same results.
float ApplyBitmaskScalar(const uint8_t* bitmask, const float* in, size_t n, float* out);

}  // namespace tokensampler::sampler::stages

#endif  // TOKENSAMPLER_SAMPLER_STAGES_BITMASK_H_
