// The pipeline: the lesson's numbers, invariants, greedy, logprobs, output format,
// extreme logits, and the client replay of the draw.
#include "sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/draw.h"
#include "tests/sampler/reference.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler {
namespace {

using testing::DenseDistribution;
using testing::NormalRow;

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> Softmax(const std::vector<float>& logits, float t = 1.0f) {
  Sampler sampler;
  SamplingParams p;
  p.temperature = t;
  return DenseDistribution(sampler, logits, p);
}

double Entropy(const std::vector<float>& p) {
  double h = 0.0;
  for (float x : p) {
    if (x > 0) h -= x * std::log(static_cast<double>(x));
  }
  return h;
}

TEST(Lesson, SoftmaxNumbers) {
  const std::vector<float> z = {2.0f, 1.0f, 0.1f};
  const std::vector<float> p = Softmax(z);
  EXPECT_NEAR(p[0], 0.659, 5e-4);
  EXPECT_NEAR(p[1], 0.242, 5e-4);
  EXPECT_NEAR(p[2], 0.099, 5e-4);
  const std::vector<float> cold = Softmax(z, 0.5f);
  EXPECT_NEAR(cold[0], 0.86, 5e-3);
  EXPECT_NEAR(cold[1], 0.12, 5e-3);
  EXPECT_NEAR(cold[2], 0.02, 5e-3);
  const std::vector<float> hot = Softmax(z, 2.0f);
  EXPECT_NEAR(hot[0], 0.50, 5e-3);
  EXPECT_NEAR(hot[1], 0.30, 5e-3);
  EXPECT_NEAR(hot[2], 0.19, 5e-3);
}

TEST(Lesson, TwoTokensGiveTheSigmoid) {
  for (float z0 : {-5.0f, -1.0f, 0.0f, 0.3f, 2.0f, 7.5f}) {
    for (float z1 : {-3.0f, 0.0f, 1.0f, 4.0f}) {
      const std::vector<float> p = Softmax({z0, z1});
      EXPECT_NEAR(p[0], 1.0 / (1.0 + std::exp(-(static_cast<double>(z0) - z1))), 1e-6);
    }
  }
}

TEST(Lesson, AddingAConstantChangesNothing) {
  const std::vector<float> z = NormalRow(1000, 1);
  const std::vector<float> base = Softmax(z);
  for (float c : {-100.0f, -1.0f, 0.5f, 64.0f, 1000.0f}) {
    std::vector<float> shifted = z;
    for (float& x : shifted) x += c;
    const std::vector<float> p = Softmax(shifted);
    for (size_t i = 0; i < z.size(); ++i) ASSERT_NEAR(p[i], base[i], 1e-6 + 1e-4 * base[i]);
  }
}

TEST(Lesson, LargeLogitsGiveNoNaN) {
  const std::vector<float> p = Softmax({1000.0f, 1000.0f, 999.0f});
  for (float x : p) EXPECT_FALSE(std::isnan(x));
  EXPECT_NEAR(p[0], std::exp(1.0) / (2 * std::exp(1.0) + 1), 1e-6);
}

TEST(Extremes, HugeAndInfiniteLogits) {
  for (const std::vector<float>& z :
       {std::vector<float>{1e4f, -1e4f, 1e4f - 1.0f}, std::vector<float>{1e30f, 1e30f, -1e30f},
        std::vector<float>{3.4e38f, -3.4e38f, 0.0f}, std::vector<float>{-kInf, 5.0f, -kInf},
        std::vector<float>{-1e4f, -1e4f - 2.0f}}) {
    for (float t : {0.0f, 0.01f, 1.0f, 100.0f, 1e30f}) {
      Sampler sampler;
      SamplingParams p;
      p.temperature = t;
      p.top_logprobs = 3;
      p.logprobs_mode = LogprobsMode::kRaw;
      const std::vector<float> dist = DenseDistribution(sampler, z, p);
      double sum = 0.0;
      for (float x : dist) {
        ASSERT_FALSE(std::isnan(x));
        sum += x;
      }
      EXPECT_NEAR(sum, 1.0, 1e-6);
      SampleResult r;
      ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 0, &r).ok());
      EXPECT_FALSE(std::isnan(r.samples[0].logprob));
      EXPECT_GT(dist[r.samples[0].token_id], 0.0f);
      for (const TokenLogprob& top : r.samples[0].top_logprobs) EXPECT_FALSE(std::isnan(top.logprob));
    }
  }
}

TEST(Invariants, NeverReordersSumsToOneAndEntropyGrowsWithT) {
  for (size_t n : {2u, 9u, 33u, 1000u, 32000u}) {
    const std::vector<float> z = NormalRow(n, static_cast<uint32_t>(n));
    double last_entropy = -1.0;
    for (float t : {0.05f, 0.3f, 0.7f, 1.0f, 1.5f, 3.0f, 10.0f}) {
      const std::vector<float> p = Softmax(z, t);
      const double sum = std::accumulate(p.begin(), p.end(), 0.0);
      EXPECT_NEAR(sum, 1.0, 1e-6);
      for (size_t i = 0; i < n; ++i) {
        for (size_t j : {(i + 1) % n, (i * 7 + 3) % n}) {
          if (z[i] > z[j]) {
            ASSERT_GE(p[i], p[j]);  // order kept (ties may round equal)
          }
        }
      }
      const double h = Entropy(p);
      EXPECT_GT(h, last_entropy) << "n=" << n << " T=" << t;
      last_entropy = h;
    }
  }
}

TEST(Invariants, LowTemperatureApproachesOneHotAndHighApproachesUniform) {
  const std::vector<float> z = NormalRow(500, 3);
  const size_t best = std::max_element(z.begin(), z.end()) - z.begin();
  EXPECT_GT(Softmax(z, 1e-3f)[best], 0.999f);
  const std::vector<float> flat = Softmax(z, 1e6f);
  for (float p : flat) ASSERT_NEAR(p, 1.0 / 500, 1e-7);
}

TEST(Invariants, NegativeInfinityIsNeverDrawn) {
  std::vector<float> z = NormalRow(64, 5, 0.1f);
  for (size_t i = 0; i < z.size(); i += 2) z[i] = -kInf;
  Sampler sampler;
  SamplingParams p;
  p.num_samples = 2000;
  p.temperature = 5.0f;
  SampleResult r;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 3, &r).ok());
  for (const auto& s : r.samples) ASSERT_EQ(s.token_id % 2, 1);
  const std::vector<float> dist = DenseDistribution(sampler, z, p);
  for (size_t i = 0; i < z.size(); i += 2) EXPECT_EQ(dist[i], 0.0f);
}

TEST(Greedy, ArgmaxLowestIdAfterPenaltiesEverySampleTheSame) {
  const std::vector<float> z = {1.0f, 3.0f, 2.0f, 3.0f, 2.9f};
  for (Preset preset : {Preset::kStandard, Preset::kHf, Preset::kLlamaCpp}) {
    Sampler sampler;
    SamplingParams p;
    p.temperature = 0.0f;
    p.preset = preset;
    p.num_samples = 5;
    p.logprobs_mode = LogprobsMode::kProcessed;
    p.top_logprobs = 3;
    SampleResult r;
    ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 0, &r).ok());
    for (const auto& s : r.samples) {
      EXPECT_EQ(s.token_id, 1);
      EXPECT_EQ(s.logprob, 0.0f);
      ASSERT_EQ(s.top_logprobs.size(), 3u);
      EXPECT_EQ(s.top_logprobs[0].token_id, 1);
      EXPECT_EQ(s.top_logprobs[0].logprob, 0.0f);
      EXPECT_EQ(s.top_logprobs[1].token_id, 0);  // probability 0: lowest ids next
      EXPECT_EQ(s.top_logprobs[1].logprob, -kInf);
      EXPECT_EQ(s.top_logprobs[2].token_id, 2);
    }
    DistributionResult d;
    ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(z), p, &d).ok());
    EXPECT_EQ(d.token_ids, std::vector<int32_t>{1});
    EXPECT_EQ(d.probs, std::vector<float>{1.0f});
    // A penalty on token 1 moves the argmax to token 3.
    const std::vector<int32_t> context = {1};
    p.context_token_ids = context;
    p.presence_penalty = 0.5f;
    ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 0, &r).ok());
    EXPECT_EQ(r.samples[0].token_id, 3);
  }
}

TEST(Logprobs, RawIsLogSoftmaxOfTheGivenLogits) {
  const std::vector<float> z = NormalRow(2000, 11);
  const std::vector<double> expected = testing::ReferenceLogSoftmax(z);
  Sampler sampler;
  SamplingParams p;
  p.top_k = 5;
  p.temperature = 0.5f;
  const std::vector<LogitBias> bias = {{7, 4.0f}};
  p.logit_bias = bias;
  p.top_logprobs = 20;
  p.num_samples = 4;
  SampleResult r;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 9, &r).ok());
  std::vector<int32_t> order(z.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return z[a] > z[b]; });
  for (const auto& s : r.samples) {
    EXPECT_NEAR(s.logprob, expected[s.token_id], 1e-5);
    ASSERT_EQ(s.top_logprobs.size(), 20u);
    for (size_t i = 0; i < 20; ++i) {
      EXPECT_EQ(s.top_logprobs[i].token_id, order[i]);
      EXPECT_NEAR(s.top_logprobs[i].logprob, expected[order[i]], 1e-5);
    }
  }
}

TEST(Logprobs, ProcessedIsLogOfTheDistributionSampled) {
  const std::vector<float> z = NormalRow(3000, 12, 1.0f);
  Sampler sampler;
  SamplingParams p;
  p.top_p = 0.5f;
  p.temperature = 0.8f;
  p.logprobs_mode = LogprobsMode::kProcessed;
  p.top_logprobs = 20;
  p.num_samples = 8;
  DistributionResult d;
  ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(z), p, &d).ok());
  SampleResult r;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 1, &r).ok());
  for (const auto& s : r.samples) {
    const size_t k = std::find(d.token_ids.begin(), d.token_ids.end(), s.token_id) -
                     d.token_ids.begin();
    ASSERT_LT(k, d.token_ids.size());
    EXPECT_FLOAT_EQ(s.logprob, std::log(d.probs[k]));
    ASSERT_EQ(s.top_logprobs.size(), 20u);
    for (size_t i = 0; i < 20; ++i) {
      if (i < d.token_ids.size()) {
        EXPECT_EQ(s.top_logprobs[i].token_id, d.token_ids[i]);
        EXPECT_FLOAT_EQ(s.top_logprobs[i].logprob, std::log(d.probs[i]));
      } else {
        EXPECT_EQ(s.top_logprobs[i].logprob, -std::numeric_limits<float>::infinity());
      }
    }
  }
}

TEST(Logprobs, PaddedWithZeroProbabilityTokensByLowestId) {
  const std::vector<float> z = {0.0f, 5.0f, 1.0f, 4.0f, 2.0f, 3.0f};
  Sampler sampler;
  SamplingParams p;
  p.top_k = 2;
  p.top_logprobs = 4;
  p.logprobs_mode = LogprobsMode::kProcessed;
  SampleResult r;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 0, &r).ok());
  const auto& top = r.samples[0].top_logprobs;
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].token_id, 1);
  EXPECT_EQ(top[1].token_id, 3);
  EXPECT_EQ(top[2].token_id, 0);
  EXPECT_EQ(top[2].logprob, -kInf);
  EXPECT_EQ(top[3].token_id, 2);
  // Never more entries than tokens.
  p.top_logprobs = 20;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 0, &r).ok());
  EXPECT_EQ(r.samples[0].top_logprobs.size(), 6u);
}

TEST(Distribution, SortedDescendingTiesByIdSumsToOne) {
  for (size_t n : {1u, 7u, 1000u, 128256u}) {
    const std::vector<float> z = testing::TiedRow(n, static_cast<uint32_t>(n));
    Sampler sampler;
    SamplingParams p;
    p.top_p = 0.9f;
    DistributionResult d;
    ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(z), p, &d).ok());
    ASSERT_EQ(d.token_ids.size(), d.probs.size());
    double sum = 0.0;
    for (size_t i = 0; i < d.probs.size(); ++i) {
      ASSERT_GT(d.probs[i], 0.0f);
      sum += d.probs[i];
      if (i > 0) {
        ASSERT_TRUE(d.probs[i - 1] > d.probs[i] ||
                    (d.probs[i - 1] == d.probs[i] && d.token_ids[i - 1] < d.token_ids[i]));
      }
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
}

// The radix sort skips a digit that is the same for every key: rows where every digit,
// or all but one, is constant must still come out complete, descending, ties by id.
TEST(Distribution, ConstantDigitsAndRemovedTokens) {
  for (size_t n : {1u, 5u, 3000u, 128256u}) {
    for (int shape = 0; shape < 3; ++shape) {
      std::vector<float> z(n, 0.5f);                                 // all equal
      if (shape == 1) {
        for (size_t i = 0; i < n; i += 3) z[i] = 1.5f;             // two values
      }
      if (shape == 2) {
        for (size_t i = 0; i < n; ++i) z[i] = static_cast<float>(i % 7);
      }
      Sampler sampler;
      SamplingParams p;
      std::vector<int32_t> banned;
      for (size_t i = 1; i < n; i += 5) banned.push_back(static_cast<int32_t>(i));
      p.banned_token_ids = banned;
      DistributionResult d;
      ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(z), p, &d).ok());
      ASSERT_EQ(d.token_ids.size(), n - banned.size()) << n << " " << shape;
      std::vector<int32_t> expected;
      for (size_t i = 0; i < n; ++i) {
        if (i % 5 != 1) expected.push_back(static_cast<int32_t>(i));
      }
      std::stable_sort(expected.begin(), expected.end(),
                       [&z](int32_t a, int32_t b) { return z[a] > z[b]; });
      EXPECT_EQ(d.token_ids, expected) << n << " " << shape;
      for (size_t i = 1; i < d.probs.size(); ++i) {
        ASSERT_EQ(d.probs[i - 1] == d.probs[i], z[d.token_ids[i - 1]] == z[d.token_ids[i]]);
      }
    }
  }
}

// Any client can replay a sampled token from the Distribution response, seed and step.
TEST(Draw, ClientReplayFromTheDistribution) {
  for (size_t n : {1u, 2u, 33u, 1000u, 32000u}) {
    for (int config = 0; config < 4; ++config) {
      const std::vector<float> z = NormalRow(n, static_cast<uint32_t>(n * 10 + config));
      SamplingParams p;
      p.seed = 1234567 + config;
      p.num_samples = 7;
      if (config == 1) p.top_k = 40;
      if (config == 2) p.top_p = 0.95f;
      if (config == 3) p.min_p = 0.01f;
      Sampler sampler;
      DistributionResult d;
      ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(z), p, &d).ok());
      std::vector<float> by_id(n, 0.0f);
      for (size_t i = 0; i < d.token_ids.size(); ++i) by_id[d.token_ids[i]] = d.probs[i];
      for (uint64_t step : {0ull, 1ull, 99ull}) {
        SampleResult r;
        ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, step, &r).ok());
        for (uint32_t s = 0; s < 7; ++s) {
          const int64_t replay = PickInverseCdf(by_id, DrawUniform(p.seed, step, s));
          ASSERT_EQ(r.samples[s].token_id, replay) << n << " " << config << " " << step;
        }
        // num_samples = 1 takes the single-walk path; index 0 must agree.
        SamplingParams one = p;
        one.num_samples = 1;
        SampleResult r1;
        ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), one, step, &r1).ok());
        EXPECT_EQ(r1.samples[0].token_id, r.samples[0].token_id);
      }
    }
  }
}

TEST(Draw, IndependentOfOtherRowsAndSamplerHistory) {
  const std::vector<float> z = NormalRow(32000, 77);
  SamplingParams p;
  p.seed = 5;
  p.top_p = 0.9f;
  p.num_samples = 3;
  Sampler fresh;
  SampleResult expected;
  ASSERT_TRUE(fresh.Sample(LogitsView::Float32(z), p, 17, &expected).ok());
  Sampler used;
  SampleResult other;
  for (size_t n : {128256u, 5u, 32000u, 1u}) {
    SamplingParams q;
    q.top_k = 3;
    ASSERT_TRUE(used.Sample(LogitsView::Float32(NormalRow(n, 1)), q, 0, &other).ok());
  }
  SampleResult r;
  ASSERT_TRUE(used.Sample(LogitsView::Float32(z), p, 17, &r).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.samples[i].token_id, expected.samples[i].token_id);
}

TEST(Inputs, BFloat16AndFloat16GiveTheDistributionOfTheirValues) {
  const std::vector<float> z = NormalRow(1000, 21);
  std::vector<uint16_t> bf16(z.size()), fp16(z.size());
  std::vector<float> bf16_values(z.size()), fp16_values(z.size());
  for (size_t i = 0; i < z.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &z[i], sizeof(u));
    bf16[i] = static_cast<uint16_t>(u >> 16);
    const uint32_t back = static_cast<uint32_t>(bf16[i]) << 16;
    std::memcpy(&bf16_values[i], &back, sizeof(float));
    const _Float16 h = static_cast<_Float16>(z[i]);
    std::memcpy(&fp16[i], &h, sizeof(uint16_t));
    fp16_values[i] = static_cast<float>(h);
  }
  SamplingParams p;
  p.top_k = 50;
  p.seed = 3;
  p.num_samples = 10;
  Sampler sampler;
  struct Case {
    LogitsView view;
    const std::vector<float>* values;
  };
  for (const Case& c : {Case{{bf16.data(), z.size(), Dtype::kBFloat16}, &bf16_values},
                        Case{{fp16.data(), z.size(), Dtype::kFloat16}, &fp16_values}}) {
    DistributionResult got, want;
    ASSERT_TRUE(sampler.Distribution(c.view, p, &got).ok());
    ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(*c.values), p, &want).ok());
    EXPECT_EQ(got.token_ids, want.token_ids);
    EXPECT_EQ(got.probs, want.probs);
    SampleResult a, b;
    ASSERT_TRUE(sampler.Sample(c.view, p, 4, &a).ok());
    ASSERT_TRUE(sampler.Sample(LogitsView::Float32(*c.values), p, 4, &b).ok());
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(a.samples[i].token_id, b.samples[i].token_id);
      EXPECT_EQ(a.samples[i].logprob, b.samples[i].logprob);
    }
  }
}

TEST(Inputs, CallerLogitsAreNotModified) {
  std::vector<float> z = NormalRow(100, 8);
  const std::vector<float> copy = z;
  SamplingParams p;
  const std::vector<int32_t> banned = {1, 2};
  const std::vector<int32_t> context = {3, 3, 4};
  p.banned_token_ids = banned;
  p.context_token_ids = context;
  p.repetition_penalty = 1.3f;
  p.top_k = 5;
  Sampler sampler;
  SampleResult r;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 0, &r).ok());
  EXPECT_EQ(z, copy);
}

TEST(Samples, NumSamplesUseIndicesZeroToN) {
  const std::vector<float> z = NormalRow(100, 30, 1.0f);
  SamplingParams p;
  p.seed = 99;
  p.num_samples = 16;
  Sampler sampler;
  SampleResult many;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 8, &many).ok());
  ASSERT_EQ(many.samples.size(), 16u);
  const std::vector<float> dist = DenseDistribution(sampler, z, p);
  for (uint32_t i = 0; i < 16; ++i) {
    EXPECT_EQ(many.samples[i].token_id, PickInverseCdf(dist, DrawUniform(99, 8, i)));
  }
}

}  // namespace
}  // namespace tokensampler::sampler

namespace tokensampler::sampler {
namespace {

TEST(Logprobs, RawIsTheSameOnEveryPipelinePath) {
  // Untouched logits reuse a T = 1 pass of the pipeline when there is one; every path
  // must report the same log-softmax.
  const std::vector<float> z = NormalRow(5000, 13);
  const std::vector<double> expected = testing::ReferenceLogSoftmax(z);
  for (Preset preset : {Preset::kStandard, Preset::kHf, Preset::kLlamaCpp}) {
    for (float t : {0.0f, 0.5f, 1.0f}) {
      for (int top_k : {0, 10}) {
        SamplingParams p;
        p.preset = preset;
        p.temperature = t;
        p.top_k = top_k;
        p.num_samples = 3;
        p.top_logprobs = 2;
        Sampler sampler;
        SampleResult r;
        ASSERT_TRUE(sampler.Sample(LogitsView::Float32(z), p, 0, &r).ok());
        for (const auto& s : r.samples) {
          EXPECT_NEAR(s.logprob, expected[s.token_id], 1e-5);
          EXPECT_NEAR(s.top_logprobs[0].logprob,
                      *std::max_element(expected.begin(), expected.end()), 1e-5);
        }
      }
    }
  }
}

}  // namespace
}  // namespace tokensampler::sampler

namespace tokensampler::sampler {
namespace {

TEST(Draw, SameTokensAtAnyThreadCount) {
  // Each worker owns a Sampler; the rows it happens to process, and in what order,
  // must not change any token.
  std::vector<std::vector<float>> rows;
  for (uint32_t i = 0; i < 12; ++i) rows.push_back(NormalRow(1000 + 3000 * i, i));
  SamplingParams p;
  p.seed = 31337;
  p.top_p = 0.9f;
  p.temperature = 0.9f;
  p.num_samples = 4;
  auto run = [&](size_t row, Sampler& sampler) {
    SampleResult r;
    EXPECT_TRUE(sampler.Sample(LogitsView::Float32(rows[row]), p, row, &r).ok());
    std::vector<int32_t> tokens;
    for (const auto& s : r.samples) tokens.push_back(s.token_id);
    return tokens;
  };
  std::vector<std::vector<int32_t>> serial(rows.size());
  Sampler one;
  for (size_t i = 0; i < rows.size(); ++i) serial[i] = run(i, one);
  for (size_t threads : {2u, 3u}) {
    std::vector<std::vector<int32_t>> parallel(rows.size());
    std::vector<std::thread> workers;
    for (size_t t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        Sampler sampler;
        // Walk the rows backwards so each worker sees a different history.
        for (size_t i = rows.size(); i-- > 0;) {
          if (i % threads == t) parallel[i] = run(i, sampler);
        }
      });
    }
    for (std::thread& w : workers) w.join();
    EXPECT_EQ(parallel, serial) << threads << " threads";
  }
}

}  // namespace
}  // namespace tokensampler::sampler
