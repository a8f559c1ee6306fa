// The chain of each preset (the table in sampler/sampler.cc): order and
// min_tokens_to_keep across every truncation.
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

TEST(Stages, MinTokensToKeepBoundsEveryTruncation) {
  const std::vector<float> z = {10.0f, 0.0f, -1.0f, -2.0f, -3.0f, -4.0f};
  for (Preset preset : {Preset::kStandard, Preset::kHf, Preset::kLlamaCpp}) {
    for (int stage = 0; stage < 4; ++stage) {
      SamplingParams p;
      p.preset = preset;
      p.min_tokens_to_keep = 3;
      if (stage == 0) p.top_k = 1;
      if (stage == 1) p.top_p = 0.01f;
      if (stage == 2) p.min_p = 0.9f;
      if (stage == 3) p.typical_p = 0.01f;
      Sampler sampler;
      const std::vector<float> dist = DenseDistribution(sampler, z, p);
      int kept = 0;
      for (float x : dist) kept += x > 0;
      EXPECT_GE(kept, 3) << static_cast<int>(preset) << " stage " << stage;
      if (stage < 3) {
        EXPECT_EQ(kept, 3);
        EXPECT_GT(dist[2], 0.0f);  // the best three, in logit order
      }
    }
  }
}

TEST(Stages, OrderDiffersBetweenPresets) {
  // STANDARD applies min-p after temperature, LLAMA_CPP on the untempered logits: with
  // T = 4 the tail survives min-p 0.3 in STANDARD but not in LLAMA_CPP.
  const std::vector<float> z = {2.0f, 0.0f, -0.5f};
  SamplingParams p;
  p.temperature = 4.0f;
  p.min_p = 0.3f;
  Sampler sampler;
  const std::vector<float> standard = DenseDistribution(sampler, z, p);
  p.preset = Preset::kLlamaCpp;
  const std::vector<float> llama = DenseDistribution(sampler, z, p);
  EXPECT_GT(standard[1], 0.0f);
  EXPECT_GT(standard[2], 0.0f);
  EXPECT_EQ(llama[1], 0.0f);  // 0 < 2 + log(0.3) = 0.796
  EXPECT_EQ(llama[2], 0.0f);
  EXPECT_EQ(llama[0], 1.0f);
}

}  // namespace
}  // namespace tokensampler::sampler
