// Every bad input gets INVALID_ARGUMENT naming the field and the value; nothing crashes.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/params.h"
#include "sampler/sampler.h"

namespace tokensampler::sampler {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Runs both entry points and checks they fail with exactly `message`.
void ExpectInvalid(const std::vector<float>& logits, const SamplingParams& params,
                   const std::string& message) {
  Sampler sampler;
  SampleResult samples;
  const absl::Status s1 = sampler.Sample(LogitsView::Float32(logits), params, 0, &samples);
  EXPECT_EQ(s1.code(), absl::StatusCode::kInvalidArgument) << s1;
  EXPECT_EQ(s1.message(), message);
  DistributionResult dist;
  const absl::Status s2 = sampler.Distribution(LogitsView::Float32(logits), params, &dist);
  EXPECT_EQ(s2.code(), absl::StatusCode::kInvalidArgument) << s2;
  EXPECT_EQ(s2.message(), message);
  // The same sampler keeps working after an error.
  const std::vector<float> good = {1.0f, 2.0f};
  EXPECT_TRUE(sampler.Sample(LogitsView::Float32(good), SamplingParams{}, 0, &samples).ok());
}

const std::vector<float> kRow(50, 0.5f);

TEST(Validation, Logits) {
  std::vector<float> row(40, 1.0f);
  row[17] = kNaN;
  ExpectInvalid(row, {}, "logits[17]: must not be NaN");
  row[17] = 1.0f;
  row[3] = kInf;
  ExpectInvalid(row, {}, "logits[3]: must not be +inf");
  ExpectInvalid({}, {}, "logits: must not be empty");
  ExpectInvalid(std::vector<float>(5, -kInf), {}, "logits: every token is masked");
}

TEST(Validation, EveryTokenMaskedByTheParams) {
  SamplingParams p;
  const std::vector<int32_t> banned = {0, 1, 2};
  p.banned_token_ids = banned;
  ExpectInvalid({1, 2, 3}, p, "logits: every token is masked");
  SamplingParams q;
  const std::vector<int32_t> allowed = {1};
  const std::vector<float> row = {0.0f, -kInf, 3.0f};
  q.allowed_token_ids = allowed;
  ExpectInvalid(row, q, "logits: every token is masked");
  SamplingParams r;
  const std::vector<LogitBias> bias = {{0, -kInf}};
  r.logit_bias = bias;
  ExpectInvalid({1.0f}, r, "logits: every token is masked");
}

TEST(Validation, TooLargeVocabulary) {
  EXPECT_EQ(ValidateParams({}, static_cast<size_t>(kMaxVocab) + 1).message(),
            "logits: size 1048577 exceeds the maximum vocabulary size 1048576");
  EXPECT_TRUE(ValidateParams({}, static_cast<size_t>(kMaxVocab)).ok());
}

TEST(Validation, ScalarFields) {
  struct Case {
    void (*set)(SamplingParams*);
    const char* message;
  };
  const Case cases[] = {
      {[](SamplingParams* p) { p->temperature = -1; },
       "params.temperature: must be finite and >= 0, got -1"},
      {[](SamplingParams* p) { p->temperature = kNaN; },
       "params.temperature: must be finite and >= 0, got nan"},
      {[](SamplingParams* p) { p->temperature = kInf; },
       "params.temperature: must be finite and >= 0, got inf"},
      {[](SamplingParams* p) { p->top_p = 1.5f; }, "params.top_p: must be in (0, 1], got 1.5"},
      {[](SamplingParams* p) { p->top_p = 0.0f; }, "params.top_p: must be in (0, 1], got 0"},
      {[](SamplingParams* p) { p->top_p = kNaN; }, "params.top_p: must be in (0, 1], got nan"},
      {[](SamplingParams* p) { p->min_p = -0.5f; }, "params.min_p: must be in [0, 1], got -0.5"},
      {[](SamplingParams* p) { p->min_p = 1.05f; }, "params.min_p: must be in [0, 1], got 1.05"},
      {[](SamplingParams* p) { p->top_k = -3; }, "params.top_k: must be >= 0, got -3"},
      {[](SamplingParams* p) { p->typical_p = 0.0f; },
       "params.typical_p: must be in (0, 1], got 0"},
      {[](SamplingParams* p) { p->typical_p = 2.0f; },
       "params.typical_p: must be in (0, 1], got 2"},
      {[](SamplingParams* p) { p->repetition_penalty = -1.0f; },
       "params.repetition_penalty: must be finite and >= 0, got -1"},
      {[](SamplingParams* p) { p->repetition_penalty = kInf; },
       "params.repetition_penalty: must be finite and >= 0, got inf"},
      {[](SamplingParams* p) { p->presence_penalty = kNaN; },
       "params.presence_penalty: must be finite, got nan"},
      {[](SamplingParams* p) { p->frequency_penalty = -kInf; },
       "params.frequency_penalty: must be finite, got -inf"},
      {[](SamplingParams* p) { p->top_logprobs = 21; },
       "params.top_logprobs: must be in [0, 20], got 21"},
      {[](SamplingParams* p) { p->top_logprobs = -1; },
       "params.top_logprobs: must be in [0, 20], got -1"},
      {[](SamplingParams* p) { p->num_samples = 0; }, "params.num_samples: must be >= 1, got 0"},
      {[](SamplingParams* p) { p->num_samples = kMaxNumSamplesLibrary + 1; },
       "params.num_samples: must be <= 4096, got 4097"},
      {[](SamplingParams* p) { p->min_tokens_to_keep = 0; },
       "params.min_tokens_to_keep: must be >= 1, got 0"},
      {[](SamplingParams* p) { p->preset = static_cast<Preset>(9); },
       "params.preset: unknown value 9"},
      {[](SamplingParams* p) { p->logprobs_mode = static_cast<LogprobsMode>(5); },
       "params.logprobs_mode: unknown value 5"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.set(&p);
    ExpectInvalid(kRow, p, c.message);
    EXPECT_EQ(ValidateParams(p, kRow.size()).message(), c.message);
  }
}

TEST(Validation, TokenIdLists) {
  const std::vector<int32_t> bad = {1, 2, 99};
  const std::vector<int32_t> negative = {0, -1};
  SamplingParams p;
  p.allowed_token_ids = bad;
  ExpectInvalid(kRow, p, "params.allowed_token_ids[2]: token id 99 out of range [0, 50)");
  p = {};
  p.banned_token_ids = negative;
  ExpectInvalid(kRow, p, "params.banned_token_ids[1]: token id -1 out of range [0, 50)");
  p = {};
  const std::vector<int32_t> context = {0, 1, 2, 3, 70000};
  p.context_token_ids = context;
  ExpectInvalid(kRow, p, "context_token_ids[4]: token id 70000 out of range [0, 50)");
}

TEST(Validation, LogitBias) {
  SamplingParams p;
  const std::vector<LogitBias> out_of_range = {{1, 1.0f}, {70000, 1.0f}};
  p.logit_bias = out_of_range;
  ExpectInvalid(std::vector<float>(32000, 0.0f), p,
                "params.logit_bias[70000]: token id out of range [0, 32000)");
  const std::vector<LogitBias> nan_bias = {{5, kNaN}};
  p.logit_bias = nan_bias;
  ExpectInvalid(kRow, p, "params.logit_bias[5]: bias must be finite or -inf, got nan");
  const std::vector<LogitBias> inf_bias = {{5, kInf}};
  p.logit_bias = inf_bias;
  ExpectInvalid(kRow, p, "params.logit_bias[5]: bias must be finite or -inf, got inf");
  const std::vector<LogitBias> duplicate = {{5, 1.0f}, {7, 1.0f}, {5, 2.0f}};
  p.logit_bias = duplicate;
  ExpectInvalid(kRow, p, "params.logit_bias[5]: duplicate token id");
  std::vector<LogitBias> many;  // the sorted path for large maps
  for (int32_t i = 0; i < 40; ++i) many.push_back({i, 0.5f});
  many.push_back({17, 1.0f});
  p.logit_bias = many;
  ExpectInvalid(kRow, p, "params.logit_bias[17]: duplicate token id");
  many.pop_back();
  p.logit_bias = many;
  EXPECT_TRUE(ValidateParams(p, kRow.size()).ok());
  const std::vector<LogitBias> overflow = {{0, 3e38f}};
  p.logit_bias = overflow;
  ExpectInvalid({3e38f, 0.0f}, p,
                "params.logit_bias[0]: logit 3e+38 + bias 3e+38 overflows to +inf");
}

TEST(Validation, PenaltyOverflow) {
  SamplingParams p;
  const std::vector<int32_t> context = {0, 0};
  p.context_token_ids = context;
  p.frequency_penalty = -3e38f;
  ExpectInvalid({1.0f, 0.0f}, p,
                "context_token_ids: the penalties turn the logit of token 0 into +inf");
}

TEST(Validation, BadDtypeAndNullData) {
  Sampler sampler;
  SampleResult out;
  const float one = 1.0f;
  LogitsView view{&one, 1, static_cast<Dtype>(7)};
  EXPECT_EQ(sampler.Sample(view, {}, 0, &out).message(), "logits: unknown dtype 7");
  LogitsView null_view{nullptr, 3, Dtype::kFloat32};
  EXPECT_EQ(sampler.Sample(null_view, {}, 0, &out).message(), "logits: data is null");
}

TEST(Validation, Float16AndBFloat16BadValuesNameTheIndex) {
  Sampler sampler;
  SampleResult out;
  const uint16_t half[] = {0x3C00, 0x3C00, 0x7E00};  // 1, 1, NaN
  EXPECT_EQ(sampler.Sample({half, 3, Dtype::kFloat16}, {}, 0, &out).message(),
            "logits[2]: must not be NaN");
  const uint16_t bf[] = {0x7F80};  // +inf
  EXPECT_EQ(sampler.Sample({bf, 1, Dtype::kBFloat16}, {}, 0, &out).message(),
            "logits[0]: must not be +inf");
}

TEST(Validation, BoundaryValuesAreAccepted) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.typical_p = 1.0f;
  p.top_logprobs = kMaxTopLogprobs;
  p.repetition_penalty = 0.0f;
  p.num_samples = kMaxNumSamplesLibrary;
  EXPECT_TRUE(ValidateParams(p, 10).ok());
  p.top_p = 1e-30f;
  p.typical_p = 1e-30f;
  p.min_p = 0.0f;
  EXPECT_TRUE(ValidateParams(p, 10).ok());
}

}  // namespace
}  // namespace tokensampler::sampler

namespace tokensampler::sampler {
namespace {

// llama.cpp's other samplers: ranges, preset HF, and what mirostat cannot be combined with.
TEST(Validation, LlamaChainRanges) {
  const std::vector<float> row(50, 0.5f);
  auto with = [](auto set) {
    SamplingParams p;
    set(&p);
    return p;
  };
  ExpectInvalid(row, with([](SamplingParams* p) { p->top_n_sigma = -1.0f; }),
                "params.top_n_sigma: must be finite and >= 0, got -1");
  ExpectInvalid(row, with([](SamplingParams* p) { p->top_n_sigma = kInf; }),
                "params.top_n_sigma: must be finite and >= 0, got inf");
  ExpectInvalid(row, with([](SamplingParams* p) { p->xtc_probability = 1.5f; }),
                "params.xtc_probability: must be in [0, 1], got 1.5");
  ExpectInvalid(row, with([](SamplingParams* p) {
                  p->xtc_probability = 0.5f;
                  p->xtc_threshold = 0.6f;
                }),
                "params.xtc_threshold: must be in (0, 0.5] when xtc_probability > 0, got 0.6");
  ExpectInvalid(row, with([](SamplingParams* p) { p->dry.multiplier = kNaN; }),
                "params.dry.multiplier: must be finite and >= 0, got nan");
  ExpectInvalid(row, with([](SamplingParams* p) {
                  p->dry.multiplier = 0.8f;
                  p->dry.base = 0.5f;
                }),
                "params.dry.base: must be > 1 when dry.multiplier > 0, got 0.5");
  ExpectInvalid(row, with([](SamplingParams* p) { p->dry.allowed_length = -1; }),
                "params.dry.allowed_length: must be >= 0, got -1");
  ExpectInvalid(row, with([](SamplingParams* p) { p->dry.penalty_last_n = -2; }),
                "params.dry.penalty_last_n: must be >= 0, got -2");
  const std::vector<int32_t> empty, bad = {3, 50};
  const std::vector<absl::Span<const int32_t>> empty_breaker = {empty};
  const std::vector<absl::Span<const int32_t>> bad_breaker = {bad};
  ExpectInvalid(row, with([&](SamplingParams* p) { p->dry.sequence_breakers = empty_breaker; }),
                "params.dry.sequence_breakers[0].token_ids: must hold 1 to 32 tokens, got 0");
  ExpectInvalid(row, with([&](SamplingParams* p) { p->dry.sequence_breakers = bad_breaker; }),
                "params.dry.sequence_breakers[0].token_ids[1]: token id 50 out of range [0, 50)");
  ExpectInvalid(row, with([](SamplingParams* p) { p->mirostat.version = 3; }),
                "params.mirostat.version: must be 0, 1 or 2, got 3");
  ExpectInvalid(row, with([](SamplingParams* p) {
                  p->mirostat.version = 2;
                  p->mirostat.tau = 0.0f;
                }),
                "params.mirostat.tau: must be finite and > 0 when mirostat.version > 0, got 0");
  ExpectInvalid(row, with([](SamplingParams* p) {
                  p->mirostat.version = 1;
                  p->mirostat.eta = -0.1f;
                }),
                "params.mirostat.eta: must be finite and > 0 when mirostat.version > 0, got -0.1");
  ExpectInvalid(row, with([](SamplingParams* p) {
                  p->mirostat.version = 1;
                  p->mirostat.mu = kInf;
                }),
                "params.mirostat.mu: must be finite, got inf");
  ExpectInvalid(row, with([](SamplingParams* p) { p->dynatemp_range = -0.5f; }),
                "params.dynatemp_range: must be finite and >= 0, got -0.5");
  ExpectInvalid(row, with([](SamplingParams* p) { p->dynatemp_exponent = 0.0f; }),
                "params.dynatemp_exponent: must be finite and > 0, got 0");
  ExpectInvalid(row, with([](SamplingParams* p) { p->penalty_last_n = -1; }),
                "params.penalty_last_n: must be >= 0, got -1");
}

TEST(Validation, PresetHfRejectsWhatTransformersLacks) {
  const std::vector<float> row(50, 0.5f);
  SamplingParams p;
  p.preset = Preset::kHf;
  p.top_n_sigma = 1.0f;
  ExpectInvalid(row, p,
                "params.top_n_sigma: not available in preset HF (transformers has no "
                "top-n-sigma), got 1");
  p.top_n_sigma = 0.0f;
  p.dry.multiplier = 0.8f;
  ExpectInvalid(row, p,
                "params.dry.multiplier: not available in preset HF (transformers has no "
                "DRY), got 0.8");
  p.dry.multiplier = 0.0f;
  p.mirostat.version = 2;
  ExpectInvalid(row, p,
                "params.mirostat.version: not available in preset HF (transformers has "
                "no mirostat), got 2");
  p.mirostat.version = 0;
  p.penalty_last_n = 64;
  ExpectInvalid(row, p,
                "params.penalty_last_n: not available in preset HF (transformers has no "
                "penalty window), got 64");
}

TEST(Validation, PresetVllmRejectsWhatVllmLacks) {
  const std::vector<float> row(50, 0.5f);
  SamplingParams p;
  p.preset = Preset::kVllm;
  p.xtc_probability = 0.5f;
  ExpectInvalid(row, p,
                "params.xtc_probability: not available in preset VLLM (vLLM has no XTC), "
                "got 0.5");
  p.xtc_probability = 0.0f;
  p.dynatemp_range = 0.5f;
  ExpectInvalid(row, p,
                "params.dynatemp_range: not available in preset VLLM (vLLM has no dynamic "
                "temperature), got 0.5");
  p.dynatemp_range = 0.0f;
  p.mirostat.version = 1;
  ExpectInvalid(row, p,
                "params.mirostat.version: not available in preset VLLM (vLLM has no "
                "mirostat), got 1");
}

TEST(Validation, MirostatReplacesTheTruncations) {
  const std::vector<float> row(50, 0.5f);
  for (Preset preset : {Preset::kStandard, Preset::kLlamaCpp}) {
    SamplingParams p;
    p.preset = preset;
    p.mirostat.version = 2;
    p.top_k = 40;
    ExpectInvalid(row, p,
                  "params.top_k: must be 0 when mirostat is on (mirostat replaces the "
                  "truncations), got 40");
    p.top_k = 0;
    p.top_p = 0.9f;
    ExpectInvalid(row, p,
                  "params.top_p: must be 1 or unset when mirostat is on (mirostat replaces the "
                  "truncations), got 0.9");
    p.top_p = 1.0f;
    p.xtc_probability = 0.5f;
    p.xtc_threshold = 0.1f;
    ExpectInvalid(row, p,
                  "params.xtc_probability: must be 0 when mirostat is on (mirostat replaces the "
                  "truncations), got 0.5");
  }
  SamplingParams p;
  p.preset = Preset::kLlamaCpp;
  p.mirostat.version = 1;
  p.repetition_penalty = 1.1f;
  ExpectInvalid(row, p,
                "params.repetition_penalty: must be off when mirostat is on in preset LLAMA_CPP "
                "(llama.cpp's mirostat chain is logit bias -> temperature -> mirostat), got 1.1");
  p.preset = Preset::kStandard;  // STANDARD keeps its penalties before mirostat
  Sampler sampler;
  SampleResult r;
  EXPECT_TRUE(sampler.Sample(LogitsView::Float32(row), p, 0, &r).ok());
}

}  // namespace
}  // namespace tokensampler::sampler
