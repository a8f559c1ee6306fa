// float32 <-> bfloat16 / float16 conversions for logits on the wire.
#ifndef TOKENSAMPLER_CLIENT_HALF_H_
#define TOKENSAMPLER_CLIENT_HALF_H_

#include <cstdint>

namespace tokensampler::client {

// float32 -> bfloat16 bits, round to nearest, ties to even. NaN stays NaN (quiet),
// +-inf stays +-inf; finite values above the bf16 range round to +-inf.
uint16_t Float32ToBfloat16(float value);
float Bfloat16ToFloat32(uint16_t bits);

// float32 -> IEEE binary16 bits, round to nearest, ties to even, with subnormals.
// |value| >= 65520 (and inf) gives +-inf; NaN gives a quiet NaN.
uint16_t Float32ToFloat16(float value);
float Float16ToFloat32(uint16_t bits);
// The decoders are the sampler's (sampler/half.h), so client and server read 16-bit
// logits identically.

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_HALF_H_
