// Every compiled SIMD target against the scalar references, bit for bit, by forcing
// each target in turn (hwy::DisableTargets + GetChosenTarget().Update), and the whole
// pipeline's tokens and distributions across targets on a corpus of rows.
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
#include "sampler/kernels_hwy.h"
#include "sampler/sampler.h"
#include "sampler/stages/bitmask.h"
#include "tests/sampler/reference.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const size_t kSizes[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 1023, 1024, 1025, 1041, 32000,
                         128256, 262144};

// Forces the SIMD kernels onto one target for the lifetime of the object.
class ForceTarget {
 public:
  explicit ForceTarget(int64_t target) {
    // Targets are bits, better targets lower: disable every better one.
    hwy::DisableTargets(target - 1);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
  ~ForceTarget() {
    hwy::DisableTargets(0);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
  ForceTarget(const ForceTarget&) = delete;
  ForceTarget& operator=(const ForceTarget&) = delete;
};

std::vector<int64_t> Targets() { return hwy::SupportedAndGeneratedTargets(); }

class SimdTargetTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { force_ = std::make_unique<ForceTarget>(GetParam()); }
  void TearDown() override { force_.reset(); }
  std::unique_ptr<ForceTarget> force_;
};

std::string TargetParamName(const ::testing::TestParamInfo<int64_t>& info) {
  return hwy::TargetName(info.param);
}

uint32_t BitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// A row with the values the kernels treat specially: -inf, ties, +-0, tiny and huge.
std::vector<float> AwkwardRow(size_t n, uint32_t seed) {
  std::vector<float> row = testing::NormalRow(n, seed, 5.0f);
  for (size_t i = 0; i < n; i += 13) row[i] = -kInf;
  for (size_t i = 5; i < n; i += 29) row[i] = -0.0f;
  for (size_t i = 11; i < n; i += 31) row[i] = 1e-40f;
  for (size_t i = 3; i < n; i += 37) row[i] = -1e30f;
  return row;
}

TEST(SimdTargets, BestTargetIsCompiledAndListsAtLeastTwo) {
  const std::vector<int64_t> targets = Targets();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(DispatchedTarget(), targets.front()) << hwy::TargetName(DispatchedTarget());
#if HWY_ARCH_X86
  // The baseline (EMU128) and at least one real SIMD target are always compiled on x86.
  EXPECT_GE(targets.size(), 2u);
#endif
}

TEST_P(SimdTargetTest, DispatchesToTheForcedTarget) {
  EXPECT_EQ(DispatchedTarget(), GetParam()) << hwy::TargetName(DispatchedTarget());
}

TEST_P(SimdTargetTest, ExpMatchesStdExpAndIsBitIdenticalToScalar) {
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

TEST_P(SimdTargetTest, ExpSumTakesItsShortPathOnlyWhereBitsAgree) {
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

TEST_P(SimdTargetTest, DecodeAndMaxMatchesScalarOnEveryDtype) {
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

TEST_P(SimdTargetTest, DecodesEverySixteenBitPattern) {
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

TEST_P(SimdTargetTest, DecodeReportsTheFirstBadElementAtEveryPosition) {
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

TEST_P(SimdTargetTest, MaxAndArgmaxMatchScalar) {
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

TEST_P(SimdTargetTest, ExpSumIsBitIdenticalToScalar) {
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


TEST_P(SimdTargetTest, DecodeArgmaxMatchesScalarWithoutCopying) {
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
        ASSERT_EQ(DecodeArgmaxSimd(view, &fast_i, &fast_m), -1);
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
      EXPECT_EQ(DecodeArgmaxSimd(LogitsView::Float32(row), &at, &m), static_cast<int64_t>(pos));
      EXPECT_EQ(DecodeArgmaxSimd({h.data(), n, Dtype::kFloat16}, &at, &m),
                static_cast<int64_t>(pos));
      EXPECT_EQ(DecodeArgmaxSimd({b.data(), n, Dtype::kBFloat16}, &at, &m),
                static_cast<int64_t>(pos));
    }
  }
}

// Weights of a row at temperature t: what the pipeline hands to the draw.
std::vector<float> Weights(const std::vector<float>& row, float t, double* total) {
  std::vector<float> w(row.size());
  *total = ExpSumScalar(row.data(), row.size(), MaxScalar(row.data(), row.size()), t, w.data());
  return w;
}

TEST_P(SimdTargetTest, PickDenseEqualsTheSequentialWalk) {
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (size_t n : {1, 5, 4095, 4096, 5000, 32000, 128256, 262144}) {
    std::vector<float> peaked = testing::NormalRow(n, static_cast<uint32_t>(n), 1.0f);
    peaked[n / 3] += 10.0f;
    std::vector<float> sparse = testing::NormalRow(n, static_cast<uint32_t>(n) + 1, 40.0f);
    for (const auto& row : {testing::NormalRow(n, static_cast<uint32_t>(n) + 2), peaked,
                            sparse, testing::TiedRow(n, static_cast<uint32_t>(n) + 3)}) {
      double total = 0;
      const std::vector<float> w = Weights(row, 0.8f, &total);
      std::vector<double> us = {0.0, 0.5, std::nextafter(1.0, 0.0)};
      for (int k = 0; k < 200; ++k) us.push_back(uniform(gen));
      // Adversarial: u that puts the target exactly on (or next to) a running sum.
      double cum_n = 0;
      std::vector<double> cums;
      for (size_t i = 0; i < n; ++i) {
        const float p = ProbOf(w[i], total);
        if (p > 0.0f) {
          cum_n += p;
          cums.push_back(cum_n);
        }
      }
      for (int k = 0; k < 50; ++k) {
        const double c = cums[gen() % cums.size()];
        const double u = c / cum_n;
        if (u < 1.0) {
          us.push_back(u);
          us.push_back(std::nextafter(u, 0.0));
          us.push_back(std::nextafter(u, 1.0));
        }
      }
      // The block sums ExpSumBlocks makes in its pass, as the sampler passes them.
      std::vector<float> w2(n);
      std::vector<double> sums((n + kDrawBlock - 1) / kDrawBlock);
      const float max = MaxScalar(row.data(), n);
      ASSERT_EQ(ExpSumBlocks(row.data(), n, max, 0.8f, w2.data(), sums.data()), total);
      for (double u : us) {
        if (!(u < 1.0)) continue;
        const int64_t want = PickDenseScalar(w.data(), n, total, u);
        ASSERT_EQ(PickDense(w.data(), n, total, u), want) << "n " << n << " u " << u;
        ASSERT_EQ(PickDense(w2.data(), n, total, u, sums.data()), want)
            << "n " << n << " u " << u;
      }
    }
  }
  // Nothing positive: -1; one positive: always it.
  const std::vector<float> zeros(5000, 0.0f);
  EXPECT_EQ(PickDense(zeros.data(), zeros.size(), 1.0, 0.3), -1);
  std::vector<float> one(5000, 0.0f);
  one[4321] = 1.0f;
  EXPECT_EQ(PickDense(one.data(), one.size(), 1.0, 0.999), 4321);
}

TEST_P(SimdTargetTest, TopKCandidatesHoldTheTopK) {
  for (size_t n : {1, 9, 100, 1025, 32000, 128256}) {
    for (size_t k : {1, 2, 50, 1000}) {
      // variant 2 and 3: a starting floor (a logit of the row, so ties with it occur).
      for (int variant = 0; variant < 4; ++variant) {
        std::vector<float> row = variant % 2 == 0
                                     ? AwkwardRow(n, static_cast<uint32_t>(n + k))
                                     : testing::TiedRow(n, static_cast<uint32_t>(k));
        const float floor = variant < 2 ? -kInf : row[n / 2];
        std::vector<int32_t> buf(2 * k + 64);
        float bar = 0;
        const size_t count =
            TopKCandidates(row.data(), n, k, buf.data(), buf.size(), &bar, floor);
        ASSERT_LE(count, buf.size());
        auto before = [&](int32_t a, int32_t b) {
          return row[a] > row[b] || (row[a] == row[b] && a < b);
        };
        std::vector<int32_t> all;
        for (size_t i = 0; i < n; ++i) {
          if (row[i] > floor) all.push_back(static_cast<int32_t>(i));
        }
        std::sort(all.begin(), all.end(), before);
        all.resize(std::min(k, all.size()));
        std::sort(buf.begin(), buf.begin() + count, before);
        ASSERT_GE(count, all.size());
        buf.resize(all.size());
        ASSERT_EQ(buf, all) << "n " << n << " k " << k << " variant " << variant;
      }
    }
  }
}

// The 16-bit encodings of a float row: bf16 by truncation, fp16 by rounding.
struct Rows16 {
  std::vector<uint16_t> bf16, fp16;
  explicit Rows16(const std::vector<float>& row) : bf16(row.size()), fp16(row.size()) {
    for (size_t i = 0; i < row.size(); ++i) {
      bf16[i] = static_cast<uint16_t>(BitsOf(row[i]) >> 16);
      const _Float16 h = static_cast<_Float16>(row[i]);
      std::memcpy(&fp16[i], &h, sizeof(uint16_t));
    }
  }
};

// ExpSumTotal read straight from a bf16 / fp16 / unaligned fp32 row: ExpSumScalar's
// total over the decoded row, bit for bit.
TEST_P(SimdTargetTest, ExpSumTotalOfSixteenBitRowsIsTheDecodedRowsTotal) {
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

// The scan straight from a bf16/fp16 row leaves exactly the buffer (same ids, same
// order), count and bar of TopKCandidates on the decoded row, and that buffer holds the
// row's best k: rows with ties, -inf, -0 and subnormals, k from 1 to near V/2, with and
// without a floor, and sizes around the vector and block lengths.
TEST_P(SimdTargetTest, DecodeTopKCandidatesEqualTopKCandidatesOnTheDecodedRow) {
  for (size_t n : {1, 2, 7, 8, 9, 31, 33, 64, 65, 100, 1025, 32000, 128256}) {
    for (size_t k : {size_t{1}, size_t{2}, size_t{50}, size_t{1000}, n / 2 - (n > 2)}) {
      if (k == 0 || k > n) continue;
      for (int variant = 0; variant < 6; ++variant) {
        const uint32_t seed = static_cast<uint32_t>(n * 7 + k);
        std::vector<float> row = variant % 3 == 0   ? AwkwardRow(n, seed)
                                 : variant % 3 == 1 ? testing::TiedRow(n, seed)
                                                    : testing::NormalRow(n, seed, 3.0f);
        if (variant % 3 == 2) row[n / 3] += 20.0f;  // peaked: the bar rises at once
        const Rows16 rows(row);
        for (const LogitsView& view : {LogitsView{rows.bf16.data(), n, Dtype::kBFloat16},
                                       LogitsView{rows.fp16.data(), n, Dtype::kFloat16}}) {
          std::vector<float> z(n);
          float max = 0;
          ASSERT_EQ(DecodeAndMaxScalar(view, z.data(), &max), -1);
          const float floor = variant < 3 ? -kInf : z[n / 2];
          const size_t cap = 2 * k + 64;
          std::vector<int32_t> want(cap, -1), got(cap, -2);
          float want_bar = 0, got_bar = 1;
          size_t got_count = 0;
          const size_t want_count =
              TopKCandidates(z.data(), n, k, want.data(), cap, &want_bar, floor);
          ASSERT_EQ(DecodeTopKCandidates(view, k, got.data(), cap, &got_count, &got_bar, floor),
                    -1);
          const std::string where = "n " + std::to_string(n) + " k " + std::to_string(k) +
                                    " variant " + std::to_string(variant) + " dtype " +
                                    std::to_string(static_cast<int>(view.dtype));
          ASSERT_EQ(got_count, want_count) << where;
          ASSERT_EQ(BitsOf(got_bar), BitsOf(want_bar)) << where;
          want.resize(want_count);
          got.resize(got_count);
          ASSERT_EQ(got, want) << where;
          // The best k by a full sort of the decoded row.
          auto before = [&](int32_t a, int32_t b) {
            return z[a] > z[b] || (z[a] == z[b] && a < b);
          };
          std::vector<int32_t> best;
          for (size_t i = 0; i < n; ++i) {
            if (z[i] > floor) best.push_back(static_cast<int32_t>(i));
          }
          std::sort(best.begin(), best.end(), before);
          best.resize(std::min(k, best.size()));
          std::sort(got.begin(), got.end(), before);
          ASSERT_GE(got.size(), best.size()) << where;
          got.resize(best.size());
          ASSERT_EQ(got, best) << where;
        }
      }
    }
  }
}

// Every finite or -inf bf16 and fp16 bit pattern, shuffled, in one row: the scan's own
// scalar decoding (the tail, the buffer's ordering) agrees with the decoded row.
TEST_P(SimdTargetTest, DecodeTopKCandidatesOnEverySixteenBitPattern) {
  for (Dtype dtype : {Dtype::kFloat16, Dtype::kBFloat16}) {
    std::vector<uint16_t> bits;
    for (uint32_t b = 0; b < 0x10000; ++b) {
      const float f = dtype == Dtype::kFloat16 ? Float16ToFloat(static_cast<uint16_t>(b))
                                               : BFloat16ToFloat(static_cast<uint16_t>(b));
      if (!std::isnan(f) && f != kInf) bits.push_back(static_cast<uint16_t>(b));
    }
    std::shuffle(bits.begin(), bits.end(), std::mt19937(11));
    const size_t n = bits.size();
    const LogitsView view{bits.data(), n, dtype};
    std::vector<float> z(n);
    float max = 0;
    ASSERT_EQ(DecodeAndMaxScalar(view, z.data(), &max), -1);
    for (size_t k : {size_t{1}, size_t{50}, size_t{1000}, n / 2 - 1}) {
      const size_t cap = 2 * k + 64;
      std::vector<int32_t> want(cap), got(cap);
      float want_bar = 0, got_bar = 1;
      size_t got_count = 0;
      const size_t want_count = TopKCandidates(z.data(), n, k, want.data(), cap, &want_bar);
      ASSERT_EQ(DecodeTopKCandidates(view, k, got.data(), cap, &got_count, &got_bar), -1);
      ASSERT_EQ(got_count, want_count) << "k " << k;
      ASSERT_EQ(BitsOf(got_bar), BitsOf(want_bar)) << "k " << k;
      want.resize(want_count);
      got.resize(got_count);
      ASSERT_EQ(got, want) << "k " << k << " dtype " << static_cast<int>(dtype);
    }
  }
}

// A row of -inf has no candidates; a NaN or +inf anywhere is reported at its index, the
// first one if several, whether it would beat the bar or not (a floor above it, a large
// logit before it), as DecodeAndMax reports it.
TEST_P(SimdTargetTest, DecodeTopKCandidatesReportTheFirstBadElement) {
  const uint16_t bad_bf[] = {0x7F80, 0x7FC0, 0xFF81, 0x7F81};  // +inf, NaN, -NaN, sNaN
  const uint16_t bad16[] = {0x7C00, 0x7E01, 0xFE00, 0x7C01};
  for (size_t n : {1, 5, 16, 31, 32, 33, 64, 100, 1041}) {
    for (Dtype dtype : {Dtype::kBFloat16, Dtype::kFloat16}) {
      std::vector<uint16_t> masked(n, dtype == Dtype::kBFloat16 ? 0xFF80 : 0xFC00);
      std::vector<int32_t> buf(2 * 3 + 64);
      size_t count = 1;
      float bar = 0;
      ASSERT_EQ(DecodeTopKCandidates({masked.data(), n, dtype}, 3, buf.data(), buf.size(),
                                     &count, &bar),
                -1);
      EXPECT_EQ(count, 0u);
    }
    for (size_t pos = 0; pos < n; pos += (n > 40 ? 7 : 1)) {
      std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(pos), 1.0f);
      row[0] = 30.0f;  // the bar soon sits high
      const Rows16 clean(row);
      for (int b = 0; b < 4; ++b) {
        for (float floor : {-kInf, 0.5f, 1000.0f}) {
          Rows16 rows = clean;
          rows.bf16[pos] = bad_bf[b];
          rows.fp16[pos] = bad16[b];
          if (pos + 3 < n) {
            rows.bf16[pos + 3] = bad_bf[(b + 1) % 4];
            rows.fp16[pos + 3] = bad16[(b + 1) % 4];
          }
          for (const LogitsView& view : {LogitsView{rows.bf16.data(), n, Dtype::kBFloat16},
                                         LogitsView{rows.fp16.data(), n, Dtype::kFloat16}}) {
            std::vector<float> z(n);
            float max = 0;
            ASSERT_EQ(DecodeAndMax(view, z.data(), &max), static_cast<int64_t>(pos));
            std::vector<int32_t> buf(2 * 2 + 64);
            size_t count = 0;
            float bar = 0;
            ASSERT_EQ(DecodeTopKCandidates(view, 2, buf.data(), buf.size(), &count, &bar, floor),
                      static_cast<int64_t>(pos))
                << "n " << n << " bad " << b << " floor " << floor << " dtype "
                << static_cast<int>(view.dtype);
          }
        }
      }
    }
  }
}

// A 16-bit row that top-k cuts first is scanned in place, only its candidates decoded:
// the tokens, logprobs, top logprobs and distribution are those of the float32 path on
// the decoded row, bit for bit, and the errors name the same element. Rows with ties,
// -inf, fewer finite tokens than k, a peak; k from 1 to near V/2 and past the sampled
// floor guess (k >= 256); both logprobs modes (RAW keeps the decoded copy); HF.
TEST_P(SimdTargetTest, SixteenBitRowsSampleLikeTheirDecodedFloat32Rows) {
  Sampler sampler;
  for (size_t v : {17, 1000, 32000, 128256}) {
    std::vector<std::vector<float>> rows = {testing::NormalRow(v, 5, 3.0f),
                                            testing::TiedRow(v, 6), AwkwardRow(v, 7)};
    std::vector<float> peaked = testing::NormalRow(v, 8, 1.0f);
    peaked[v / 3] += 10.0f;
    rows.push_back(peaked);
    std::vector<float> few(v, -kInf);
    few[1] = 0.5f;
    few[v - 2] = 2.0f;
    few[v / 2] = 2.0f;
    rows.push_back(few);
    std::vector<SamplingParams> configs;
    SamplingParams p;
    p.temperature = 0.8f;
    p.top_k = 50;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    configs.push_back(p);
    for (int32_t k : {1, 1000, static_cast<int32_t>(v / 2) - 1}) {
      p.top_k = k;
      configs.push_back(p);
    }
    p.top_k = 40;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 0.9f;
    p.temperature = 1.5f;
    p.min_tokens_to_keep = 45;
    configs.push_back(p);
    p = configs[0];
    p.preset = Preset::kHf;  // keeps ties with the k-th: the decoded copy
    configs.push_back(p);
    for (size_t r = 0; r < rows.size(); ++r) {
      const Rows16 encoded(rows[r]);
      for (const LogitsView& view :
           {LogitsView{encoded.bf16.data(), v, Dtype::kBFloat16},
            LogitsView{encoded.fp16.data(), v, Dtype::kFloat16}}) {
        std::vector<float> decoded(v);
        float max = 0;
        ASSERT_EQ(DecodeAndMaxScalar(view, decoded.data(), &max), -1);
        for (size_t c = 0; c < configs.size(); ++c) {
          const std::string where = "V " + std::to_string(v) + " row " + std::to_string(r) +
                                    " config " + std::to_string(c) + " dtype " +
                                    std::to_string(static_cast<int>(view.dtype));
          for (LogprobsMode mode : {LogprobsMode::kProcessed, LogprobsMode::kRaw}) {
            SamplingParams q = configs[c];
            q.logprobs_mode = mode;
            q.seed = 40 + r;
            q.num_samples = 3;
            q.top_logprobs = 4;
            SampleResult got, want;
            ASSERT_TRUE(sampler.Sample(view, q, 7, &got).ok()) << where;
            ASSERT_TRUE(sampler.Sample(LogitsView::Float32(decoded), q, 7, &want).ok());
            ASSERT_EQ(got.samples.size(), want.samples.size());
            for (size_t s = 0; s < got.samples.size(); ++s) {
              ASSERT_EQ(got.samples[s].token_id, want.samples[s].token_id) << where;
              ASSERT_EQ(BitsOf(got.samples[s].logprob), BitsOf(want.samples[s].logprob));
              ASSERT_EQ(got.samples[s].top_logprobs.size(), want.samples[s].top_logprobs.size());
              for (size_t t = 0; t < got.samples[s].top_logprobs.size(); ++t) {
                ASSERT_EQ(got.samples[s].top_logprobs[t].token_id,
                          want.samples[s].top_logprobs[t].token_id) << where;
                ASSERT_EQ(BitsOf(got.samples[s].top_logprobs[t].logprob),
                          BitsOf(want.samples[s].top_logprobs[t].logprob)) << where;
              }
            }
          }
          DistributionResult got, want;
          ASSERT_TRUE(sampler.Distribution(view, configs[c], &got).ok()) << where;
          ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(decoded), configs[c], &want).ok());
          ASSERT_EQ(got.token_ids, want.token_ids) << where;
          std::vector<uint32_t> got_bits, want_bits;
          for (float x : got.probs) got_bits.push_back(BitsOf(x));
          for (float x : want.probs) want_bits.push_back(BitsOf(x));
          ASSERT_EQ(got_bits, want_bits) << where;
          if (v > 32000) continue;
          // And the kept set is the reference's.
          const std::vector<double> ref = testing::ReferenceDistribution(decoded, configs[c]);
          std::vector<int32_t> ref_ids;
          for (size_t i = 0; i < v; ++i) {
            if (ref[i] > 1e-30) ref_ids.push_back(static_cast<int32_t>(i));
          }
          std::vector<int32_t> ids = got.token_ids;
          std::sort(ids.begin(), ids.end());
          ASSERT_EQ(ids, ref_ids) << where;
        }
      }
    }
  }
  // Errors: the first NaN/+inf by index, and a row of -inf, as the float32 path says.
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 50;
  p.top_p = 0.95f;
  const size_t v = 4099;
  std::vector<float> row = testing::NormalRow(v, 9, 3.0f);
  row[0] = 50.0f;
  for (size_t pos : {size_t{0}, size_t{31}, size_t{2048}, v - 1}) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), kInf}) {
      std::vector<float> with = row;
      with[pos] = bad;
      if (pos + 1 < v) with[pos + 1] = bad == kInf ? std::numeric_limits<float>::quiet_NaN() : kInf;
      Rows16 encoded(with);
      encoded.fp16[pos] = std::isnan(bad) ? 0x7E00 : 0x7C00;
      const std::string message = "logits[" + std::to_string(pos) + "]: must not be " +
                                  (std::isnan(bad) ? "NaN" : "+inf");
      SampleResult out;
      ASSERT_EQ(sampler.Sample(LogitsView::Float32(with), p, 0, &out).message(), message);
      ASSERT_EQ(sampler.Sample({encoded.bf16.data(), v, Dtype::kBFloat16}, p, 0, &out).message(),
                message);
      ASSERT_EQ(sampler.Sample({encoded.fp16.data(), v, Dtype::kFloat16}, p, 0, &out).message(),
                message);
    }
  }
  const std::vector<uint16_t> masked(v, 0xFF80);  // bf16 -inf
  SampleResult out;
  EXPECT_EQ(sampler.Sample({masked.data(), v, Dtype::kBFloat16}, p, 0, &out).message(),
            "logits: every token is masked");
}

TEST_P(SimdTargetTest, CollectAtLeastMatchesScalarBitForBit) {
  for (size_t n : kSizes) {
    const std::vector<float> row = AwkwardRow(n, static_cast<uint32_t>(n) + 11);
    double total = 0;
    const std::vector<float> w = Weights(row, 1.0f, &total);
    for (float t : {-kInf, -3.0f, 0.0f, 4.0f, 1e9f}) {
      std::vector<int32_t> fast(n), slow(n), ids_only(n);
      std::vector<float> zs(n, -1.0f), ws(n, -1.0f);
      double fast_mass = -1, slow_mass = -2, ids_only_mass = -3;
      const size_t fc = CollectAtLeast(row.data(), w.data(), n, t, fast.data(), &fast_mass,
                                       zs.data(), ws.data());
      const size_t sc = CollectAtLeastScalar(row.data(), w.data(), n, t, slow.data(), &slow_mass);
      ASSERT_EQ(CollectAtLeast(row.data(), w.data(), n, t, ids_only.data(), &ids_only_mass), fc);
      ASSERT_EQ(fc, sc);
      fast.resize(fc);
      slow.resize(sc);
      ids_only.resize(fc);
      ASSERT_EQ(fast, slow);
      ASSERT_EQ(fast, ids_only);
      ASSERT_EQ(fast_mass, slow_mass);
      ASSERT_EQ(ids_only_mass, slow_mass);
      for (size_t j = 0; j < fc; ++j) {
        ASSERT_EQ(BitsOf(zs[j]), BitsOf(row[fast[j]])) << j;
        ASSERT_EQ(BitsOf(ws[j]), BitsOf(w[fast[j]])) << j;
      }
      size_t expected = 0;
      for (size_t i = 0; i < n; ++i) expected += row[i] >= t;
      ASSERT_EQ(fc, expected);
    }
  }
}


TEST_P(SimdTargetTest, ProbsMatchTheScalarDefinition) {
  std::mt19937 gen(3);
  for (size_t n : kSizes) {
    for (float t : {1.0f, 0.8f, 0.05f}) {
      const std::vector<float> row = AwkwardRow(n, static_cast<uint32_t>(n) + 17);
      if (MaxScalar(row.data(), n) == -kInf) continue;  // no weights to speak of
      double total = 0;
      std::vector<float> w = Weights(row, t, &total);
      for (size_t i = 0; i < n; i += 97) w[i] = 1.0f / static_cast<float>(1 + (gen() % 7));
      // Totals that are not sums (Finalize divides by the survivors' sum), one that
      // makes a weight's product round above 1, and ones below kMinScaledTotal.
      for (double tot : {total, total * 3.0, 1.0, 0.75, 3.0, 0x1p-70, 1e-300}) {
        std::vector<float> fast(n), slow(n), in_place = w;
        Probs(w.data(), n, tot, fast.data());
        ProbsScalar(w.data(), n, tot, slow.data());
        Probs(in_place.data(), n, tot, in_place.data());
        ASSERT_EQ(std::memcmp(fast.data(), slow.data(), 4 * n), 0) << n << " " << tot;
        ASSERT_EQ(std::memcmp(fast.data(), in_place.data(), 4 * n), 0) << n << " " << tot;
        for (size_t i = 0; i < n; ++i) {
          ASSERT_EQ(BitsOf(slow[i]), BitsOf(ProbOf(w[i], tot)));
          const double exact = static_cast<double>(w[i]) / tot;
          if (exact > 1.0 || !(exact >= 0x1p-126)) continue;  // not a probability / subnormal
          ASSERT_LE(slow[i], 1.0f);
          ASSERT_LE(std::fabs(slow[i] - exact), 0x1p-23 * exact) << i << " " << tot;
        }
      }
    }
  }
  // The product never rounds above 1: w == total for totals whose reciprocal rounds up.
  for (float x = 1.0f; x < 4096.0f; x += 1.0f) {
    ASSERT_LE(ProbOf(x, x), 1.0f) << x;
    ASSERT_GE(ProbOf(x, x), 1.0f - 0x1p-23f) << x;
  }
}


TEST_P(SimdTargetTest, TopPSetKernelsMatchPlainLoops) {
  std::mt19937 gen(5);
  for (size_t n : kSizes) {
    // Logits with many ties, both zeros, and values at the bucket edges.
    std::vector<float> z(n);
    std::uniform_int_distribution<int> pick(0, 40);
    for (float& v : z) {
      const int k = pick(gen);
      v = k == 0 ? -0.0f : k == 1 ? 0.0f : static_cast<float>(k % 13) * 0.25f - 1.5f;
    }
    const float z_max = 1.5f;
    const float scale = 2048.0f / 3.0f;
    std::vector<uint16_t> bucket(n);
    LogitBuckets(z.data(), n, z_max, scale, 2047, bucket.data());
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(bucket[i], LogitBucket(z[i], z_max, scale, 2047)) << i;
      const float b = (z_max - z[i]) * scale;
      ASSERT_EQ(bucket[i], static_cast<uint16_t>(std::min(b, 2047.0f))) << i;
    }
    for (uint16_t cut : {uint16_t{0}, bucket[n / 2], uint16_t{2047}, uint16_t{3000}}) {
      std::vector<uint32_t> at(n);
      size_t n_at = 0;
      const size_t below = SplitAtBucket(bucket.data(), n, cut, at.data(), &n_at);
      size_t want_below = 0;
      std::vector<uint32_t> want_at;
      for (size_t i = 0; i < n; ++i) {
        want_below += bucket[i] < cut;
        if (bucket[i] == cut) want_at.push_back(static_cast<uint32_t>(i));
      }
      ASSERT_EQ(below, want_below);
      at.resize(n_at);
      ASSERT_EQ(at, want_at);
      // The worst kept token of the cut bucket: each member in turn (ties on z, -0
      // equal to +0, decided by id), and none.
      std::vector<std::pair<float, int32_t>> worsts = {
          {-kInf, std::numeric_limits<int32_t>::max()}};
      for (size_t j = 0; j < want_at.size() && j < 6; ++j) {
        const uint32_t p = want_at[(j * 7919) % want_at.size()];
        worsts.push_back({z[p], static_cast<int32_t>(10 * p)});
      }
      for (const auto& [zw, idw] : worsts) {
        std::vector<int32_t> ids(n);
        for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(10 * i);
        std::vector<float> zs = z;
        const size_t kept = KeepAboveCut(ids.data(), zs.data(), bucket.data(), n, cut, zw, idw);
        std::vector<int32_t> want_ids;
        std::vector<float> want_z;
        for (size_t i = 0; i < n; ++i) {
          const int32_t id = static_cast<int32_t>(10 * i);
          const bool better = z[i] > zw || (z[i] == zw && id <= idw);
          if (bucket[i] < cut || (bucket[i] == cut && better)) {
            want_ids.push_back(id);
            want_z.push_back(z[i]);
          }
        }
        ASSERT_EQ(kept, want_ids.size());
        ids.resize(kept);
        zs.resize(kept);
        ASSERT_EQ(ids, want_ids);
        for (size_t j = 0; j < kept; ++j) ASSERT_EQ(BitsOf(zs[j]), BitsOf(want_z[j]));
      }
    }
  }
  EXPECT_LT(OrderedBits(-0.0f), OrderedBits(0.0f));
  EXPECT_LT(OrderedBits(-kInf), OrderedBits(-1.0f));
  EXPECT_LT(OrderedBits(-1.0f), OrderedBits(-0.5f));
  EXPECT_LT(OrderedBits(0.5f), OrderedBits(kInf));
}

TEST_P(SimdTargetTest, SumMatchesScalarBitForBit) {
  for (size_t n : kSizes) {
    const std::vector<float> row = AwkwardRow(n, static_cast<uint32_t>(n) + 31);
    if (MaxScalar(row.data(), n) == -kInf) continue;
    double total = 0;
    const std::vector<float> w = Weights(row, 0.8f, &total);
    const double fast = Sum(w.data(), n);
    ASSERT_EQ(fast, SumScalar(w.data(), n)) << n;
    long double exact = 0;
    for (float x : w) exact += x;
    ASSERT_NEAR(fast, static_cast<double>(exact), 1e-14 * static_cast<double>(exact)) << n;
  }
}

TEST_P(SimdTargetTest, MaxCheckedMatchesScalarAndReportsBadElements) {
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



// The pipeline on every target: tokens and distributions equal those of the baseline
// (EMU128, i.e. the scalar-equivalent target) for every row of a corpus.
struct Case {
  const char* name;
  SamplingParams params;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  SamplingParams p;
  cases.push_back({"t1", p});
  p.temperature = 0.7f;
  cases.push_back({"t07", p});
  p.top_k = 50;
  cases.push_back({"topk50", p});
  p.top_k = 0;
  p.top_p = 0.95f;
  cases.push_back({"topp95", p});
  p.top_k = 50;
  p.min_p = 0.05f;
  cases.push_back({"topk_topp_minp", p});
  SamplingParams g;
  g.temperature = 0.0f;
  cases.push_back({"greedy", g});
  SamplingParams hf = p;
  hf.preset = Preset::kHf;
  cases.push_back({"hf", hf});
  SamplingParams llama = p;
  llama.preset = Preset::kLlamaCpp;
  cases.push_back({"llama", llama});
  return cases;
}

std::vector<std::vector<float>> Corpus() {
  std::vector<std::vector<float>> rows;
  uint32_t seed = 100;
  for (size_t v : {3, 17, 1000, 32000, 128256}) {
    rows.push_back(testing::NormalRow(v, seed++, 3.0f));
    std::vector<float> peaked = testing::NormalRow(v, seed++, 1.0f);
    peaked[v / 2] += 10.0f;
    rows.push_back(peaked);
    rows.push_back(testing::TiedRow(v, seed++));
    rows.push_back(AwkwardRow(v, seed++));
  }
  return rows;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<std::vector<int32_t>> dist_ids;
  std::vector<std::vector<uint32_t>> dist_bits;
};

Outcome RunCorpus() {
  Outcome out;
  Sampler sampler;
  const std::vector<std::vector<float>> rows = Corpus();
  for (const Case& c : Cases()) {
    for (size_t r = 0; r < rows.size(); ++r) {
      SamplingParams p = c.params;
      p.seed = 1234 + r;
      p.num_samples = 3;
      p.top_logprobs = 2;
      SampleResult result;
      const LogitsView view = LogitsView::Float32(rows[r]);
      for (uint64_t step : {0u, 1u, 77u}) {
        const absl::Status s = sampler.Sample(view, p, step, &result);
        EXPECT_TRUE(s.ok()) << s;
        for (const auto& sample : result.samples) out.tokens.push_back(sample.token_id);
      }
      DistributionResult dist;
      EXPECT_TRUE(sampler.Distribution(view, p, &dist).ok());
      out.dist_ids.push_back(dist.token_ids);
      std::vector<uint32_t> bits;
      for (float prob : dist.probs) bits.push_back(BitsOf(prob));
      out.dist_bits.push_back(bits);
    }
  }
  return out;
}

TEST(SimdTargets, PipelineTokensAndDistributionsIdenticalOnEveryTarget) {
  const std::vector<int64_t> targets = Targets();
  const int64_t baseline = targets.back();  // the worst compiled target: EMU128 on x86
  Outcome expected;
  {
    ForceTarget force(baseline);
    ASSERT_EQ(DispatchedTarget(), baseline);
    expected = RunCorpus();
  }
  ASSERT_FALSE(expected.tokens.empty());
  for (int64_t target : targets) {
    ForceTarget force(target);
    ASSERT_EQ(DispatchedTarget(), target);
    const Outcome got = RunCorpus();
    EXPECT_EQ(got.tokens, expected.tokens) << hwy::TargetName(target);
    EXPECT_EQ(got.dist_ids, expected.dist_ids) << hwy::TargetName(target);
    EXPECT_EQ(got.dist_bits, expected.dist_bits) << hwy::TargetName(target);
  }
}


// The pipeline reads an aligned float32 row in place and copies every other row: both
// must give the same tokens and the same distribution bits.
TEST(SimdTargets, InPlaceAndCopiedRowsAgree) {
  Sampler sampler;
  for (size_t v : {5, 4096, 32000}) {
    const std::vector<float> row = testing::NormalRow(v, static_cast<uint32_t>(v), 3.0f);
    std::vector<unsigned char> shifted(4 * v + 1);
    std::memcpy(shifted.data() + 1, row.data(), 4 * v);
    const LogitsView in_place = LogitsView::Float32(row);
    const LogitsView copied = {shifted.data() + 1, v, Dtype::kFloat32};
    for (const Case& c : Cases()) {
      SamplingParams p = c.params;
      p.seed = 99;
      SampleResult a, b;
      ASSERT_TRUE(sampler.Sample(in_place, p, 5, &a).ok());
      ASSERT_TRUE(sampler.Sample(copied, p, 5, &b).ok());
      ASSERT_EQ(a.samples[0].token_id, b.samples[0].token_id) << c.name << " V " << v;
      ASSERT_EQ(BitsOf(a.samples[0].logprob), BitsOf(b.samples[0].logprob)) << c.name;
      DistributionResult da, db;
      ASSERT_TRUE(sampler.Distribution(in_place, p, &da).ok());
      ASSERT_TRUE(sampler.Distribution(copied, p, &db).ok());
      ASSERT_EQ(da.token_ids, db.token_ids) << c.name << " V " << v;
      ASSERT_EQ(da.probs, db.probs) << c.name << " V " << v;
    }
  }
}


// STANDARD top-p on rows large enough for the threshold path (sampled guess, collect,
// bucketed cut), against the slow reference: the same kept set, with min_tokens_to_keep
// inside and beyond the nucleus, on tied, peaked and near-uniform rows.
TEST(SimdTargets, TopPThresholdPathMatchesTheReference) {
  Sampler sampler;
  for (size_t v : {4096, 32000, 128256}) {
    std::vector<std::vector<float>> rows = {testing::NormalRow(v, 1, 3.0f),
                                            testing::NormalRow(v, 2, 0.3f),
                                            testing::TiedRow(v, 3)};
    std::vector<float> peaked = testing::NormalRow(v, 4, 1.0f);
    peaked[v / 5] += 10.0f;
    rows.push_back(peaked);
    for (size_t r = 0; r < rows.size(); ++r) {
      for (float top_p : {1e-7f, 0.3f, 0.9f, 0.95f, 0.999f}) {
        for (int32_t min_keep : {1, 3, 700}) {
          SamplingParams p;
          p.temperature = 0.8f;
          p.top_p = top_p;
          p.min_tokens_to_keep = min_keep;
          const std::vector<float> got = testing::DenseDistribution(sampler, rows[r], p);
          const std::vector<double> want = testing::ReferenceDistribution(rows[r], p);
          ASSERT_EQ(got.size(), want.size());
          size_t mismatches = 0;
          for (size_t i = 0; i < v; ++i) {
            if ((got[i] > 0.0f) != (want[i] > 1e-30)) {
              ADD_FAILURE() << "token " << i << " got " << got[i] << " want " << want[i];
              if (++mismatches == 3) break;
            }
          }
          ASSERT_EQ(mismatches, 0u) << "V " << v << " row " << r << " top_p " << top_p
                                    << " min_keep " << min_keep;
        }
      }
    }
  }
}

// The structured-output bitmask (stages/bitmask.h): the SIMD pass against its scalar
// reference and against masking the same tokens by id, bit for bit, with the mask's words
// random, full, empty and with bits set past V.
TEST_P(SimdTargetTest, BitmaskMatchesScalarAndTheAllowedIdsPath) {
  for (size_t v : {size_t{1}, size_t{2}, size_t{7}, size_t{31}, size_t{32}, size_t{33},
                   size_t{1025}, size_t{32000}, size_t{128256}}) {
    const std::vector<float> row = AwkwardRow(v, static_cast<uint32_t>(v));
    std::mt19937 gen(static_cast<uint32_t>(v) + 1);
    for (int pattern = 0; pattern < 4; ++pattern) {
      std::vector<uint8_t> mask(stages::BitmaskBytes(v), 0);
      for (uint8_t& byte : mask) {
        byte = pattern == 0 ? static_cast<uint8_t>(gen())
               : pattern == 1 ? 0xff
               : pattern == 2 ? 0x00
                              : static_cast<uint8_t>(gen() & gen());  // sparse
      }
      std::vector<float> by_ids(row);
      float max_ids = -kInf;
      for (size_t i = 0; i < v; ++i) {
        if (((mask[i / 8] >> (i % 8)) & 1) == 0) by_ids[i] = -kInf;
        max_ids = std::max(max_ids, by_ids[i]);
      }
      std::vector<float> simd(v), scalar(v), in_place(row);
      const float max_simd = stages::ApplyBitmask(mask.data(), row.data(), v, simd.data());
      const float max_scalar =
          stages::ApplyBitmaskScalar(mask.data(), row.data(), v, scalar.data());
      stages::ApplyBitmask(mask.data(), in_place.data(), v, in_place.data());
      ASSERT_EQ(BitsOf(max_simd), BitsOf(max_scalar)) << "V " << v << " pattern " << pattern;
      ASSERT_EQ(max_simd, max_ids) << "V " << v << " pattern " << pattern;
      size_t mismatches = 0;
      for (size_t i = 0; i < v; ++i) {
        mismatches += BitsOf(simd[i]) != BitsOf(scalar[i]);
        mismatches += BitsOf(simd[i]) != BitsOf(by_ids[i]);
        mismatches += BitsOf(in_place[i]) != BitsOf(simd[i]);
      }
      ASSERT_EQ(mismatches, 0u) << "V " << v << " pattern " << pattern;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryTarget, SimdTargetTest, ::testing::ValuesIn(Targets()),
                         TargetParamName);

}  // namespace
}  // namespace tokensampler::sampler::kernels
