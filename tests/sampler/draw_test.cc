// Known answers of the draw (README "The draw", the public contract).
#include "sampler/draw.h"

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace tokensampler::sampler {
namespace {

TEST(Philox, KnownAnswers) {
  using Words = std::array<uint32_t, 4>;
  EXPECT_EQ(Philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (Words{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                          {0xffffffff, 0xffffffff}),
            (Words{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                          {0xa4093822, 0x299f31d0}),
            (Words{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(DrawUniform, KnownAnswers) {
  // Exact equality: the uniform is a 53-bit integer times 2^-53, exact in a double.
  EXPECT_EQ(DrawUniform(0, 0, 0), 0.39904647231489565);
  EXPECT_EQ(DrawUniform(42, 0, 0), 0.6129598801477738);
  EXPECT_EQ(DrawUniform(42, 1, 0), 0.9877186516453577);
  EXPECT_EQ(DrawUniform(42, 0, 1), 0.010058843540026619);
  EXPECT_EQ(DrawUniform(std::numeric_limits<uint64_t>::max(), (uint64_t{1} << 40) + 3, 7),
            0.3960849721535957);
}

TEST(DrawUniform, InUnitIntervalAndUsesEveryInput) {
  for (uint64_t step = 0; step < 1000; ++step) {
    const double u = DrawUniform(7, step, 0);
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
  EXPECT_NE(DrawUniform(1, 0, 0), DrawUniform(uint64_t{1} << 32 | 1, 0, 0));  // seed high word
  EXPECT_NE(DrawUniform(1, 0, 0), DrawUniform(1, uint64_t{1} << 32, 0));      // step high word
}

TEST(PickInverseCdf, WalksTokenIdOrder) {
  const std::vector<float> p = {0.25f, 0.0f, 0.5f, 0.25f};
  // cum = 0.25, 0.25 (p = 0 skipped), 0.75, 1.0; first cum > u.
  EXPECT_EQ(PickInverseCdf(p, 0.0), 0);
  EXPECT_EQ(PickInverseCdf(p, 0.2499), 0);
  EXPECT_EQ(PickInverseCdf(p, 0.25), 2);  // strict >: 0.25 is not > 0.25
  EXPECT_EQ(PickInverseCdf(p, 0.7499), 2);
  EXPECT_EQ(PickInverseCdf(p, 0.75), 3);
  EXPECT_EQ(PickInverseCdf(p, 0.9999999999), 3);
}

TEST(PickInverseCdf, ZeroIsNeverPickedAndSingleTokenAlways) {
  const std::vector<float> p = {0.0f, 0.0f, 0.3f, 0.0f};
  for (double u : {0.0, 0.1, 0.5, 0.999999}) EXPECT_EQ(PickInverseCdf(p, u), 2);
  const std::vector<float> none = {0.0f, 0.0f};
  EXPECT_EQ(PickInverseCdf(none, 0.5), -1);
}

TEST(PickInverseCdf, UnnormalisedInputScalesTarget) {
  // u * cum_n: the walk does not need probabilities that sum to exactly 1.
  const std::vector<float> p = {2.0f, 2.0f};
  EXPECT_EQ(PickInverseCdf(p, 0.49), 0);
  EXPECT_EQ(PickInverseCdf(p, 0.5), 1);
}

}  // namespace
}  // namespace tokensampler::sampler
