// The masks, logit bias and penalties stage (sampler/stages/masks_penalties.cc).
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

TEST(Stages, MasksBiasAndPenaltiesFollowTheirRules) {
  // Allowed {0, 2, 3, 4}, banned {3}, bias +1 on 4, context 0 x2 and 2 x1.
  const std::vector<float> z = {2.0f, 5.0f, -1.0f, 1.0f, 0.5f};
  SamplingParams p;
  const std::vector<int32_t> allowed = {0, 2, 3, 4};
  const std::vector<int32_t> banned = {3};
  const std::vector<LogitBias> bias = {{4, 1.0f}};
  const std::vector<int32_t> context = {0, 2, 0};
  p.allowed_token_ids = allowed;
  p.banned_token_ids = banned;
  p.logit_bias = bias;
  p.context_token_ids = context;
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.25f;
  p.frequency_penalty = 0.125f;
  // token 0: 2 / 2 - 0.25 - 2 * 0.125 = 0.5; token 2: -1 * 2 - 0.25 - 0.125 = -2.375;
  // token 4: 0.5 + 1 = 1.5.
  const std::vector<double> processed = {0.5, -kInf, -2.375, -kInf, 1.5};
  double sum = 0.0;
  for (double x : processed) sum += std::exp(x);
  Sampler sampler;
  const std::vector<float> dist = DenseDistribution(sampler, z, p);
  for (size_t i = 0; i < z.size(); ++i) EXPECT_NEAR(dist[i], std::exp(processed[i]) / sum, 1e-6);
}

TEST(Stages, RepetitionPenaltyZeroOrOneIsOff) {
  const std::vector<float> z = NormalRow(10, 4);
  const std::vector<int32_t> context = {1, 2, 3};
  Sampler sampler;
  const std::vector<float> base = DenseDistribution(sampler, z, {});
  for (float rep : {0.0f, 1.0f}) {
    SamplingParams p;
    p.context_token_ids = context;
    p.repetition_penalty = rep;
    EXPECT_EQ(DenseDistribution(sampler, z, p), base);
  }
}

}  // namespace
}  // namespace tokensampler::sampler
