// The top-k stage (sampler/stages/top_k.cc).
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

TEST(Stages, TopKKeepsExactlyKTiesToLowestId) {
  const std::vector<float> z = {1.0f, 2.0f, 2.0f, 0.0f, 2.0f, 2.0f};
  Sampler sampler;
  SamplingParams p;
  p.top_k = 3;
  const std::vector<float> dist = DenseDistribution(sampler, z, p);
  EXPECT_EQ(dist, (std::vector<float>{0, 1.0f / 3, 1.0f / 3, 0, 1.0f / 3, 0}));
  p.preset = Preset::kHf;  // HF keeps every token tied with the k-th
  const std::vector<float> hf = DenseDistribution(sampler, z, p);
  EXPECT_EQ(hf, (std::vector<float>{0, 0.25f, 0.25f, 0, 0.25f, 0.25f}));
}

}  // namespace
}  // namespace tokensampler::sampler
