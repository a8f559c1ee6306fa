// What RL training reads from a result: the kept set, the rank and the values of chosen
// tokens, in each logprobs mode, against brute force over the same row; and the vLLM
// preset's own expectations (vLLM tests/v1/sample/test_sampler.py: all logits 1e-2,
// V = 1024, 20 output tokens; and tests/v1/sample/test_topk_topp_sampler.py).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sampler/sampler.h"
#include "sampler/stages/bitmask.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<SamplingParams> Pipelines() {
  std::vector<SamplingParams> out;
  for (Preset preset : {Preset::kStandard, Preset::kHf, Preset::kLlamaCpp, Preset::kVllm}) {
    SamplingParams p;
    p.preset = preset;
    p.seed = 7;
    out.push_back(p);  // the whole row
    p.temperature = 0.7f;
    p.top_k = 40;
    p.top_p = 0.9f;
    out.push_back(p);  // a sparse set
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.001f;
    out.push_back(p);  // a large set (densified)
    p.temperature = 0.0f;
    p.min_p = 0.0f;
    out.push_back(p);  // greedy
  }
  return out;
}

std::string Label(const SamplingParams& p, size_t v, LogprobsMode mode) {
  return absl::StrCat("preset ", static_cast<int>(p.preset), " T ", p.temperature, " top_k ",
                      p.top_k, " min_p ", p.min_p, " V ", v, " mode ", static_cast<int>(mode));
}

TEST(KeptSet, EqualsTheSupportOfDistribution) {
  Sampler sampler;
  for (size_t v : {1u, 33u, 1000u, 32000u}) {
    const std::vector<float> row = testing::TiedRow(v, static_cast<uint32_t>(v));
    for (SamplingParams p : Pipelines()) {
      p.return_kept_set = true;
      const std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
      SampleResult r;
      ASSERT_TRUE(sampler.Sample(LogitsView::Float32(row), p, 1, &r).ok());
      ASSERT_EQ(r.kept_set.size(), stages::BitmaskBytes(v));
      const uint8_t* bits = reinterpret_cast<const uint8_t*>(r.kept_set.data());
      size_t mismatches = 0;
      for (size_t i = 0; i < v; ++i) mismatches += stages::BitmaskAllows(bits, i) != (dist[i] > 0);
      EXPECT_EQ(mismatches, 0u) << Label(p, v, p.logprobs_mode);
      EXPECT_TRUE(stages::BitmaskAllows(bits, static_cast<size_t>(r.samples[0].token_id)));
    }
  }
}

TEST(KeptSet, EmptyWhenNotAsked) {
  Sampler sampler;
  const std::vector<float> row = testing::NormalRow(100, 1);
  SampleResult r;
  r.kept_set = "stale";
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(row), SamplingParams(), 0, &r).ok());
  EXPECT_TRUE(r.kept_set.empty());
  EXPECT_EQ(r.samples[0].rank, 0);
  EXPECT_TRUE(r.samples[0].token_logprobs.empty());
}

// The value of every token under `mode`, by brute force from the row and the reported
// distribution: raw log-softmax (double), the raw logits, log p, and processed logits
// (the caller's logits over T where p > 0; no stage edits logits in Pipelines()).
std::vector<double> Values(const std::vector<float>& row, const std::vector<float>& dist,
                           const SamplingParams& p, LogprobsMode mode) {
  double max = -kInf;
  for (float z : row) max = std::max(max, static_cast<double>(z));
  double sum = 0.0;
  for (float z : row) sum += std::exp(z - max);
  std::vector<double> out(row.size());
  const bool greedy = p.temperature == 0.0f;
  for (size_t i = 0; i < row.size(); ++i) {
    switch (mode) {
      case LogprobsMode::kRaw:
        out[i] = row[i] - max - std::log(sum);
        break;
      case LogprobsMode::kRawLogits:
        out[i] = row[i];
        break;
      case LogprobsMode::kProcessed:
        out[i] = std::log(static_cast<double>(dist[i]));
        break;
      case LogprobsMode::kProcessedLogits:
        out[i] = dist[i] > 0 ? (greedy ? row[i] : row[i] / p.temperature) : -kInf;
        break;
    }
  }
  return out;
}

TEST(Rank, MatchesABruteForceCountInEveryMode) {
  Sampler sampler;
  for (size_t v : {1u, 33u, 1000u, 32000u}) {
    const std::vector<float> row = testing::TiedRow(v, static_cast<uint32_t>(v) + 3);
    std::vector<int32_t> asked = {0, static_cast<int32_t>(v / 2), static_cast<int32_t>(v - 1)};
    for (SamplingParams p : Pipelines()) {
      const std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
      for (LogprobsMode mode : {LogprobsMode::kRaw, LogprobsMode::kProcessed,
                                LogprobsMode::kRawLogits, LogprobsMode::kProcessedLogits}) {
        p.logprobs_mode = mode;
        p.logprob_token_ids = asked;
        p.num_samples = 3;
        SampleResult r;
        ASSERT_TRUE(sampler.Sample(LogitsView::Float32(row), p, 5, &r).ok());
        const std::vector<double> values = Values(row, dist, p, mode);
        for (const Sample& s : r.samples) {
          const int32_t t = s.token_id;
          // Brute force on the values the result reports (float), ties against it.
          std::vector<float> reported(v);
          for (size_t i = 0; i < v; ++i) reported[i] = static_cast<float>(values[i]);
          if (mode == LogprobsMode::kProcessed) {
            for (size_t i = 0; i < v; ++i) reported[i] = dist[i];  // p orders like log p
          }
          if (mode == LogprobsMode::kRaw) {
            for (size_t i = 0; i < v; ++i) reported[i] = row[i];  // same order as logprobs
          }
          int32_t want = 0;
          for (size_t i = 0; i < v; ++i) want += reported[i] >= reported[t];
          EXPECT_EQ(s.rank, want) << Label(p, v, mode) << " token " << t;
          EXPECT_NEAR(s.logprob, values[t], 1e-4 * std::max(1.0, std::fabs(values[t])))
              << Label(p, v, mode);
          ASSERT_EQ(s.token_logprobs.size(), asked.size());
          for (size_t j = 0; j < asked.size(); ++j) {
            EXPECT_EQ(s.token_logprobs[j].token_id, asked[j]);
            const double w = values[asked[j]];
            if (std::isinf(w)) {
              EXPECT_EQ(s.token_logprobs[j].logprob, -kInf) << Label(p, v, mode);
            } else {
              EXPECT_NEAR(s.token_logprobs[j].logprob, w, 1e-4 * std::max(1.0, std::fabs(w)))
                  << Label(p, v, mode) << " asked " << asked[j];
            }
          }
        }
      }
    }
  }
}

TEST(Rank, TiesCountAgainstTheSampledToken) {
  Sampler sampler;
  const std::vector<float> row = {1.0f, 3.0f, 3.0f, 3.0f, 0.0f};
  SamplingParams p;
  p.temperature = 0.0f;  // argmax: token 1, tied with 2 and 3
  p.top_logprobs = 1;
  p.logprobs_mode = LogprobsMode::kRawLogits;
  SampleResult r;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(row), p, 0, &r).ok());
  EXPECT_EQ(r.samples[0].token_id, 1);
  EXPECT_EQ(r.samples[0].rank, 3);
  EXPECT_EQ(r.samples[0].logprob, 3.0f);
  ASSERT_EQ(r.samples[0].top_logprobs.size(), 1u);
  EXPECT_EQ(r.samples[0].top_logprobs[0].logprob, 3.0f);
}

// A bitmask against the allowed-ids path through every path of the pipeline, on every
// SIMD target: tests/sampler/pipeline_targets_test.cc (BitmaskSamplesLikeTheAllowedIdsPath).

TEST(Bitmask, AllZeroIsEveryTokenMasked) {
  Sampler sampler;
  const std::vector<float> row = testing::NormalRow(100, 2);
  std::vector<uint8_t> mask(stages::BitmaskBytes(100), 0);
  mask[12] = 0xf0;  // bits 100..103: past V, ignored
  SamplingParams p;
  p.allowed_token_bitmask = {mask.data(), mask.size()};
  SampleResult r;
  const absl::Status s = sampler.Sample(LogitsView::Float32(row), p, 0, &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "logits: every token is masked");
}

// --- PRESET_VLLM: vLLM's rules and its tests' expectations. ---

SamplingParams Vllm() {
  SamplingParams p;
  p.preset = Preset::kVllm;
  return p;
}

// test_sampler_min_p: one dominant logit (10) among 1e-2: min_p 0.1 keeps it alone,
// min_p 0 keeps all.
TEST(VllmPreset, MinPKeepsTheDominantToken) {
  Sampler sampler;
  std::vector<float> row(1024, 1e-2f);
  row[0] = 10.0f;
  SamplingParams p = Vllm();
  p.min_p = 0.1f;
  std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
  EXPECT_EQ(dist[0], 1.0f);
  p.min_p = 0.0f;
  dist = testing::DenseDistribution(sampler, row, p);
  EXPECT_EQ(std::count_if(dist.begin(), dist.end(), [](float x) { return x > 0; }), 1024);
}

// vLLM cuts min-p before top-p (HF after): on {.4, .3, .1, .1, .1} with min_p 0.3 and
// top_p 0.5, vLLM keeps {.4, .3} after min-p, renormalised {.571, .429}, and top-p then
// removes .429 (<= 1 - .5): only token 0. HF's top-p first keeps {.4, .3}, min-p both.
TEST(VllmPreset, MinPComesBeforeTopP) {
  Sampler sampler;
  const std::vector<float> row = testing::LogOf({0.4f, 0.3f, 0.1f, 0.1f, 0.1f});
  SamplingParams p = Vllm();
  p.min_p = 0.3f;
  p.top_p = 0.5f;
  std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
  EXPECT_EQ(dist, (std::vector<float>{1, 0, 0, 0, 0}));
  p.preset = Preset::kHf;
  dist = testing::DenseDistribution(sampler, row, p);
  EXPECT_NEAR(dist[0], 0.4 / 0.7, 1e-6);
  EXPECT_NEAR(dist[1], 0.3 / 0.7, 1e-6);
}

// Top-k keeps every token tied with the k-th (vLLM's `logits < kth` mask).
TEST(VllmPreset, TopKKeepsTies) {
  Sampler sampler;
  const std::vector<float> row = {3.0f, 2.0f, 2.0f, 2.0f, 1.0f};
  SamplingParams p = Vllm();
  p.top_k = 2;
  const std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
  EXPECT_GT(dist[3], 0.0f);
  EXPECT_EQ(dist[4], 0.0f);
}

// A temperature below 1e-5 is greedy (vLLM's _SAMPLING_EPS), lowest id on ties.
TEST(VllmPreset, TinyTemperatureIsGreedy) {
  Sampler sampler;
  const std::vector<float> row = {1.0f, 4.0f, 4.0f, 2.0f};
  SamplingParams p = Vllm();
  p.temperature = 9e-6f;
  std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
  EXPECT_EQ(dist, (std::vector<float>{0, 1, 0, 0}));
  p.temperature = 2e-5f;  // sampled: the two tied maxima share the mass
  dist = testing::DenseDistribution(sampler, row, p);
  EXPECT_EQ(dist[1], 0.5f);
  EXPECT_EQ(dist[2], 0.5f);
}

// test_sampler_logit_bias: the biased token's logit is 1e-2 + bias (seen as its share of
// the mass); a bias beyond 100 is clamped to 100.
TEST(VllmPreset, LogitBiasAddsAndIsClamped) {
  Sampler sampler;
  const std::vector<float> row(1024, 1e-2f);
  const std::vector<int32_t> asked = {5, 6};
  for (float bias : {-0.1f, 1.2f}) {
    const std::vector<LogitBias> b = {{5, bias}};
    SamplingParams p = Vllm();
    p.logit_bias = b;
    p.logprobs_mode = LogprobsMode::kProcessedLogits;
    p.logprob_token_ids = asked;
    SampleResult r;
    ASSERT_TRUE(sampler.Sample(LogitsView::Float32(row), p, 0, &r).ok());
    EXPECT_FLOAT_EQ(r.samples[0].token_logprobs[0].logprob, 1e-2f + bias);
    EXPECT_FLOAT_EQ(r.samples[0].token_logprobs[1].logprob, 1e-2f);
  }
  // 1000 -> 100; -inf -> -100, which still leaves token 1 of a two-token row a
  // probability (e^-100 / (1 + e^-100) > 0 in float): a clamp, not a ban.
  const std::vector<float> pair = {1e-2f, 1e-2f};
  const std::vector<int32_t> both = {0, 1};
  for (const LogitBias& b : {LogitBias{0, 1000.0f}, LogitBias{1, -kInf}}) {
    const std::vector<LogitBias> one = {b};
    SamplingParams p = Vllm();
    p.logit_bias = one;
    p.logprobs_mode = LogprobsMode::kProcessedLogits;
    p.logprob_token_ids = both;
    SampleResult r;
    ASSERT_TRUE(sampler.Sample(LogitsView::Float32(pair), p, 0, &r).ok());
    EXPECT_FLOAT_EQ(r.samples[0].token_logprobs[b.token_id].logprob,
                    1e-2f + (b.bias > 0 ? 100.0f : -100.0f));
  }
}

// test_sampler_min_tokens_penalty / presence / repetition through the whole pipeline:
// the prompt counts for repetition only.
TEST(VllmPreset, PenaltiesSplitPromptAndOutput) {
  Sampler sampler;
  const std::vector<float> row(1024, 1e-2f);
  const std::vector<int32_t> context = {10, 11, 12, 20, 20, 21};  // prompt 3, output 3
  SamplingParams p = Vllm();
  p.context_token_ids = context;
  p.num_prompt_tokens = 3;
  p.presence_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.repetition_penalty = 2.0f;
  p.logprobs_mode = LogprobsMode::kProcessedLogits;
  const std::vector<int32_t> asked = {10, 20, 21, 30};
  p.logprob_token_ids = asked;
  SampleResult r;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(row), p, 0, &r).ok());
  const auto& v = r.samples[0].token_logprobs;
  EXPECT_FLOAT_EQ(v[0].logprob, 1e-2f / 2);                      // prompt: repetition only
  EXPECT_FLOAT_EQ(v[1].logprob, 1e-2f / 2 - 0.5f * 2 - 2.0f);   // output x2
  EXPECT_FLOAT_EQ(v[2].logprob, 1e-2f / 2 - 0.5f - 2.0f);       // output x1
  EXPECT_FLOAT_EQ(v[3].logprob, 1e-2f);                          // unseen
  // STANDARD counts presence and frequency over the whole context.
  p.preset = Preset::kStandard;
  ASSERT_TRUE(sampler.Sample(LogitsView::Float32(row), p, 0, &r).ok());
  EXPECT_FLOAT_EQ(r.samples[0].token_logprobs[0].logprob, 1e-2f / 2 - 0.5f - 2.0f);
}

TEST(VllmPreset, MinTokensMasksStopIdsUntilTheOutputIsLongEnough) {
  Sampler sampler;
  const std::vector<float> row(1024, 1e-2f);
  std::vector<int32_t> context(25, 3);  // prompt 5, output 20
  const std::vector<int32_t> stops = {2, 900};
  for (int32_t min_tokens : {5, 20, 21, 39}) {
    SamplingParams p = Vllm();
    p.context_token_ids = context;
    p.num_prompt_tokens = 5;
    p.min_tokens = min_tokens;
    p.stop_token_ids = stops;
    const std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
    const bool masked = min_tokens > 20;
    EXPECT_EQ(dist[2] == 0.0f, masked) << min_tokens;
    EXPECT_EQ(dist[900] == 0.0f, masked) << min_tokens;
    EXPECT_GT(dist[3], 0.0f);
  }
}

// --- vLLM's top-k / top-p expectations (vLLM tests/v1/sample/test_topk_topp_sampler.py:
// test_topk_impl_equivalence, the *_with_neginf_logits tests, test_few_valid_tokens_with_
// neginf, test_equal_logits_few_valid, test_topp_tie_break_deterministic), under
// PRESET_VLLM. Their rows: uniform or normal logits at V = 128 * 1024 or 128256, a
// fraction masked to -inf as a grammar bitmask would. ---

size_t Kept(const std::vector<float>& dist) {
  return static_cast<size_t>(
      std::count_if(dist.begin(), dist.end(), [](float x) { return x > 0; }));
}

// test_topk_impl_equivalence: k = V is top-k off, and top-k with the no-op top_p = 1
// keeps the k best (uniform logits: no ties).
TEST(VllmTopKTopP, TopKOfVIsOffAndTopPOfOneIsANoOp) {
  Sampler sampler;
  const size_t v = 128 * 1024;
  const std::vector<float> row = testing::UniformRow(v, 33);
  SamplingParams p = Vllm();
  p.top_k = static_cast<int32_t>(v);
  const std::vector<float> all = testing::DenseDistribution(sampler, row, p);
  p.top_k = 0;
  const std::vector<float> off = testing::DenseDistribution(sampler, row, p);
  EXPECT_EQ(Kept(all), v);
  EXPECT_EQ(Kept(off), v);
  for (size_t i = 0; i < v; i += 997) EXPECT_NEAR(all[i], off[i], 1e-6f * off[i]) << i;
  std::vector<float> sorted(row);
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  for (int32_t k = 1; k < 10; ++k) {
    p.top_k = k;
    p.top_p = 1.0f;
    const std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
    EXPECT_EQ(Kept(dist), static_cast<size_t>(k));
    for (size_t i = 0; i < v; ++i) {
      if (dist[i] > 0) {
        EXPECT_GE(row[i], sorted[k - 1]) << "k " << k;
      }
    }
  }
}

// test_{topk,topp,topk_topp}_with_neginf_logits: with half, 90% or 99% of a normal row
// masked (by a bitmask here), top-k keeps at most k (exactly min(k, allowed) here: no
// ties), and every cut keeps at least one token.
TEST(VllmTopKTopP, MostlyMaskedRowsKeepAtMostKAndAtLeastOne) {
  Sampler sampler;
  const size_t v = 128256;
  std::mt19937 gen(42);
  for (double fraction : {0.5, 0.9, 0.99}) {
    const std::vector<float> row =
        testing::NormalRow(v, static_cast<uint32_t>(fraction * 100), 1.0f);
    std::vector<uint8_t> mask(stages::BitmaskBytes(v), 0);
    std::bernoulli_distribution masked(fraction);
    size_t allowed = 0;
    for (size_t i = 0; i < v; ++i) {
      if (!masked(gen)) {
        stages::BitmaskSet(mask.data(), i);
        ++allowed;
      }
    }
    for (int32_t k : {1, 17, 49}) {
      for (float top_p : {1.0f, 0.1f, 0.55f, 0.9f}) {
        SamplingParams p = Vllm();
        p.allowed_token_bitmask = {mask.data(), mask.size()};
        p.top_k = k;
        p.top_p = top_p;
        const std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
        const size_t kept = Kept(dist);
        EXPECT_GE(kept, 1u);
        EXPECT_LE(kept, static_cast<size_t>(k));
        if (top_p == 1.0f) {
          EXPECT_EQ(kept, std::min(allowed, static_cast<size_t>(k)));
        }
        for (size_t i = 0; i < v; ++i) {
          if (dist[i] > 0) {
            ASSERT_TRUE(stages::BitmaskAllows(mask.data(), i)) << i;
          }
        }
      }
    }
  }
}

// test_few_valid_tokens_with_neginf: five finite logits in 128256; k = 50 keeps all
// five, k = 3 at most three (three here), top-p 0.9 at least one.
TEST(VllmTopKTopP, FewValidTokens) {
  Sampler sampler;
  const size_t v = 128256;
  std::vector<float> row(v, -kInf);
  const std::vector<float> finite = testing::NormalRow(5, 8, 1.0f);
  const size_t at[] = {7, 900, 4096, 77777, 128255};
  for (size_t j = 0; j < 5; ++j) row[at[j]] = finite[j];
  SamplingParams p = Vllm();
  p.top_k = 50;
  EXPECT_EQ(Kept(testing::DenseDistribution(sampler, row, p)), 5u);
  p.top_k = 3;
  EXPECT_EQ(Kept(testing::DenseDistribution(sampler, row, p)), 3u);
  p.top_k = 0;
  p.top_p = 0.9f;
  EXPECT_GE(Kept(testing::DenseDistribution(sampler, row, p)), 1u);
}

// test_equal_logits_few_valid: 1, 2, 5, 10 or 50 allowed tokens, all at logit 1.0, with
// k = n - 1 and/or p = 0.95: never an empty set. vLLM's top-k keeps ties, so all n stay;
// top-p 0.95 removes the ascending prefix whose float32 cumsum is <= 0.05: one token of
// 20 equal ones would be 0.05, so with n = 50 (0.02 each) exactly two go.
TEST(VllmTopKTopP, EqualLogitsFewValid) {
  Sampler sampler;
  const size_t v = 128256;
  for (size_t n : {1u, 2u, 5u, 10u, 50u}) {
    std::vector<float> row(v, -kInf);
    for (size_t j = 0; j < n; ++j) row[(j * 2477) % v] = 1.0f;
    for (int mode = 0; mode < 3; ++mode) {
      SamplingParams p = Vllm();
      if (mode != 1) p.top_k = static_cast<int32_t>(std::max<size_t>(1, n - 1));
      if (mode != 0) p.top_p = 0.95f;
      const size_t want = mode == 0 || n < 50 ? n : n - 2;
      EXPECT_EQ(Kept(testing::DenseDistribution(sampler, row, p)), want)
          << "n " << n << " mode " << mode;
    }
  }
}

// test_topp_tie_break_deterministic: 1000 tokens at 1.0, 1000 at 0.0, the rest -inf,
// p = 0.5. The 1000 low tokens hold 1 / (1 + e) = 0.269 of the mass, so top-p removes
// them and about (0.5 - 0.269) / (e / (1000 (1 + e))) = 316 of the tied top group; the
// survivors are the lowest ids of that group, in index order, the same on every call.
TEST(VllmTopKTopP, TopPTieBreakKeepsTheLowestIds) {
  Sampler sampler;
  const size_t v = 128256;
  std::vector<float> row(v, -kInf);
  for (size_t i = 0; i < 1000; ++i) row[i] = 1.0f;
  for (size_t i = 1000; i < 2000; ++i) row[i] = 0.0f;
  SamplingParams p = Vllm();
  p.top_p = 0.5f;
  const std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
  const size_t kept = Kept(dist);
  EXPECT_GE(kept, 683u);
  EXPECT_LE(kept, 685u);
  for (size_t i = 0; i < kept; ++i) EXPECT_GT(dist[i], 0.0f) << i;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(testing::DenseDistribution(sampler, row, p), dist);
  }
}

}  // namespace
}  // namespace tokensampler::sampler
