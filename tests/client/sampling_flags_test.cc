#include "client/sampling_flags.h"

#include <cmath>

#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

TEST(BuildSamplingParamsTest, NothingGivenLeavesEverythingUnset) {
  auto p = BuildSamplingParams({});
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_temperature());
  EXPECT_FALSE(p->has_top_p());
  EXPECT_FALSE(p->has_typical_p());
  EXPECT_FALSE(p->has_seed());
  EXPECT_EQ(p->ByteSizeLong(), 0u);
}

TEST(BuildSamplingParamsTest, EveryFlag) {
  SamplingFlagValues f;
  f.temperature = 0.0f;  // greedy: set, even though 0
  f.top_k = 50;
  f.top_p = 0.95f;
  f.min_p = 0.05f;
  f.typical_p = 0.9f;
  f.repetition_penalty = 1.1f;
  f.presence_penalty = 0.5f;
  f.frequency_penalty = 0.25f;
  f.seed = 42;
  f.num_samples = 3;
  f.top_logprobs = 5;
  f.min_tokens_to_keep = 2;
  f.logit_bias = "13:2.5,7:-inf";
  f.allowed = "1,2,3";
  f.banned = "9";
  f.logprobs_mode = "processed";
  f.preset = "llama_cpp";
  auto p = BuildSamplingParams(f);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->has_temperature());
  EXPECT_EQ(p->temperature(), 0.0f);
  EXPECT_EQ(p->top_k(), 50);
  EXPECT_EQ(p->top_p(), 0.95f);
  EXPECT_EQ(p->min_p(), 0.05f);
  EXPECT_EQ(p->typical_p(), 0.9f);
  EXPECT_EQ(p->repetition_penalty(), 1.1f);
  EXPECT_EQ(p->presence_penalty(), 0.5f);
  EXPECT_EQ(p->frequency_penalty(), 0.25f);
  EXPECT_EQ(p->seed(), 42u);
  EXPECT_EQ(p->num_samples(), 3);
  EXPECT_EQ(p->top_logprobs(), 5);
  EXPECT_EQ(p->min_tokens_to_keep(), 2);
  ASSERT_EQ(p->logit_bias_size(), 2);
  EXPECT_EQ(p->logit_bias().at(13), 2.5f);
  EXPECT_TRUE(std::isinf(p->logit_bias().at(7)));
  EXPECT_EQ(p->allowed_token_ids_size(), 3);
  EXPECT_EQ(p->banned_token_ids(0), 9);
  EXPECT_EQ(p->logprobs_mode(), v1::LOGPROBS_MODE_PROCESSED);
  EXPECT_EQ(p->preset(), v1::PRESET_LLAMA_CPP);
}

TEST(BuildSamplingParamsTest, LlamaChainFlags) {
  SamplingFlagValues f;
  f.top_n_sigma = 1.5f;
  f.xtc_probability = 0.5f;
  f.xtc_threshold = 0.2f;
  f.dry_multiplier = 0.8f;
  f.dry_base = 1.75f;
  f.dry_allowed_length = 3;
  f.dry_penalty_last_n = 256;
  f.dry_sequence_breakers = "13;198,271";
  f.mirostat = 2;
  f.mirostat_tau = 4.0f;
  f.mirostat_eta = 0.2f;
  f.mirostat_mu = 7.5f;
  f.mirostat_m = 50;
  f.dynatemp_range = 0.5f;
  f.dynatemp_exponent = 2.0f;
  f.penalty_last_n = 64;
  auto p = BuildSamplingParams(f);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->top_n_sigma(), 1.5f);
  EXPECT_EQ(p->xtc_probability(), 0.5f);
  EXPECT_EQ(p->xtc_threshold(), 0.2f);
  EXPECT_EQ(p->dry().multiplier(), 0.8f);
  EXPECT_EQ(p->dry().base(), 1.75f);
  EXPECT_EQ(p->dry().allowed_length(), 3);
  EXPECT_EQ(p->dry().penalty_last_n(), 256);
  ASSERT_EQ(p->dry().sequence_breakers_size(), 2);
  EXPECT_EQ(p->dry().sequence_breakers(0).token_ids_size(), 1);
  EXPECT_EQ(p->dry().sequence_breakers(1).token_ids(1), 271);
  EXPECT_EQ(p->mirostat().version(), 2);
  EXPECT_EQ(p->mirostat().tau(), 4.0f);
  EXPECT_EQ(p->mirostat().eta(), 0.2f);
  EXPECT_TRUE(p->mirostat().has_mu());
  EXPECT_EQ(p->mirostat().mu(), 7.5f);
  EXPECT_EQ(p->mirostat().m(), 50);
  EXPECT_EQ(p->dynatemp_range(), 0.5f);
  EXPECT_EQ(p->dynatemp_exponent(), 2.0f);
  EXPECT_EQ(p->penalty_last_n(), 64);
  f = {};
  f.dry_sequence_breakers = "13;x";
  EXPECT_NE(BuildSamplingParams(f).status().message().find("--dry_sequence_breakers"),
            std::string::npos);
}

TEST(BuildSamplingParamsTest, ErrorsNameTheFlag) {
  SamplingFlagValues f;
  f.preset = "vllm";
  EXPECT_EQ(BuildSamplingParams(f).status().message(),
            "--preset: unknown value 'vllm' (want standard, hf or llama_cpp)");
  f = {};
  f.logprobs_mode = "log";
  EXPECT_EQ(BuildSamplingParams(f).status().message(),
            "--logprobs_mode: unknown value 'log' (want raw or processed)");
  f = {};
  f.allowed = "1,x";
  EXPECT_NE(BuildSamplingParams(f).status().message().find("--allowed: 'x'"), std::string::npos);
}

TEST(BuildSamplingParamsTest, GivenFlagsOverrideAPipeline) {
  auto full = PipelineParams("full");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->temperature(), 0.8f);
  EXPECT_EQ(full->top_k(), 50);
  EXPECT_EQ(full->top_p(), 0.95f);
  EXPECT_EQ(full->min_p(), 0.05f);
  SamplingFlagValues f;
  f.top_k = 0;  // explicitly off
  f.temperature = 1.2f;
  auto p = BuildSamplingParams(f, *full);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->top_k(), 0);
  EXPECT_EQ(p->temperature(), 1.2f);
  EXPECT_EQ(p->top_p(), 0.95f);  // kept from the pipeline
  auto greedy = PipelineParams("greedy");
  ASSERT_TRUE(greedy.ok());
  EXPECT_TRUE(greedy->has_temperature());
  EXPECT_EQ(greedy->temperature(), 0.0f);
  EXPECT_FALSE(PipelineParams("fast").ok());
}

TEST(ParsePresetTest, Spellings) {
  EXPECT_EQ(*ParsePreset("standard"), v1::PRESET_STANDARD);
  EXPECT_EQ(*ParsePreset("HF"), v1::PRESET_HF);
  EXPECT_EQ(*ParsePreset("llama.cpp"), v1::PRESET_LLAMA_CPP);
  EXPECT_EQ(*ParseLogprobsMode("raw"), v1::LOGPROBS_MODE_RAW);
}

TEST(BuildRequestTest, RowsShareParamsContextAndStep) {
  const std::vector<float> logits = {1, 2, 3, 4, 5, 6};
  v1::SamplingParams params;
  params.set_seed(9);
  const std::vector<int32_t> context = {4, 4};
  const v1::SampleRequest r = BuildRequest(logits, 2, 3, Wire::kValues, params, context, 17);
  ASSERT_EQ(r.rows_size(), 2);
  EXPECT_EQ(r.rows(1).logits().values(0), 4.0f);
  EXPECT_EQ(r.rows(1).logits().values_size(), 3);
  EXPECT_EQ(r.rows(0).params().seed(), 9u);
  EXPECT_EQ(r.rows(1).context_token_ids_size(), 2);
  EXPECT_EQ(r.rows(0).step(), 17u);
}

}  // namespace
}  // namespace tokensampler::client
