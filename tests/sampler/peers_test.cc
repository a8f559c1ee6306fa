// The peers' own numeric test cases, run under the matching preset:
//  - llama.cpp tests/test-sampling.cpp (temperature, top-k, top-p, min-p, typical,
//    penalties, sampler queue, XTC, top-n-sigma, DRY) under Preset::kLlamaCpp;
//  - transformers tests/generation/test_logits_process.py (temperature, repetition
//    penalty, top-k, top-p, min-p, typical) under Preset::kHf.
// Only the numbers are taken from those files; the code is ours.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/sampler.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler {
namespace {

using testing::DenseDistribution;
using testing::LogOf;

// Expects the processed distribution, descending, to be `expected` within `tolerance`.
void ExpectSorted(const std::vector<float>& logits, const SamplingParams& params,
                  const std::vector<float>& expected, float tolerance) {
  Sampler sampler;
  DistributionResult d;
  ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(logits), params, &d).ok());
  ASSERT_EQ(d.probs.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(d.probs[i], expected[i], tolerance) << "position " << i;
  }
}

// Expects exactly the tokens of `kept` (in any order) to have probability > 0.
void ExpectKept(const std::vector<float>& logits, const SamplingParams& params,
                std::vector<int32_t> kept) {
  Sampler sampler;
  DistributionResult d;
  ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(logits), params, &d).ok());
  std::vector<int32_t> got = d.token_ids;
  std::sort(got.begin(), got.end());
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(got, kept);
}

SamplingParams Llama() {
  SamplingParams p;
  p.preset = Preset::kLlamaCpp;
  return p;
}

SamplingParams Hf() {
  SamplingParams p;
  p.preset = Preset::kHf;
  return p;
}

const std::vector<float> kFour = {0.1f, 0.2f, 0.3f, 0.4f};
constexpr float kLlamaTolerance = 1e-5f;  // llama.cpp compares with 1e-5
constexpr float kHfTolerance = 1e-3f;     // transformers uses rtol = atol = 1e-3

// --- llama.cpp tests/test-sampling.cpp ---

TEST(LlamaCpp, Temperature) {
  Sampler sampler;
  SamplingParams p = Llama();
  const std::vector<float> one = DenseDistribution(sampler, LogOf(kFour), p);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(one[i], kFour[i], kLlamaTolerance);
  p.temperature = 0.0f;
  EXPECT_EQ(DenseDistribution(sampler, LogOf(kFour), p), (std::vector<float>{0, 0, 0, 1}));
}

TEST(LlamaCpp, TopK) {
  SamplingParams p = Llama();
  p.top_k = 1;
  ExpectSorted(LogOf(kFour), p, {1.0f}, kLlamaTolerance);
  p.top_k = 3;
  ExpectSorted(LogOf(kFour), p, {0.44444f, 0.33333f, 0.22222f}, kLlamaTolerance);
  p.top_k = 4;
  ExpectSorted(LogOf(kFour), p, {0.4f, 0.3f, 0.2f, 0.1f}, kLlamaTolerance);
  p.top_k = 0;
  ExpectSorted(LogOf(kFour), p, {0.4f, 0.3f, 0.2f, 0.1f}, kLlamaTolerance);
}

TEST(LlamaCpp, TopP) {
  SamplingParams p = Llama();
  // llama.cpp's p = 0 case keeps the best token; our API requires p > 0, so the
  // smallest p stands in for it.
  p.top_p = 1e-6f;
  ExpectSorted(LogOf(kFour), p, {1.0f}, kLlamaTolerance);
  p.top_p = 0.7f;
  ExpectSorted(LogOf(kFour), p, {0.571429f, 0.428571f}, kLlamaTolerance);
  p.top_p = 0.8f;
  ExpectSorted(LogOf(kFour), p, {0.44444f, 0.33333f, 0.22222f}, kLlamaTolerance);
  p.top_p = 1.0f;
  ExpectSorted(LogOf(kFour), p, {0.4f, 0.3f, 0.2f, 0.1f}, kLlamaTolerance);
}

TEST(LlamaCpp, MinP) {
  struct Case {
    float min_p;
    std::vector<float> expected;
  };
  const Case cases[] = {
      {0.00f, {0.4f, 0.3f, 0.2f, 0.1f}},
      {0.24f, {0.4f, 0.3f, 0.2f, 0.1f}},
      {0.26f, {0.4f / 0.9f, 0.3f / 0.9f, 0.2f / 0.9f}},
      {0.49f, {0.4f / 0.9f, 0.3f / 0.9f, 0.2f / 0.9f}},
      {0.51f, {0.4f / 0.7f, 0.3f / 0.7f}},
      {0.74f, {0.4f / 0.7f, 0.3f / 0.7f}},
      {0.76f, {1.0f}},
      {1.00f, {1.0f}},
      // llama.cpp also runs min_p = 1.05; our API rejects min_p > 1 (validation_test).
  };
  for (const Case& c : cases) {
    SamplingParams p = Llama();
    p.min_p = c.min_p;
    ExpectSorted(LogOf(kFour), p, c.expected, kLlamaTolerance);
  }
}

TEST(LlamaCpp, Typical) {
  // llama.cpp's test does not renormalise after typical; we compare the kept set and
  // its renormalised probabilities.
  SamplingParams p = Llama();
  p.typical_p = 0.5f;
  ExpectSorted(LogOf({0.97f, 0.01f, 0.01f, 0.01f}), p, {1.0f}, kLlamaTolerance);
  ExpectSorted(LogOf({0.4f, 0.2f, 0.2f, 0.2f}), p, {1.0f / 3, 1.0f / 3, 1.0f / 3},
               kLlamaTolerance);
  ExpectKept(LogOf({0.4f, 0.2f, 0.2f, 0.2f}), p, {1, 2, 3});
}

TEST(LlamaCpp, Penalties) {
  struct Case {
    std::vector<int32_t> context;
    std::vector<float> expected;
    float repeat, frequency, presence;
  };
  const Case cases[] = {
      {{0}, {0, 0.25f, 0.25f, 0.25f, 0.25f}, 50.0f, 0.0f, 0.0f},
      {{0, 1, 2}, {0, 0, 0, 0.5f, 0.5f}, 50.0f, 0.0f, 0.0f},
      {{0, 1, 2, 0, 0}, {0, 0, 0, 0.5f, 0.5f}, 50.0f, 0.0f, 0.0f},
      {{0}, {0.000011f, 0.249997f, 0.249997f, 0.249997f, 0.249997f}, 1.0f, 5.0f, 5.0f},
      {{0, 1, 2}, {0.000023f, 0.000023f, 0.000023f, 0.499966f, 0.499966f}, 1.0f, 5.0f, 5.0f},
      {{0, 1, 2, 0, 0}, {0.000000f, 0.000023f, 0.000023f, 0.499977f, 0.499977f}, 1.0f, 5.0f,
       5.0f},
  };
  const std::vector<float> uniform = LogOf({0.2f, 0.2f, 0.2f, 0.2f, 0.2f});
  for (const Case& c : cases) {
    SamplingParams p = Llama();
    p.context_token_ids = c.context;
    p.repetition_penalty = c.repeat;
    p.frequency_penalty = c.frequency;
    p.presence_penalty = c.presence;
    Sampler sampler;
    const std::vector<float> dist = DenseDistribution(sampler, uniform, p);
    for (size_t i = 0; i < dist.size(); ++i) EXPECT_NEAR(dist[i], c.expected[i], kLlamaTolerance);
  }
}

// test_sampler_queue: logits log(id) over 10000 tokens (token 0 is -inf). The expected
// sizes follow the formulas of that test, rewritten here, for every stage sequence our
// fixed chain order (top-k -> top-p -> min-p) can express.
TEST(LlamaCpp, SamplerQueue) {
  const int n = 10000;
  std::vector<float> logits(n);
  for (int i = 0; i < n; ++i) logits[i] = std::log(static_cast<float>(i));
  struct Case {
    std::string stages;
    int top_k;
    float top_p, min_p;
  };
  const Case cases[] = {
      {"k", 10000, 1.0f, 1.0f},       {"k", 1, 1.0f, 1.0f},
      {"m", 10000, 1.0f, 1.0f},       {"m", 10000, 1.0f, 1e-12f},
      {"k", 100, 1.0f, 1.0f},         {"p", 10000, 0.0003f, 1.0f},
      {"p", 10000, 0.8f, 1.0f},       {"m", 10000, 1.0f, 9997.9f / 9999.0f},
      {"m", 10000, 1.0f, 0.1f},       {"kp", 100, 0.8f, 0.1f},
      {"km", 100, 0.8f, 0.1f},        {"pm", 100, 0.8f, 0.1f},
      {"kpm", 100, 0.8f, 0.1f},
  };
  for (const Case& c : cases) {
    SamplingParams p = Llama();
    int size = n - 1;  // token 0 (logit -inf) is masked from the start
    int min_id = 0;
    for (char stage : c.stages) {
      if (stage == 'k') {
        p.top_k = c.top_k;
        size = std::min(size, c.top_k);
        min_id = std::max(min_id, n - c.top_k);
      } else if (stage == 'p') {
        p.top_p = c.top_p;
        const int divisor = n * (n - 1) / 2 - min_id * (min_id - 1) / 2;
        const int target = static_cast<int>(std::ceil(c.top_p * divisor));
        int cumsum = 0;
        size = 0;
        min_id = n;
        do {
          --min_id;
          ++size;
          cumsum += min_id;
        } while (cumsum < target);
      } else {
        p.min_p = c.min_p;
        int expected = static_cast<int>(std::ceil((1.0f - c.min_p) * n));
        size = std::min(std::max(expected, 1), size);
      }
    }
    Sampler sampler;
    DistributionResult d;
    ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(logits), p, &d).ok());
    ASSERT_EQ(static_cast<int>(d.token_ids.size()), size) << c.stages << " " << c.min_p;
    EXPECT_EQ(d.token_ids.front(), n - 1);
    EXPECT_EQ(d.token_ids.back(), n - size);
  }
}

// test_xtc: probabilities {.4, .3, .2, .1}, probability .99 (our coin for seed 42, step 0
// is 0.327, so the cut happens). llama.cpp reports the survivors' probabilities without
// renormalising (XTC only drops the top tokens); our distribution renormalises them.
TEST(LlamaCpp, Xtc) {
  struct Case {
    float threshold;
    std::vector<float> expected;  // llama.cpp's numbers, descending
  };
  const Case cases[] = {{0.09f, {0.1f}},
                        {0.19f, {0.2f, 0.1f}},
                        {0.29f, {0.3f, 0.2f, 0.1f}},
                        {0.39f, {0.4f, 0.3f, 0.2f, 0.1f}}};
  for (const Case& c : cases) {
    SamplingParams p = Llama();
    p.xtc_probability = 0.99f;
    p.xtc_threshold = c.threshold;
    p.seed = 42;
    float sum = 0.0f;
    for (float e : c.expected) sum += e;
    std::vector<float> renormalised;
    for (float e : c.expected) renormalised.push_back(e / sum);
    ExpectSorted(LogOf({0.4f, 0.3f, 0.2f, 0.1f}), p, renormalised, kLlamaTolerance);
  }
}

// test_top_n_sigma.
TEST(LlamaCpp, TopNSigma) {
  SamplingParams p = Llama();
  p.top_n_sigma = 1.0f;
  ExpectSorted(LogOf(kFour), p, {0.571429f, 0.428571f}, kLlamaTolerance);
  ExpectKept(LogOf(kFour), p, {2, 3});
  p.top_n_sigma = 3.0f;
  ExpectSorted(LogOf(kFour), p, {0.4f, 0.3f, 0.2f, 0.1f}, kLlamaTolerance);
}

// test_dry: (multiplier, base, allowed_length, penalty_last_n, breakers).
TEST(LlamaCpp, Dry) {
  struct Case {
    std::vector<float> probs;
    std::vector<int32_t> history;
    std::vector<float> expected;  // by token id
    float multiplier, base;
    int32_t allowed_length, last_n;
    std::vector<std::vector<int32_t>> breakers;
  };
  const Case cases[] = {
      {{0.25f, 0.25f, 0.25f, 0.25f},
       {0, 1, 2, 0, 1},
       {0.296923f, 0.296923f, 0.109232f, 0.296923f},
       1.0f,
       1.1f,
       2,
       5,
       {}},
      {{0.2f, 0.2f, 0.2f, 0.2f, 0.2f},
       {0, 1, 2, 0, 1},
       {0.241818f, 0.241818f, 0.032727f, 0.241818f, 0.241818f},
       2.0f,
       1.1f,
       2,
       5,
       {}},
      {{0.2f, 0.2f, 0.2f, 0.2f, 0.2f},
       {0, 1, 3, 4, 0, 1},
       {0.2f, 0.2f, 0.2f, 0.2f, 0.2f},
       1.0f,
       1.1f,
       2,
       6,
       {{3}}},
      {{0.2f, 0.2f, 0.2f, 0.2f, 0.2f},
       {0, 1, 2, 3, 4, 0, 1},
       {0.2f, 0.2f, 0.2f, 0.2f, 0.2f},
       1.0f,
       1.1f,
       4,
       7,
       {}},
  };
  for (const Case& c : cases) {
    std::vector<absl::Span<const int32_t>> breakers(c.breakers.begin(), c.breakers.end());
    SamplingParams p = Llama();
    p.context_token_ids = c.history;
    p.dry.multiplier = c.multiplier;
    p.dry.base = c.base;
    p.dry.allowed_length = c.allowed_length;
    p.dry.penalty_last_n = c.last_n;
    p.dry.sequence_breakers = breakers;
    Sampler sampler;
    const std::vector<float> dist = DenseDistribution(sampler, LogOf(c.probs), p);
    ASSERT_EQ(dist.size(), c.expected.size());
    for (size_t i = 0; i < dist.size(); ++i) {
      EXPECT_NEAR(dist[i], c.expected[i], kLlamaTolerance) << "token " << i;
    }
  }
  // The breaker matters: without it, token 3 would extend "0 1" and be penalised.
  SamplingParams p = Llama();
  const std::vector<int32_t> history = {0, 1, 3, 4, 0, 1};
  p.context_token_ids = history;
  p.dry.multiplier = 1.0f;
  p.dry.base = 1.1f;
  Sampler sampler;
  EXPECT_LT(DenseDistribution(sampler, LogOf({0.2f, 0.2f, 0.2f, 0.2f, 0.2f}), p)[3], 0.1f);
}

// The penalty window (llama.cpp's penalty_last_n): only the last n tokens count. With the
// rule of test_penalties' (1, 5, 5) case, a window of 1 over {0, 1, 2} penalises token 2
// alone.
TEST(LlamaCpp, PenaltyWindow) {
  SamplingParams p = Llama();
  const std::vector<int32_t> history = {0, 1, 2};
  p.context_token_ids = history;
  p.frequency_penalty = 5.0f;
  p.presence_penalty = 5.0f;
  p.penalty_last_n = 1;
  Sampler sampler;
  const std::vector<float> dist =
      DenseDistribution(sampler, LogOf({0.2f, 0.2f, 0.2f, 0.2f, 0.2f}), p);
  const double small = std::exp(-10.0) / (4.0 + std::exp(-10.0));
  EXPECT_NEAR(dist[2], small, kLlamaTolerance);
  for (int i : {0, 1, 3, 4}) EXPECT_NEAR(dist[i], (1.0 - small) / 4.0, kLlamaTolerance);
}

// --- transformers tests/generation/test_logits_process.py ---

TEST(Transformers, TemperatureSharpensAndSmooths) {
  std::vector<float> flat(20, 1.0f / 20);
  std::vector<float> peaked = flat;
  peaked[5] = 1.0f / 20 + 0.1f;
  peaked[10] = 1.0f / 20 - 0.4f;
  Sampler sampler;
  SamplingParams p = Hf();
  const std::vector<float> base = DenseDistribution(sampler, peaked, p);
  for (float t : {0.5f, 1.3f}) {
    p.temperature = t;
    const std::vector<float> uniform = DenseDistribution(sampler, flat, p);
    for (float x : uniform) EXPECT_NEAR(x, 0.05f, kHfTolerance);
    const std::vector<float> warped = DenseDistribution(sampler, peaked, p);
    const auto [bmin, bmax] = std::minmax_element(base.begin(), base.end());
    const auto [wmin, wmax] = std::minmax_element(warped.begin(), warped.end());
    if (t < 1.0f) {
      EXPECT_LT(*bmax, *wmax);
      EXPECT_GT(*bmin, *wmin);
    } else {
      EXPECT_GT(*bmax, *wmax);
      EXPECT_LT(*bmin, *wmin);
    }
  }
}

TEST(Transformers, RepetitionPenalty) {
  // Two rows of 10 uniform scores 0.1 with one special value; penalty 2.
  struct Case {
    int special;
    float value;
    std::vector<int32_t> context;
    std::vector<std::pair<int, float>> processed;
  };
  const Case cases[] = {
      {0, -0.1f, {0, 1}, {{0, -0.1f * 2}, {1, 0.1f / 2}}},
      {5, 0.4f, {5, 0}, {{0, 0.1f / 2}, {5, 0.4f / 2}}},
  };
  for (const Case& c : cases) {
    std::vector<float> scores(10, 0.1f);
    scores[c.special] = c.value;
    std::vector<double> expected(scores.begin(), scores.end());
    for (const auto& [id, value] : c.processed) expected[id] = value;
    double sum = 0.0;
    for (double z : expected) sum += std::exp(z);
    SamplingParams p = Hf();
    p.context_token_ids = c.context;
    p.repetition_penalty = 2.0f;
    Sampler sampler;
    const std::vector<float> dist = DenseDistribution(sampler, scores, p);
    for (size_t i = 0; i < 10; ++i) EXPECT_NEAR(dist[i], std::exp(expected[i]) / sum, 1e-6);
  }
}

TEST(Transformers, TopK) {
  std::vector<float> ramp(10), shifted(10);
  for (int i = 0; i < 10; ++i) {
    ramp[i] = static_cast<float>(i);
    shifted[i] = i < 5 ? i + 10.0f : static_cast<float>(i);
  }
  SamplingParams p = Hf();
  p.top_k = 3;
  ExpectKept(ramp, p, {7, 8, 9});
  ExpectKept(shifted, p, {2, 3, 4});
  // min_tokens_to_keep overrides k; a uniform row keeps every tied token.
  p.top_k = 1;
  p.min_tokens_to_keep = 3;
  ExpectKept(std::vector<float>(5, 0.2f), p, {0, 1, 2, 3, 4});
  ExpectKept({0, 1, 2, 3, 4}, p, {2, 3, 4});
}

TEST(Transformers, TopP) {
  SamplingParams p = Hf();
  p.top_p = 0.8f;
  ExpectKept(LogOf({0.3f, 0.1f, 0.1f, 0.5f}), p, {0, 3});
  ExpectKept(LogOf({0.15f, 0.3f, 0.3f, 0.25f}), p, {1, 2, 3});
  std::vector<float> ramp(10), extreme(10);
  for (int i = 0; i < 10; ++i) {
    ramp[i] = static_cast<float>(i - 5);
    extreme[i] = ramp[i] * 100.0f;
  }
  p.top_p = 0.9f;
  p.min_tokens_to_keep = 2;
  ExpectKept(ramp, p, {7, 8, 9});
  ExpectKept(extreme, p, {8, 9});
}

TEST(Transformers, MinP) {
  SamplingParams p = Hf();
  p.min_p = 0.05f;
  ExpectKept(LogOf({0.9f, 0.0274f, 0.047f, 0.0274f}), p, {0, 2});
  ExpectKept(LogOf({0.15f, 0.3f, 0.3f, 0.25f}), p, {0, 1, 2, 3});
  ExpectKept(LogOf({0.97f, 0.01f, 0.01f, 0.01f}), p, {0});
  std::vector<float> ramp(10), extreme(10);
  for (int i = 0; i < 10; ++i) {
    ramp[i] = static_cast<float>(i - 5);
    extreme[i] = ramp[i] * 100.0f;
  }
  p.min_p = 0.9f;
  p.min_tokens_to_keep = 2;
  ExpectKept(ramp, p, {8, 9});
  ExpectKept(extreme, p, {8, 9});
}

TEST(Transformers, Typical) {
  SamplingParams p = Hf();
  p.typical_p = 0.5f;
  ExpectKept(LogOf({0.97f, 0.01f, 0.01f, 0.01f}), p, {0});
  ExpectKept(LogOf({0.4f, 0.2f, 0.2f, 0.2f}), p, {1, 2, 3});
  p.min_tokens_to_keep = 3;
  ExpectKept(std::vector<float>(5, 0.2f), p, {0, 1, 2, 3, 4});
  std::vector<float> ramp(10), extreme(10);
  for (int i = 0; i < 10; ++i) {
    ramp[i] = static_cast<float>(i - 5);
    extreme[i] = ramp[i] * 100.0f;
  }
  p.typical_p = 0.7f;
  p.min_tokens_to_keep = 2;
  ExpectKept(ramp, p, {8, 9});
  ExpectKept(extreme, p, {8, 9});
}

}  // namespace
}  // namespace tokensampler::sampler
