#include "client/half.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct HalfCase {
  float value;
  uint16_t bits;
};

// Expected encodings worked out by hand from IEEE 754 binary16; 0.1 -> 0x2e66 and the
// 65504/65520 boundary match numpy's float16 conversion.
TEST(Float16Test, KnownValues) {
  const HalfCase cases[] = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {1.0f, 0x3c00},
      {-2.0f, 0xc000},
      {0.5f, 0x3800},
      {0.1f, 0x2e66},
      {65504.0f, 0x7bff},                          // largest finite half
      {65519.0f, 0x7bff},                          // below the halfway point to 65536
      {65520.0f, 0x7c00},                          // halfway: ties to even = inf
      {1e6f, 0x7c00},                              // overflow
      {std::ldexp(1.0f, -14), 0x0400},             // smallest normal
      {std::ldexp(1.0f, -24), 0x0001},             // smallest subnormal
      {std::ldexp(1.0f, -25), 0x0000},             // halfway to 2^-24: ties to even = 0
      {std::ldexp(1.5f, -25), 0x0001},             // above halfway
      {std::ldexp(3.0f, -25), 0x0002},             // 1.5 units: tie -> even (2)
      {std::ldexp(5.0f, -25), 0x0002},             // 2.5 units: tie -> even (2)
      {1.0f + std::ldexp(1.0f, -11), 0x3c00},      // tie between 0x3c00 and 0x3c01 -> even
      {1.0f + 3 * std::ldexp(1.0f, -11), 0x3c02},  // tie between 0x3c01 and 0x3c02 -> even
      {1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20), 0x3c01},  // just above a tie
      {2047.0f + 0.5f, 0x67ff + 1},  // 2047.5: tie at unit 1 -> even 2048
      {std::numeric_limits<float>::infinity(), 0x7c00},
      {-std::numeric_limits<float>::infinity(), 0xfc00},
  };
  for (const HalfCase& c : cases) {
    EXPECT_EQ(Float32ToFloat16(c.value), c.bits) << "value " << c.value;
  }
}

TEST(Float16Test, NanStaysNan) {
  const uint16_t h = Float32ToFloat16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(h & 0x7c00, 0x7c00);
  EXPECT_NE(h & 0x03ff, 0);
  EXPECT_TRUE(std::isnan(Float16ToFloat32(h)));
}

TEST(Float16Test, DecodeKnownValues) {
  EXPECT_EQ(Float16ToFloat32(0x3c00), 1.0f);
  EXPECT_EQ(Float16ToFloat32(0xc000), -2.0f);
  EXPECT_EQ(Float16ToFloat32(0x7bff), 65504.0f);
  EXPECT_EQ(Float16ToFloat32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(Float16ToFloat32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(Float16ToFloat32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::signbit(Float16ToFloat32(0x8000)));
}

TEST(Float16Test, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Float16ToFloat32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(Float32ToFloat16(f), h) << std::hex << h;
  }
}

TEST(Float16Test, RoundsToNearest) {
  // Against a brute-force nearest search over all finite halves for a sweep of values.
  for (float x = -70000.0f; x < 70000.0f; x += 13.37f) {
    const uint16_t got = Float32ToFloat16(x);
    const float back = Float16ToFloat32(got);
    if (std::isinf(back)) {
      EXPECT_GE(std::fabs(x), 65520.0f);
      continue;
    }
    const float next_up = Float16ToFloat32(static_cast<uint16_t>(got + 1));
    const float next_down = Float16ToFloat32(static_cast<uint16_t>(got - 1));
    EXPECT_LE(std::fabs(back - x), std::fabs(next_up - x)) << x;
    EXPECT_LE(std::fabs(back - x), std::fabs(next_down - x)) << x;
  }
}

TEST(Bfloat16Test, KnownValues) {
  EXPECT_EQ(Float32ToBfloat16(1.0f), 0x3f80);
  EXPECT_EQ(Float32ToBfloat16(-2.0f), 0xc000);
  EXPECT_EQ(Float32ToBfloat16(0.1f), 0x3dcd);                  // 0x3dcccccd rounds up
  EXPECT_EQ(Float32ToBfloat16(FromBits(0x40490fdb)), 0x4049);  // pi rounds down
  EXPECT_EQ(Float32ToBfloat16(FromBits(0x3f808000)), 0x3f80);  // tie, even stays
  EXPECT_EQ(Float32ToBfloat16(FromBits(0x3f818000)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(Float32ToBfloat16(FromBits(0x3f808001)), 0x3f81);  // just above a tie
  EXPECT_EQ(Float32ToBfloat16(FromBits(0x7f7fffff)), 0x7f80);  // FLT_MAX rounds to inf
  EXPECT_EQ(Float32ToBfloat16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(Float32ToBfloat16(FromBits(0x00000001)), 0x0000);  // tiny subnormal
}

TEST(Bfloat16Test, NanStaysNan) {
  const uint16_t b = Float32ToBfloat16(FromBits(0x7f800001));  // signalling NaN, low bit only
  EXPECT_TRUE(std::isnan(Bfloat16ToFloat32(b)));
}

TEST(Bfloat16Test, RoundTripIsExact) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = Bfloat16ToFloat32(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(Float32ToBfloat16(f), b);
  }
}

}  // namespace
}  // namespace tokensampler::client
