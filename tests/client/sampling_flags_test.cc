#include "client/sampling_flags.h"

#include <cmath>
#include <fstream>
#include <string>

#include "client/npy.h"
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
  f.preset = "sglang";
  EXPECT_EQ(BuildSamplingParams(f).status().message(),
            "--preset: unknown value 'sglang' (want standard, hf, llama_cpp or vllm)");
  f = {};
  f.logprobs_mode = "log";
  EXPECT_EQ(BuildSamplingParams(f).status().message(),
            "--logprobs_mode: unknown value 'log' (want raw, processed, raw_logits or "
            "processed_logits)");
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

TEST(BuildSamplingParamsTest, OutputAndRlFlags) {
  SamplingFlagValues f;
  f.preset = "vllm";
  f.logprobs_mode = "processed_logits";
  f.min_tokens = 4;
  f.stop_token_ids = "2,7";
  f.bad_words = "1,2;3";
  f.no_repeat_ngram_size = 3;
  f.return_kept_set = true;
  f.logprob_token_ids = "5,0";
  auto p = BuildSamplingParams(f);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->preset(), v1::PRESET_VLLM);
  EXPECT_EQ(p->logprobs_mode(), v1::LOGPROBS_MODE_PROCESSED_LOGITS);
  EXPECT_EQ(p->min_tokens(), 4);
  ASSERT_EQ(p->stop_token_ids_size(), 2);
  EXPECT_EQ(p->stop_token_ids(1), 7);
  ASSERT_EQ(p->bad_words_size(), 2);
  EXPECT_EQ(p->bad_words(0).token_ids_size(), 2);
  EXPECT_EQ(p->bad_words(1).token_ids(0), 3);
  EXPECT_EQ(p->no_repeat_ngram_size(), 3);
  EXPECT_TRUE(p->return_kept_set());
  EXPECT_EQ(p->logprob_token_ids(0), 5);
  EXPECT_EQ(ParseLogprobsMode("raw_logits").value(), v1::LOGPROBS_MODE_RAW_LOGITS);

  f = {};
  f.bad_words = "1,2;;3";
  EXPECT_EQ(BuildSamplingParams(f).status().message(),
            "--bad_words: empty sequence (want id,id;id;...)");
}

TEST(ApplyRowFlagsTest, IdListBecomesABitmaskOnEveryRow) {
  v1::SampleRequest request;
  request.add_rows();
  request.add_rows();
  RowFlagValues flags;
  flags.bitmask = "0,9,33";
  flags.num_prompt_tokens = 2;
  ASSERT_TRUE(ApplyRowFlags(flags, 40, &request).ok());
  for (const v1::Row& row : request.rows()) {
    EXPECT_EQ(row.allowed_token_bitmask(), std::string("\x01\x02\0\0\x02\0\0\0", 8));
    EXPECT_EQ(row.num_prompt_tokens(), 2);
  }
  flags.bitmask = "40";
  EXPECT_EQ(ApplyRowFlags(flags, 40, &request).message(),
            "--bitmask: token id 40 out of range [0, 40)");
}

TEST(ApplyRowFlagsTest, NpyWordsFile) {
  // {'descr': '<i4', 'fortran_order': False, 'shape': (2,), } with words 5 and -1.
  std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
  header.append(128 - 10 - header.size() - 1, ' ');  // data 64-byte aligned
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(header.size());
  file += '\0';
  file += header;
  file += std::string("\x05\0\0\0\xff\xff\xff\xff", 8);
  const std::string path = ::testing::TempDir() + "/bitmask_words.npy";
  {
    std::ofstream out(path, std::ios::binary);
    out << file;
  }
  v1::SampleRequest request;
  request.add_rows();
  RowFlagValues flags;
  flags.bitmask = path;
  ASSERT_TRUE(ApplyRowFlags(flags, 64, &request).ok());
  EXPECT_EQ(request.rows(0).allowed_token_bitmask(),
            std::string("\x05\0\0\0\xff\xff\xff\xff", 8));
  auto parsed = ParseNpyWords(file);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->cols, 2u);
  std::string f4 = file;
  f4.replace(f4.find("<i4"), 3, "<f4");
  EXPECT_EQ(ParseNpyWords(f4).status().message(),
            "not a valid .npy file: dtype '<f4' is not supported; want int32 ('<i4') or "
            "uint32 ('<u4') words");
}

}  // namespace
}  // namespace tokensampler::client
