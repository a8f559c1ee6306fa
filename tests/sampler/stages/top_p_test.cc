// The top-p stage (sampler/stages/top_p.cc).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/sampler.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler {
namespace {

using testing::DenseDistribution;
using testing::LogOf;
using testing::NormalRow;

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(Stages, TopPExactMassStopsDespiteRounding) {
  // From the lead's brief and transformers' test: p = 0.8 keeps {0.5, 0.3}.
  const std::vector<float> z = testing::LogOf({0.3f, 0.1f, 0.1f, 0.5f});
  Sampler sampler;
  SamplingParams p;
  p.top_p = 0.8f;
  const std::vector<float> dist = DenseDistribution(sampler, z, p);
  EXPECT_NEAR(dist[0], 0.375, 1e-6);
  EXPECT_NEAR(dist[3], 0.625, 1e-6);
  EXPECT_EQ(dist[1], 0.0f);
  EXPECT_EQ(dist[2], 0.0f);
}

TEST(Stages, TopPTiesGoToTheLowestId) {
  const std::vector<float> z(10, 0.0f);  // uniform: p = 0.3 keeps exactly 3 tokens
  Sampler sampler;
  SamplingParams p;
  p.top_p = 0.3f;
  const std::vector<float> dist = DenseDistribution(sampler, z, p);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(dist[i] > 0, i < 3) << i;
  p.top_p = 0.31f;
  const std::vector<float> four = DenseDistribution(sampler, z, p);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(four[i] > 0, i < 4) << i;
}

}  // namespace
}  // namespace tokensampler::sampler
