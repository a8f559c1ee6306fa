// sampler/stages/top_n_sigma.h.
#include "sampler/stages/top_n_sigma.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(TopNSigma, ThresholdIsMaxMinusNPopulationStd) {
  // {1, 2, 3, 4}: mean 2.5, population std sqrt(1.25).
  const std::vector<float> z = {1.0f, 2.0f, 3.0f, 4.0f};
  EXPECT_FLOAT_EQ(TopNSigmaThreshold(z, 1.0f), 4.0f - std::sqrt(1.25f));
  EXPECT_FLOAT_EQ(TopNSigmaThreshold(z, 0.0f), 4.0f);
}

TEST(TopNSigma, MaskedTokensAreIgnoredAndStayMasked) {
  std::vector<float> z = {1.0f, -kInf, 2.0f, 3.0f, -kInf, 4.0f};
  EXPECT_FLOAT_EQ(TopNSigmaThreshold(z, 1.0f), 4.0f - std::sqrt(1.25f));
  EXPECT_EQ(ApplyTopNSigma(absl::MakeSpan(z), 1.0f), 2u);
  EXPECT_EQ(z, (std::vector<float>{-kInf, -kInf, -kInf, 3.0f, -kInf, 4.0f}));
}

TEST(TopNSigma, TiesAtTheThresholdStayAndTheBestAlwaysStays) {
  std::vector<float> flat(7, 2.5f);  // std 0: threshold = max, every token ties it
  EXPECT_EQ(ApplyTopNSigma(absl::MakeSpan(flat), 3.0f), 7u);
  std::vector<float> one = {-kInf, 5.0f, -kInf};  // fewer than two finite: nothing removed
  EXPECT_EQ(ApplyTopNSigma(absl::MakeSpan(one), 1.0f), 1u);
  std::vector<float> row = testing::NormalRow(1000, 4);
  const float best = *std::max_element(row.begin(), row.end());
  ApplyTopNSigma(absl::MakeSpan(row), 0.0f);
  EXPECT_EQ(std::count(row.begin(), row.end(), best), 1);
}

TEST(TopNSigma, LanesGiveTheSameThresholdAsAStraightDoubleSumOnAwkwardSizes) {
  for (size_t n : {2u, 7u, 8u, 9u, 31u, 33u, 32000u}) {
    const std::vector<float> z = testing::NormalRow(n, static_cast<uint32_t>(n));
    double sum = 0.0, max = -kInf;
    for (float v : z) {
      sum += v;
      max = std::max(max, static_cast<double>(v));
    }
    const double mean = sum / n;
    double var = 0.0;
    for (float v : z) var += (v - mean) * (v - mean);
    const double want = max - 2.0 * std::sqrt(var / n);
    EXPECT_NEAR(TopNSigmaThreshold(z, 2.0f), want, 1e-5 * (1.0 + std::fabs(want))) << n;
  }
}

}  // namespace
}  // namespace tokensampler::sampler
