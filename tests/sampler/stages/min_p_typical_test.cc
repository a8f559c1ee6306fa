// The min-p and typical stage (sampler/stages/min_p_typical.cc).
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

TEST(Stages, TypicalCanDropTheMostLikelyToken) {
  // From transformers' typical test: [0.4, 0.2, 0.2, 0.2] at 0.5 keeps the three 0.2s.
  const std::vector<float> z = testing::LogOf({0.4f, 0.2f, 0.2f, 0.2f});
  Sampler sampler;
  SamplingParams p;
  p.typical_p = 0.5f;
  const std::vector<float> dist = DenseDistribution(sampler, z, p);
  // STANDARD: shortest prefix in typicality order reaching 0.5: three 0.2 tokens (0.6).
  EXPECT_EQ(dist[0], 0.0f);
  for (int i = 1; i < 4; ++i) EXPECT_NEAR(dist[i], 1.0 / 3, 1e-6);
}

}  // namespace
}  // namespace tokensampler::sampler
