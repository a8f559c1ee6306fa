// sampler/stages/dynatemp.h.
#include "sampler/stages/dynatemp.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace tokensampler::sampler {
namespace {

TEST(SoftmaxEntropy, UniformAndPeaked) {
  const std::vector<float> z = {0.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<float> w = {1.0f, 1.0f, 1.0f, 1.0f};
  EXPECT_NEAR(SoftmaxEntropy(w, z, 0.0f, 4.0), std::log(4.0), 1e-12);
  // p = (1/2, 1/4, 1/4): H = 1.5 ln 2; logits relative to the max 0.
  const std::vector<float> z2 = {0.0f, -std::log(2.0f), -std::log(2.0f)};
  const std::vector<float> w2 = {1.0f, 0.5f, 0.5f};
  EXPECT_NEAR(SoftmaxEntropy(w2, z2, 0.0f, 2.0), 1.5 * std::log(2.0), 1e-7);
}

TEST(DynamicTemperature, MapsNormalisedEntropyIntoTheRange) {
  // Uniform (H = ln N): max_t; one-hot-like (H = 0): min_t.
  EXPECT_FLOAT_EQ(DynamicTemperature(1.0f, 0.5f, 1.0f, std::log(8.0), 8), 1.5f);
  EXPECT_FLOAT_EQ(DynamicTemperature(1.0f, 0.5f, 1.0f, 0.0, 8), 0.5f);
  // min_t clamps at 0; exponent 2 on a half-normalised entropy.
  EXPECT_FLOAT_EQ(DynamicTemperature(0.3f, 1.0f, 2.0f, 0.5 * std::log(8.0), 8),
                  0.0f + 1.3f * 0.25f);
  EXPECT_EQ(DynamicTemperature(0.7f, 0.5f, 1.0f, 0.0, 1), 0.7f);  // N = 1: unchanged
}

}  // namespace
}  // namespace tokensampler::sampler
