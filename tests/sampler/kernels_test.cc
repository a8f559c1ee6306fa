// The kernels against their scalar references and hand-checked values, on awkward sizes.
#include "sampler/kernels.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const size_t kSizes[] = {1, 2, 7, 8, 9, 31, 33, 1000, 1024, 1025, 32000, 128256};

uint16_t BitsOfBFloat16(float f) {  // truncation: exact for values with 8 mantissa bits
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return static_cast<uint16_t>(u >> 16);
}

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

TEST(Decode, MatchesScalarOnEveryDtypeAndSize) {
  for (size_t n : kSizes) {
    std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(n), 5.0f);
    row[n / 2] = -kInf;
    std::vector<uint16_t> bf16(n), fp16(n);
    for (size_t i = 0; i < n; ++i) {
      bf16[i] = BitsOfBFloat16(row[i]);
      const _Float16 h = static_cast<_Float16>(row[i]);
      std::memcpy(&fp16[i], &h, sizeof(uint16_t));
    }
    const LogitsView views[] = {{row.data(), n, Dtype::kFloat32},
                                {bf16.data(), n, Dtype::kBFloat16},
                                {fp16.data(), n, Dtype::kFloat16}};
    for (const LogitsView& view : views) {
      std::vector<float> fast(n), slow(n);
      float fast_max = 0, slow_max = 0;
      ASSERT_EQ(DecodeAndMax(view, fast.data(), &fast_max), -1);
      ASSERT_EQ(DecodeAndMaxScalar(view, slow.data(), &slow_max), -1);
      EXPECT_EQ(fast, slow);
      EXPECT_EQ(fast_max, slow_max);
      float expected_max = -kInf;
      for (size_t i = 0; i < n; ++i) {
        const float expected = view.dtype == Dtype::kFloat32    ? row[i]
                               : view.dtype == Dtype::kBFloat16 ? BFloat16ToFloat(bf16[i])
                                                                : Float16ToFloat(fp16[i]);
        ASSERT_EQ(fast[i], expected);
        expected_max = std::max(expected_max, expected);
      }
      EXPECT_EQ(fast_max, expected_max);
    }
  }
}

TEST(Decode, ReportsFirstNanOrPositiveInfinity) {
  std::vector<float> row(100, 1.0f);
  row[40] = kInf;
  row[17] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> out(row.size());
  float max = 0;
  EXPECT_EQ(DecodeAndMax(LogitsView::Float32(row), out.data(), &max), 17);
  row[17] = 0.0f;
  EXPECT_EQ(DecodeAndMax(LogitsView::Float32(row), out.data(), &max), 40);
  const uint16_t half[] = {0x3C00, 0x7C00};  // 1, +inf
  EXPECT_EQ(DecodeAndMax({half, 2, Dtype::kFloat16}, out.data(), &max), 1);
  const uint16_t bf[] = {0x7FC1, 0x3F80};  // NaN, 1
  EXPECT_EQ(DecodeAndMax({bf, 2, Dtype::kBFloat16}, out.data(), &max), 0);
}

TEST(Decode, AllNegativeInfinityGivesMinusInfinityMax) {
  const std::vector<float> row(9, -kInf);
  std::vector<float> out(row.size());
  float max = 0;
  EXPECT_EQ(DecodeAndMax(LogitsView::Float32(row), out.data(), &max), -1);
  EXPECT_EQ(max, -kInf);
}

TEST(ExpSum, MatchesScalarAndDoubleSum) {
  for (size_t n : kSizes) {
    std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(n) + 1);
    if (n > 1) row[0] = -kInf;
    const float max = MaxScalar(row.data(), n);
    for (float t : {1.0f, 0.5f, 3.0f}) {
      std::vector<float> fast(n), slow(n);
      const double fast_sum = ExpSum(row.data(), n, max, t, fast.data());
      const double slow_sum = ExpSumScalar(row.data(), n, max, t, slow.data());
      EXPECT_EQ(fast, slow);
      EXPECT_EQ(fast_sum, slow_sum);  // bit-identical: fixed reduction order
      double exact = 0.0;
      for (size_t i = 0; i < n; ++i) {
        const double arg = (static_cast<double>(row[i]) - max) / t;
        const double e = std::exp(arg);
        exact += e;
        // The argument is rounded to float: relative error grows with |arg|.
        if (e == 0.0) {
          ASSERT_EQ(fast[i], 0.0f) << i;
        } else {
          ASSERT_NEAR(fast[i], e, e * (1e-6 + 1.2e-7 * std::fabs(arg)) + 1e-38) << i;
        }
      }
      if (n > 1) {
        EXPECT_EQ(fast[0], 0.0f);  // -inf is exactly 0
      }
      EXPECT_NEAR(fast_sum, exact, 1e-6 * exact);
    }
  }
}

TEST(ExpSum, ExtremeLogitsDoNotOverflow) {
  const std::vector<float> row = {1e30f, -1e30f, 1e4f, -1e4f, 3e38f, -3e38f, -kInf};
  std::vector<float> w(row.size());
  const float max = MaxScalar(row.data(), row.size());
  const double sum = ExpSum(row.data(), row.size(), max, 1.0f, w.data());
  EXPECT_EQ(sum, 1.0);
  EXPECT_EQ(w[4], 1.0f);
  for (size_t i = 0; i < row.size(); ++i) {
    if (i != 4) {
      EXPECT_EQ(w[i], 0.0f) << i;
    }
  }
}

TEST(ExpSum, TinyTemperatureStaysFinite) {
  const std::vector<float> row = {1.0f, 1.0f, 0.5f};
  std::vector<float> w(row.size());
  const double sum = ExpSum(row.data(), row.size(), 1.0f, 1e-40f, w.data());
  EXPECT_EQ(sum, 2.0);  // the tied maxima keep weight 1, the rest underflows to 0
  EXPECT_EQ(w, (std::vector<float>{1.0f, 1.0f, 0.0f}));
}

TEST(Argmax, LowestIdWinsTies) {
  EXPECT_EQ(Argmax(std::vector<float>{1, 3, 3, 2}.data(), 4), 1u);
  EXPECT_EQ(Argmax(std::vector<float>{5}.data(), 1), 0u);
  EXPECT_EQ(Argmax(std::vector<float>{-kInf, -kInf, -1}.data(), 3), 2u);
  for (size_t n : kSizes) {
    std::vector<float> row = testing::TiedRow(n, static_cast<uint32_t>(n));
    EXPECT_EQ(Argmax(row.data(), n), ArgmaxScalar(row.data(), n));
    size_t expected = 0;
    for (size_t i = 0; i < n; ++i) {
      if (row[i] > row[expected]) expected = i;
    }
    EXPECT_EQ(Argmax(row.data(), n), expected);
  }
}

TEST(Max, MatchesScalar) {
  for (size_t n : kSizes) {
    std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(n) + 2);
    EXPECT_EQ(Max(row.data(), n), MaxScalar(row.data(), n));
  }
}

}  // namespace
}  // namespace tokensampler::sampler::kernels
