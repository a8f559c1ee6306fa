// The row kernels (decode, max, exp-sum, argmax) on every compiled SIMD target, bit for
// bit against their scalar references (sampler/kernels/row.cc, scalar.cc).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "sampler/kernels.h"
#include "sampler/sampler.h"
#include "tests/sampler/reference.h"
#include "tests/sampler/simd_targets.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler::kernels {
namespace {


class RowKernelTest : public SimdTargetTest {};

TEST(SimdTargets, BestTargetIsCompiledAndListsAtLeastTwo) {
  const std::vector<int64_t> targets = Targets();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(DispatchedTarget(), targets.front()) << hwy::TargetName(DispatchedTarget());
#if HWY_ARCH_X86
  // The baseline (EMU128) and at least one real SIMD target are always compiled on x86.
  EXPECT_GE(targets.size(), 2u);
#endif
}

TEST_P(RowKernelTest, DispatchesToTheForcedTarget) {
  EXPECT_EQ(DispatchedTarget(), GetParam()) << hwy::TargetName(DispatchedTarget());
}

TEST_P(RowKernelTest, ExpMatchesStdExpAndIsBitIdenticalToScalar) {
  // Arguments from 0 down past the underflow point, with all the special ones.
  std::vector<float> x;
  for (float v = 0.0f; v > -110.0f; v -= 0.0137f) x.push_back(v);
  for (float v : {-0.0f, -1e-30f, -1e-7f, -87.33f, -87.34f, -103.9f, -103.98f, -104.0f,
                  -104.1f, -1e4f, -3e38f, -kInf}) {
    x.push_back(v);
  }
  const size_t n = x.size();
  std::vector<float> zeros(n, 0.0f);
  // ExpSum with max 0 and T 1 computes exactly ExpNonPositive(z) per element.
  std::vector<float> w(n);
  ExpSum(x.data(), n, 0.0f, 1.0f, w.data());
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(BitsOf(w[i]), BitsOf(ExpNonPositive(x[i]))) << x[i];
    const double exact = std::exp(static_cast<double>(x[i]));
    if (exact >= std::numeric_limits<float>::min()) {
      // At most 2 ulp from the exactly rounded value in the normal range.
      ASSERT_NEAR(w[i], exact, 2.0 * std::ldexp(1.0, std::ilogb(exact) - 23)) << x[i];
    } else {
      // Subnormal results: within one subnormal step (2^-149) plus rounding.
      ASSERT_NEAR(w[i], exact, std::ldexp(1.0, -148)) << x[i];
    }
  }
  EXPECT_EQ(ExpNonPositive(0.0f), 1.0f);
  EXPECT_EQ(ExpNonPositive(-kInf), 0.0f);
  EXPECT_EQ(ExpNonPositive(-104.5f), 0.0f);
  EXPECT_GT(ExpNonPositive(-103.0f), 0.0f);  // a subnormal, not flushed
}

TEST_P(RowKernelTest, ExpSumTakesItsShortPathOnlyWhereBitsAgree) {
  // Every float in [-87.5, -85]: the kernels take a shorter exp for vectors whose lanes
  // are all >= -86 and the full one otherwise; around that bound both must give the
  // scalar bits, in vectors that are all on one side and in mixed ones.
  std::vector<float> x;
  for (float v = -87.5f; v <= -85.0f; v = std::nextafter(v, 0.0f)) x.push_back(v);
  std::vector<float> mixed = x;
  std::mt19937 gen(11);
  std::shuffle(mixed.begin(), mixed.end(), gen);
  for (const auto& row : {x, mixed}) {
    std::vector<float> w(row.size());
    ExpSum(row.data(), row.size(), 0.0f, 1.0f, w.data());
    for (size_t i = 0; i < row.size(); ++i) {
      ASSERT_EQ(BitsOf(w[i]), BitsOf(ExpNonPositive(row[i]))) << row[i];
    }
  }
}

TEST_P(RowKernelTest, DecodeAndMaxMatchesScalarOnEveryDtype) {
  for (size_t n : kSizes) {
    std::vector<float> row = AwkwardRow(n, static_cast<uint32_t>(n) + 7);
    std::vector<uint16_t> bf16(n), fp16(n);
    for (size_t i = 0; i < n; ++i) {
      bf16[i] = static_cast<uint16_t>(BitsOf(row[i]) >> 16);
      const _Float16 h = static_cast<_Float16>(row[i]);
      std::memcpy(&fp16[i], &h, sizeof(uint16_t));
    }
    // Unaligned views too: one byte past an aligned buffer.
    std::vector<unsigned char> shifted(4 * n + 1);
    std::memcpy(shifted.data() + 1, row.data(), 4 * n);
    const LogitsView views[] = {{row.data(), n, Dtype::kFloat32},
                                {bf16.data(), n, Dtype::kBFloat16},
                                {fp16.data(), n, Dtype::kFloat16},
                                {shifted.data() + 1, n, Dtype::kFloat32}};
    for (const LogitsView& view : views) {
      std::vector<float> fast(n), slow(n);
      float fast_max = 0, slow_max = 0;
      ASSERT_EQ(DecodeAndMax(view, fast.data(), &fast_max), -1);
      ASSERT_EQ(DecodeAndMaxScalar(view, slow.data(), &slow_max), -1);
      ASSERT_EQ(std::memcmp(fast.data(), slow.data(), 4 * n), 0)
          << n << " dtype " << static_cast<int>(view.dtype);
      ASSERT_EQ(BitsOf(fast_max), BitsOf(slow_max));
    }
  }
}

TEST_P(RowKernelTest, DecodesEverySixteenBitPattern) {
  // All 65536 bit patterns of fp16 and bf16, minus the NaN/+inf ones (reported, not
  // decoded), in one row: exactly the scalar conversion of each.
  for (Dtype dtype : {Dtype::kFloat16, Dtype::kBFloat16}) {
    std::vector<uint16_t> bits;
    for (uint32_t b = 0; b < 0x10000; ++b) {
      const float f = dtype == Dtype::kFloat16 ? Float16ToFloat(static_cast<uint16_t>(b))
                                               : BFloat16ToFloat(static_cast<uint16_t>(b));
      if (std::isnan(f) || f == kInf) continue;
      bits.push_back(static_cast<uint16_t>(b));
    }
    std::vector<float> out(bits.size());
    float max = 0;
    ASSERT_EQ(DecodeAndMax({bits.data(), bits.size(), dtype}, out.data(), &max), -1);
    for (size_t i = 0; i < bits.size(); ++i) {
      const float expected =
          dtype == Dtype::kFloat16 ? Float16ToFloat(bits[i]) : BFloat16ToFloat(bits[i]);
      ASSERT_EQ(BitsOf(out[i]), BitsOf(expected)) << std::hex << bits[i];
    }
    EXPECT_EQ(max, dtype == Dtype::kFloat16 ? 65504.0f : 3.3895313892515355e38f);
  }
}

TEST_P(RowKernelTest, DecodeReportsTheFirstBadElementAtEveryPosition) {
  const uint16_t bad16[] = {0x7C00, 0x7E01, 0xFE00};  // fp16 +inf, NaN, -NaN
  const uint16_t bad_bf[] = {0x7F80, 0x7FC0, 0xFF81};  // bf16 +inf, NaN, -NaN
  for (size_t n : {1, 5, 16, 33, 100}) {
    for (size_t pos = 0; pos < n; pos += (n > 20 ? 7 : 1)) {
      std::vector<float> row(n, 0.5f);
      row[pos] = std::numeric_limits<float>::quiet_NaN();
      if (pos + 3 < n) row[pos + 3] = kInf;
      std::vector<float> out(n);
      float max = 0;
      ASSERT_EQ(DecodeAndMax(LogitsView::Float32(row), out.data(), &max),
                static_cast<int64_t>(pos));
      for (int k = 0; k < 3; ++k) {
        std::vector<uint16_t> h(n, 0x3C00), b(n, 0x3F80);
        h[pos] = bad16[k];
        b[pos] = bad_bf[k];
        ASSERT_EQ(DecodeAndMax({h.data(), n, Dtype::kFloat16}, out.data(), &max),
                  static_cast<int64_t>(pos));
        ASSERT_EQ(DecodeAndMax({b.data(), n, Dtype::kBFloat16}, out.data(), &max),
                  static_cast<int64_t>(pos));
      }
    }
  }
}

TEST_P(RowKernelTest, MaxAndArgmaxMatchScalar) {
  for (size_t n : kSizes) {
    for (uint32_t seed : {1u, 2u}) {
      std::vector<float> row = seed == 1 ? AwkwardRow(n, static_cast<uint32_t>(n))
                                         : testing::TiedRow(n, static_cast<uint32_t>(n));
      ASSERT_EQ(BitsOf(Max(row.data(), n)), BitsOf(MaxScalar(row.data(), n))) << n;
      ASSERT_EQ(Argmax(row.data(), n), ArgmaxScalar(row.data(), n)) << n;
    }
    // The maximum at the very end, and tied in several lanes: lowest index wins.
    std::vector<float> row(n, -1.0f);
    row[n - 1] = 2.0f;
    ASSERT_EQ(Argmax(row.data(), n), n - 1);
    for (size_t i = n / 3; i < n; i += 5) row[i] = 2.0f;
    ASSERT_EQ(Argmax(row.data(), n), n / 3 < n - 1 ? n / 3 : n - 1);
    const std::vector<float> masked(n, -kInf);
    ASSERT_EQ(Argmax(masked.data(), n), 0u);
    ASSERT_EQ(Max(masked.data(), n), -kInf);
  }
}

TEST_P(RowKernelTest, ExpSumIsBitIdenticalToScalar) {
  for (size_t n : kSizes) {
    const std::vector<float> row = AwkwardRow(n, static_cast<uint32_t>(n) + 3);
    const float max = MaxScalar(row.data(), n);
    if (max == -kInf) continue;
    for (float t : {1.0f, 0.7f, 2.5f, 1e-3f, 1e-40f}) {
      std::vector<float> fast(n), slow(n);
      const double fast_sum = ExpSum(row.data(), n, max, t, fast.data());
      const double slow_sum = ExpSumScalar(row.data(), n, max, t, slow.data());
      ASSERT_EQ(std::memcmp(fast.data(), slow.data(), 4 * n), 0) << n << " T " << t;
      ASSERT_EQ(fast_sum, slow_sum) << n << " T " << t;
      // ExpSumTotal: the same total without writing weights.
      ASSERT_EQ(ExpSumTotal(row.data(), n, max, t), slow_sum) << n << " T " << t;
      // ExpSumBlocks: the same weights and total, plus each block's sum in double.
      std::vector<float> blocked(n);
      std::vector<double> sums((n + kDrawBlock - 1) / kDrawBlock + 1, -1.0);
      ASSERT_EQ(ExpSumBlocks(row.data(), n, max, t, blocked.data(), sums.data()), slow_sum);
      ASSERT_EQ(std::memcmp(blocked.data(), slow.data(), 4 * n), 0) << n << " T " << t;
      ASSERT_EQ(sums.back(), -1.0) << "wrote past the last block";
      for (size_t b = 0; b + 1 < sums.size(); ++b) {
        long double exact = 0;
        for (size_t i = b * kDrawBlock; i < std::min(n, (b + 1) * kDrawBlock); ++i) {
          exact += slow[i];
        }
        ASSERT_NEAR(sums[b], static_cast<double>(exact), 1e-13 * static_cast<double>(exact))
            << n << " block " << b;
      }
    }
  }
}

TEST_P(RowKernelTest, DecodeArgmaxMatchesScalarWithoutCopying) {
  for (size_t n : kSizes) {
    for (int variant = 0; variant < 3; ++variant) {
      std::vector<float> row = variant == 0   ? AwkwardRow(n, static_cast<uint32_t>(n) + 9)
                               : variant == 1 ? testing::TiedRow(n, static_cast<uint32_t>(n))
                                              : std::vector<float>(n, -kInf);
      std::vector<uint16_t> bf16(n), fp16(n);
      for (size_t i = 0; i < n; ++i) {
        bf16[i] = static_cast<uint16_t>(BitsOf(row[i]) >> 16);
        const _Float16 h = static_cast<_Float16>(row[i]);
        std::memcpy(&fp16[i], &h, sizeof(uint16_t));
      }
      const LogitsView views[] = {{row.data(), n, Dtype::kFloat32},
                                  {bf16.data(), n, Dtype::kBFloat16},
                                  {fp16.data(), n, Dtype::kFloat16}};
      for (const LogitsView& view : views) {
        size_t fast_i = 99, slow_i = 98;
        float fast_m = 0, slow_m = 1;
        ASSERT_EQ(DecodeArgmax(view, &fast_i, &fast_m), -1);
        ASSERT_EQ(DecodeArgmaxScalar(view, &slow_i, &slow_m), -1);
        ASSERT_EQ(fast_i, slow_i) << n << " variant " << variant;
        ASSERT_EQ(BitsOf(fast_m), BitsOf(slow_m));
        // And the same as decoding, then Argmax.
        std::vector<float> z(n);
        float max = 0;
        ASSERT_EQ(DecodeAndMaxScalar(view, z.data(), &max), -1);
        ASSERT_EQ(fast_i, ArgmaxScalar(z.data(), n));
      }
    }
    // The first NaN/+inf is reported, for every dtype, wherever it sits.
    for (size_t pos : {size_t{0}, n / 3, n - 1}) {
      std::vector<float> row(n, 1.0f);
      row[pos] = std::numeric_limits<float>::quiet_NaN();
      if (pos + 1 < n) row[pos + 1] = kInf;
      std::vector<uint16_t> h(n, 0x3C00), b(n, 0x3F80);
      h[pos] = 0x7C00;  // fp16 +inf
      b[pos] = 0x7FC0;  // bf16 NaN
      size_t at = 0;
      float m = 0;
      EXPECT_EQ(DecodeArgmax(LogitsView::Float32(row), &at, &m), static_cast<int64_t>(pos));
      EXPECT_EQ(DecodeArgmax({h.data(), n, Dtype::kFloat16}, &at, &m),
                static_cast<int64_t>(pos));
      EXPECT_EQ(DecodeArgmax({b.data(), n, Dtype::kBFloat16}, &at, &m),
                static_cast<int64_t>(pos));
    }
  }
}

// ExpSumTotal read straight from a bf16 / fp16 / unaligned fp32 row: ExpSumScalar's
// total over the decoded row, bit for bit.
TEST_P(RowKernelTest, ExpSumTotalOfSixteenBitRowsIsTheDecodedRowsTotal) {
  for (size_t n : kSizes) {
    const std::vector<float> row = AwkwardRow(n, static_cast<uint32_t>(n) + 11);
    const Rows16 rows(row);
    std::vector<unsigned char> unaligned(4 * n + 1);
    std::memcpy(unaligned.data() + 1, row.data(), 4 * n);
    for (const LogitsView& view : {LogitsView{rows.bf16.data(), n, Dtype::kBFloat16},
                                   LogitsView{rows.fp16.data(), n, Dtype::kFloat16},
                                   LogitsView{unaligned.data() + 1, n, Dtype::kFloat32}}) {
      std::vector<float> decoded(n), w(n);
      float max;
      ASSERT_EQ(DecodeAndMaxScalar(view, decoded.data(), &max), -1);
      if (max == -kInf) continue;
      for (float t : {1.0f, 0.7f}) {
        ASSERT_EQ(ExpSumTotal(view, max, t), ExpSumScalar(decoded.data(), n, max, t, w.data()))
            << n << " dtype " << static_cast<int>(view.dtype) << " T " << t;
      }
    }
  }
}

TEST_P(RowKernelTest, MaxCheckedMatchesScalarAndReportsBadElements) {
  for (size_t n : kSizes) {
    std::vector<float> row = AwkwardRow(n, static_cast<uint32_t>(n) + 21);
    float fast = 1, slow = 2;
    ASSERT_EQ(MaxChecked(row.data(), n, &fast), -1);
    ASSERT_EQ(MaxCheckedScalar(row.data(), n, &slow), -1);
    ASSERT_EQ(BitsOf(fast), BitsOf(slow)) << n;
    for (size_t pos : {size_t{0}, n / 2, n - 1}) {
      std::vector<float> bad = row;
      bad[pos] = (pos % 2) ? kInf : std::numeric_limits<float>::quiet_NaN();
      if (pos + 1 < n) bad[pos + 1] = std::numeric_limits<float>::quiet_NaN();
      ASSERT_EQ(MaxChecked(bad.data(), n, &fast), static_cast<int64_t>(pos)) << n;
    }
  }
}

// Known answers of the dispatched row kernels on awkward sizes.
const size_t kScalarSizes[] = {1, 2, 7, 8, 9, 31, 33, 1000, 1024, 1025, 32000, 128256};

uint16_t BitsOfBFloat16(float f) {  // truncation: exact for values with 8 mantissa bits
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return static_cast<uint16_t>(u >> 16);
}

TEST(Decode, MatchesScalarOnEveryDtypeAndSize) {
  for (size_t n : kScalarSizes) {
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
  for (size_t n : kScalarSizes) {
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
  for (size_t n : kScalarSizes) {
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
  for (size_t n : kScalarSizes) {
    std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(n) + 2);
    EXPECT_EQ(Max(row.data(), n), MaxScalar(row.data(), n));
  }
}

INSTANTIATE_TEST_SUITE_P(EveryTarget, RowKernelTest, ::testing::ValuesIn(Targets()),
                         TargetParamName);

}  // namespace
}  // namespace tokensampler::sampler::kernels
