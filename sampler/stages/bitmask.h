// Token bitmasks (structured output): the layout xgrammar and vLLM use, ceil(V / 32)
// little-endian uint32 words, bit j % 32 of word j / 32 set = token j allowed. The same
// layout carries a result's kept set back.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_BITMASK_H_
#define TOKENSAMPLER_SAMPLER_STAGES_BITMASK_H_

#include <cstddef>
#include <cstdint>

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

// Word `w` of a bitmask (tokens 32w .. 32w + 31 in bits 0 .. 31), whatever the host's
// byte order.
inline uint32_t BitmaskWord(const uint8_t* bitmask, size_t w) {
  const uint8_t* b = bitmask + 4 * w;
  return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
         static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
}

// The kernels take a bitmask where they read the row (sampler/kernels.h: MaxChecked,
// DecodeAndMax, ExpSum, the top-k scans, DecodeArgmax): a masked token reads as -inf,
// selected per vector from the mask's bits, no per-token branch.

}  // namespace tokensampler::sampler::stages

#endif  // TOKENSAMPLER_SAMPLER_STAGES_BITMASK_H_
