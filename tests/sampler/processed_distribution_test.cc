// ProcessedDistribution (sampler/processed_distribution.h): lookups, draws and top
// logprobs of hand-made one-hot, sparse and dense distributions, checked against the
// public inverse CDF (PickInverseCdf) over the same probabilities in id order.
#include "sampler/processed_distribution.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/draw.h"
#include "sampler/exp.h"
#include "sampler/sampler.h"

namespace tokensampler::sampler {
namespace {

// Probabilities by id, as the distribution reports them.
std::vector<float> ProbsById(const ProcessedDistribution& d) {
  std::vector<float> p(d.vocab());
  for (size_t i = 0; i < p.size(); ++i) p[i] = d.Prob(static_cast<int32_t>(i));
  return p;
}

ProcessedDistribution Sparse(size_t vocab, std::vector<int32_t> ids, std::vector<float> w) {
  ProcessedDistribution d;
  double total = 0.0;
  for (float x : w) total += x;
  const size_t n = ids.size();
  d.SetSparse(vocab, &ids, &w, n, total);
  return d;
}

ProcessedDistribution Dense(std::vector<float> w) {
  ProcessedDistribution d;
  double total = 0.0;
  for (float x : w) total += x;
  const size_t vocab = w.size();
  d.SetDense(vocab, &w, total, nullptr);
  return d;
}

TEST(ProcessedDistribution, HandCheckedLookups) {
  const ProcessedDistribution s = Sparse(6, {1, 3, 4}, {1.0f, 2.0f, 1.0f});
  EXPECT_FALSE(s.one_hot());
  EXPECT_FALSE(s.dense());
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.Prob(3), 0.5f);
  EXPECT_EQ(s.Prob(1), 0.25f);
  EXPECT_EQ(s.Prob(0), 0.0f);
  EXPECT_EQ(s.Prob(5), 0.0f);
  const ProcessedDistribution d = Dense({0.0f, 3.0f, 1.0f});
  EXPECT_TRUE(d.dense());
  EXPECT_EQ(d.Prob(1), 0.75f);
  EXPECT_EQ(d.Prob(0), 0.0f);
  ProcessedDistribution g;
  g.SetOneHot(4, 2);
  EXPECT_TRUE(g.one_hot());
  EXPECT_EQ(g.Prob(2), 1.0f);
  EXPECT_EQ(g.Prob(1), 0.0f);
  EXPECT_EQ(g.Draw(1, 2, 3), 2);
}

// Draw and Draws are the inverse CDF over the probabilities in id order.
void ExpectDrawsFollowTheWalk(const ProcessedDistribution& d) {
  const std::vector<float> probs = ProbsById(d);
  ProcessedDistribution::DrawTable table;
  std::vector<int32_t> tokens(37);
  for (uint64_t step = 0; step < 20; ++step) {
    d.Draws(99, step, absl::MakeSpan(tokens), &table);
    for (uint32_t s = 0; s < tokens.size(); ++s) {
      const int64_t want = PickInverseCdf(probs, DrawUniform(99, step, s));
      EXPECT_EQ(d.Draw(99, step, s), want);
      EXPECT_EQ(tokens[s], want);
      EXPECT_GT(probs[tokens[s]], 0.0f);
    }
  }
}

TEST(ProcessedDistribution, DrawsAreTheInverseCdfInIdOrder) {
  ExpectDrawsFollowTheWalk(Sparse(10, {0, 2, 7, 9}, {0.5f, 1.5f, 1e-30f, 3.0f}));
  ExpectDrawsFollowTheWalk(Dense({0.0f, 1.0f, 0.0f, 2.0f, 4.0f}));
  // Large enough for PickDense's block-sum path (>= 4 blocks of 1024).
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> w(9000);
  for (float& x : w) x = kernels::ExpNonPositive(normal(rng) - 12.0f);
  ExpectDrawsFollowTheWalk(Dense(w));
  std::vector<int32_t> ids;
  std::vector<float> sw;
  for (int32_t i = 0; i < 6000; ++i) {
    ids.push_back(3 * i);
    sw.push_back(w[i]);
  }
  ExpectDrawsFollowTheWalk(Sparse(18000, ids, sw));
}

TEST(ProcessedDistribution, NormaliseInPlaceChangesNoAnswer) {
  ProcessedDistribution d = Sparse(8, {1, 2, 6}, {0.3f, 0.3f, 0.7f});
  const std::vector<float> before = ProbsById(d);
  std::vector<int32_t> tokens_before;
  for (uint32_t s = 0; s < 50; ++s) tokens_before.push_back(d.Draw(7, 1, s));
  d.NormaliseInPlace();
  EXPECT_EQ(ProbsById(d), before);
  for (uint32_t s = 0; s < 50; ++s) EXPECT_EQ(d.Draw(7, 1, s), tokens_before[s]);
  const absl::Span<const float> p = d.weights();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[2], before[6]);
}

TEST(ProcessedDistribution, TopLogprobsDescendingTiesByIdPaddedWithZeros) {
  const ProcessedDistribution s = Sparse(6, {1, 3, 4}, {1.0f, 2.0f, 1.0f});
  std::vector<TokenLogprob> top;
  s.TopLogprobs(5, &top);
  ASSERT_EQ(top.size(), 5u);
  const int32_t want_ids[] = {3, 1, 4, 0, 2};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(top[i].token_id, want_ids[i]) << i;
  EXPECT_FLOAT_EQ(top[0].logprob, std::log(0.5f));
  EXPECT_FLOAT_EQ(top[1].logprob, std::log(0.25f));
  EXPECT_EQ(top[3].logprob, -std::numeric_limits<float>::infinity());
  ProcessedDistribution g;
  g.SetOneHot(4, 2);
  g.TopLogprobs(3, &top);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token_id, 2);
  EXPECT_EQ(top[0].logprob, 0.0f);
  EXPECT_EQ(top[1].token_id, 0);
  EXPECT_EQ(top[2].token_id, 1);
}

// Sampler::Process hands out the distribution Sample draws from: the same tokens, the
// same probabilities as Distribution.
TEST(ProcessedDistribution, SamplerProcessIsWhatSampleDrawsFrom) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> z(6000);
  for (float& x : z) x = normal(rng);
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_p = 0.9f;
  p.seed = 42;
  p.num_samples = 16;
  p.logprobs_mode = LogprobsMode::kProcessed;
  Sampler sampler;
  SampleResult r;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 3, &r).ok());
  DistributionResult dist;
  ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(z), p, &dist).ok());
  const absl::StatusOr<const ProcessedDistribution*> processed =
      sampler.Process(LogitsView::Float32(z), p);
  ASSERT_TRUE(processed.ok());
  const ProcessedDistribution& d = **processed;
  for (uint32_t s = 0; s < 16; ++s) {
    EXPECT_EQ(d.Draw(42, 3, s), r.samples[s].token_id);
    EXPECT_EQ(r.samples[s].logprob,
              static_cast<float>(std::log(static_cast<double>(d.Prob(r.samples[s].token_id)))));
  }
  for (size_t i = 0; i < dist.token_ids.size(); ++i) {
    EXPECT_EQ(d.Prob(dist.token_ids[i]), dist.probs[i]);
  }
  SamplingParams bad;
  bad.top_p = 2.0f;
  EXPECT_FALSE(sampler.Process(LogitsView::Float32(z), bad).ok());
}

}  // namespace
}  // namespace tokensampler::sampler
