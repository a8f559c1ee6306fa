// The one scalar 16-bit decoder (sampler/half.h): hand-checked values and every
// pattern. Its SIMD forms are checked against it on every target in kernels_row_test.cc.
#include "sampler/half.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "gtest/gtest.h"

namespace tokensampler::sampler {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(Decode, BFloat16ExactValues) {
  EXPECT_EQ(BFloat16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(BFloat16ToFloat(0xC000), -2.0f);
  EXPECT_EQ(BFloat16ToFloat(0x3FC0), 1.5f);
  EXPECT_EQ(BFloat16ToFloat(0x0000), 0.0f);
  EXPECT_EQ(BFloat16ToFloat(0xFF80), -kInf);
  EXPECT_EQ(BFloat16ToFloat(0x7F80), kInf);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(0x7FC0)));
  EXPECT_EQ(BFloat16ToFloat(0x7F7F), 3.3895313892515355e38f);  // largest finite bf16
}

TEST(Decode, Float16ExactValues) {
  EXPECT_EQ(Float16ToFloat(0x3C00), 1.0f);
  EXPECT_EQ(Float16ToFloat(0xC000), -2.0f);
  EXPECT_EQ(Float16ToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(Float16ToFloat(0x7BFF), 65504.0f);               // largest finite
  EXPECT_EQ(Float16ToFloat(0x0400), 6.103515625e-05f);        // smallest normal
  EXPECT_EQ(Float16ToFloat(0x0001), 5.9604644775390625e-08f);  // smallest subnormal
  EXPECT_EQ(Float16ToFloat(0x83FF), -6.097555160522461e-05f);  // largest subnormal, negative
  EXPECT_EQ(Float16ToFloat(0x8000), 0.0f);
  EXPECT_TRUE(std::signbit(Float16ToFloat(0x8000)));
  EXPECT_EQ(Float16ToFloat(0xFC00), -kInf);
  EXPECT_EQ(Float16ToFloat(0x7C00), kInf);
  EXPECT_TRUE(std::isnan(Float16ToFloat(0x7E00)));
}

TEST(Decode, Float16AllFiniteValuesRoundTripThroughFloat) {
  // Every finite half is exactly representable as float: converting back with the
  // compiler's own _Float16 must give the same bits.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float f = Float16ToFloat(static_cast<uint16_t>(bits));
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t back;
    std::memcpy(&back, &h, sizeof(back));
    ASSERT_EQ(back, bits) << bits;
  }
}

}  // namespace
}  // namespace tokensampler::sampler
