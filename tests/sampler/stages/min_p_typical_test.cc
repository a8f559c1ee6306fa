// The min-p and typical stage (sampler/stages/min_p_typical.cc).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/kernels.h"
#include "sampler/sampler.h"
#include "sampler/stages/stages.h"
#include "sampler/workspace.h"
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

// VLLM's min-p from the logits (MinPByLogits) leaves exactly the candidates, order and
// weights that the exp pass over the row, Collect(by_weight) and MinPProb(keep_order)
// leave, whenever it decides; it decides on ordinary rows.
TEST(Stages, MinPByLogitsLeavesWhatTheExpPassLeaves) {
  size_t decided = 0, runs = 0;
  for (size_t v : {7u, 1000u, 32000u, 128256u}) {
    std::vector<std::vector<float>> rows = {NormalRow(v, 3, 3.0f), testing::TiedRow(v, 4)};
    std::vector<float> masked = NormalRow(v, 5, 1.0f);
    for (size_t i = 0; i < v; i += 3) masked[i] = -kInf;
    rows.push_back(masked);
    for (const std::vector<float>& row : rows) {
      const float max = kernels::MaxScalar(row.data(), v);
      for (float min_p : {1e-6f, 0.001f, 0.05f, 0.3f, 0.9f, 1.0f}) {
        for (float t : {0.5f, 1.0f, 1.7f}) {
          for (size_t min_keep : {size_t{1}, size_t{3}}) {
            Workspace fast, slow;
            for (Workspace* ws : {&fast, &slow}) {
              ws->vocab = v;
              ws->z = row.data();
              ws->w.assign(v, 0.0f);
            }
            ++runs;
            if (!stages::MinPByLogits(fast, min_p, min_keep, max, t)) continue;
            ++decided;
            kernels::ExpSum(row.data(), v, max, t, slow.w.data());
            Collect(slow, /*by_weight=*/true);
            stages::MinPProb(slow, min_p, min_keep, /*keep_order=*/true);
            ASSERT_EQ(fast.n, slow.n) << "V " << v << " min_p " << min_p << " T " << t;
            for (size_t i = 0; i < fast.n; ++i) {
              ASSERT_EQ(fast.ids[i], slow.ids[i]);
              ASSERT_EQ(fast.w[fast.ids[i]], slow.w[slow.ids[i]]);
            }
          }
        }
      }
    }
  }
  // The undecided runs include those where fewer than min_keep = 3 tokens pass (min_p
  // 0.9 and 1 on most rows): the exp pass then fills up to min_keep.
  EXPECT_GT(decided, runs * 3 / 4);
}

// A weight at the cut itself (p = min_p * p_max up to rounding) is not decided from the
// logits: the float rounding of p = w / mass could go either way there.
TEST(Stages, MinPByLogitsDefersAWeightAtTheCut) {
  const std::vector<float> row = {0.0f, std::log(0.25f), -3.0f, -1.0f};
  Workspace ws;
  ws.vocab = row.size();
  ws.z = row.data();
  ws.w.assign(row.size(), 0.0f);
  EXPECT_FALSE(stages::MinPByLogits(ws, 0.25f, 1, 0.0f, 1.0f));
  EXPECT_TRUE(stages::MinPByLogits(ws, 0.2f, 1, 0.0f, 1.0f));
  EXPECT_EQ(ws.n, 3u);  // 1, e^-1 and 0.25 pass 0.2; e^-3 does not
  EXPECT_FALSE(stages::MinPByLogits(ws, 1e-30f, 1, 0.0f, 1.0f));  // below 1e-20: the exp pass
}

}  // namespace
}  // namespace tokensampler::sampler
