// The dense-distribution kernels (Sum, Probs, PickDense) on every compiled SIMD target
// (sampler/kernels/dense_draw.cc).
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


class DenseDrawKernelTest : public SimdTargetTest {};

TEST_P(DenseDrawKernelTest, PickDenseEqualsTheSequentialWalk) {
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

TEST_P(DenseDrawKernelTest, ProbsMatchTheScalarDefinition) {
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

TEST_P(DenseDrawKernelTest, SumMatchesScalarBitForBit) {
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

INSTANTIATE_TEST_SUITE_P(EveryTarget, DenseDrawKernelTest, ::testing::ValuesIn(Targets()),
                         TargetParamName);

}  // namespace
}  // namespace tokensampler::sampler::kernels
