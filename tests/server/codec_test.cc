// The request codec without a server: every validation rule with its field path, each
// dtype, values vs raw, the proto -> library defaults, and the encoders.
#include "server/codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

uint64_t FixedSeed() { return 777; }

v1::Row FloatRow(std::vector<float> values) {
  v1::Row row;
  for (float v : values) row.mutable_logits()->add_values(v);
  return row;
}

// Decodes a request made of `rows` with small limits.
absl::Status Decode(const std::vector<v1::Row>& rows, RequestKind kind,
                    v1::SampleRequest* request, std::vector<DecodedRow>* out,
                    Limits limits = {}) {
  request->clear_rows();
  for (const v1::Row& row : rows) *request->add_rows() = row;
  return DecodeRequest(*request, limits, kind, FixedSeed, out);
}

// Expects that decoding `rows` fails with `code` and a message starting with `prefix`.
void ExpectError(const std::vector<v1::Row>& rows, RequestKind kind, absl::StatusCode code,
                 const std::string& prefix, Limits limits = {}) {
  v1::SampleRequest request;
  std::vector<DecodedRow> out;
  absl::Status status = Decode(rows, kind, &request, &out, limits);
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_THAT(std::string(status.message()), StartsWith(prefix)) << status;
}

TEST(CodecTest, FloatValuesAreViewedNotCopied) {
  v1::SampleRequest request;
  std::vector<DecodedRow> rows;
  ASSERT_TRUE(Decode({FloatRow({1, 2, 3})}, RequestKind::kStateless, &request, &rows).ok());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].has_logits);
  EXPECT_EQ(rows[0].logits.data, request.rows(0).logits().values().data());
  EXPECT_EQ(rows[0].logits.size, 3u);
  EXPECT_EQ(rows[0].logits.dtype, sampler::Dtype::kFloat32);
}

TEST(CodecTest, EachRawDtypeIsPassedThrough) {
  struct Case {
    v1::Dtype dtype;
    sampler::Dtype expected;
    size_t width;
  };
  for (const Case& c : {Case{v1::DTYPE_FLOAT32, sampler::Dtype::kFloat32, 4},
                        Case{v1::DTYPE_BFLOAT16, sampler::Dtype::kBFloat16, 2},
                        Case{v1::DTYPE_FLOAT16, sampler::Dtype::kFloat16, 2}}) {
    v1::Row row;
    row.mutable_logits()->set_raw(std::string(5 * c.width, '\0'));
    row.mutable_logits()->set_dtype(c.dtype);
    v1::SampleRequest request;
    std::vector<DecodedRow> rows;
    ASSERT_TRUE(Decode({row}, RequestKind::kStateless, &request, &rows).ok())
        << v1::Dtype_Name(c.dtype);
    EXPECT_EQ(rows[0].logits.dtype, c.expected);
    EXPECT_EQ(rows[0].logits.size, 5u);
    EXPECT_EQ(rows[0].logits.data, request.rows(0).logits().raw().data());
  }
}

TEST(CodecTest, LogitsErrorsNameTheField) {
  v1::Row both = FloatRow({1, 2});
  both.mutable_logits()->set_raw(std::string(8, '\0'));
  both.mutable_logits()->set_dtype(v1::DTYPE_FLOAT32);
  ExpectError({FloatRow({1}), both}, RequestKind::kStateless,
              absl::StatusCode::kInvalidArgument, "rows[1].logits: set either values or raw");

  ExpectError({v1::Row()}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].logits: missing");

  v1::Row unspecified;
  unspecified.mutable_logits()->set_raw(std::string(8, '\0'));
  ExpectError({unspecified}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].logits.dtype: must be DTYPE_FLOAT32, DTYPE_BFLOAT16 or DTYPE_FLOAT16 "
              "when raw is set, got DTYPE_UNSPECIFIED");

  v1::Row unknown = unspecified;
  unknown.mutable_logits()->set_dtype(static_cast<v1::Dtype>(9));
  ExpectError({unknown}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].logits.dtype: unknown value 9");

  v1::Row odd;
  odd.mutable_logits()->set_raw(std::string(7, '\0'));
  odd.mutable_logits()->set_dtype(v1::DTYPE_BFLOAT16);
  ExpectError({odd}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].logits.raw: length must be a multiple of 2 bytes for DTYPE_BFLOAT16, "
              "got 7");

  v1::Row f32 = odd;
  f32.mutable_logits()->set_raw(std::string(6, '\0'));
  f32.mutable_logits()->set_dtype(v1::DTYPE_FLOAT32);
  ExpectError({f32}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].logits.raw: length must be a multiple of 4 bytes for DTYPE_FLOAT32, "
              "got 6");

  v1::Row values_with_half = FloatRow({1, 2});
  values_with_half.mutable_logits()->set_dtype(v1::DTYPE_FLOAT16);
  ExpectError({values_with_half}, RequestKind::kStateless,
              absl::StatusCode::kInvalidArgument,
              "rows[0].logits.dtype: applies to raw only; values are float32, got "
              "DTYPE_FLOAT16");
}

TEST(CodecTest, LimitsNameTheLimit) {
  Limits limits;
  limits.max_vocab = 4;
  limits.max_rows = 2;
  ExpectError({FloatRow({1, 2, 3, 4, 5})}, RequestKind::kStateless,
              absl::StatusCode::kInvalidArgument,
              "rows[0].logits: 5 logits exceed the server limit max_vocab=4", limits);
  ExpectError({FloatRow({1}), FloatRow({1}), FloatRow({1})}, RequestKind::kStateless,
              absl::StatusCode::kResourceExhausted,
              "rows: 3 rows exceed the server limit max_rows=2", limits);
  v1::Row many = FloatRow({1, 2});
  many.mutable_params()->set_num_samples(kMaxNumSamples + 1);
  ExpectError({FloatRow({1}), many}, RequestKind::kStateless,
              absl::StatusCode::kInvalidArgument,
              "rows[1].params.num_samples: must be in [0, 64] (server limit "
              "max_num_samples), got 65");
  // Exactly at the limits is fine.
  v1::Row at_limit = FloatRow({1, 2, 3, 4});
  at_limit.mutable_params()->set_num_samples(kMaxNumSamples);
  v1::SampleRequest request;
  std::vector<DecodedRow> rows;
  EXPECT_TRUE(Decode({at_limit, at_limit}, RequestKind::kStateless, &request, &rows, limits)
                  .ok());
}

TEST(CodecTest, NegativeCountsAndUnknownEnumsAreRejected) {
  v1::Row row = FloatRow({1, 2});
  row.mutable_params()->set_num_samples(-1);
  ExpectError({row}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].params.num_samples: must be in [0, 64]");
  row = FloatRow({1, 2});
  row.mutable_params()->set_min_tokens_to_keep(-3);
  ExpectError({row}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].params.min_tokens_to_keep: must be >= 0, got -3");
  row = FloatRow({1, 2});
  row.mutable_params()->set_preset(static_cast<v1::Preset>(42));
  ExpectError({row}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].params.preset: unknown value 42");
  row = FloatRow({1, 2});
  row.mutable_params()->set_logprobs_mode(static_cast<v1::LogprobsMode>(-5));
  ExpectError({row}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].params.logprobs_mode: unknown value -5");
  row = FloatRow({1, 2});
  row.mutable_params()->set_top_k(-1);
  ExpectError({row}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].params.top_k");
}

// The library's ValidateParams findings come back with the row prefix.
TEST(CodecTest, LibraryValidationGetsTheRowPath) {
  std::vector<v1::Row> rows(4, FloatRow({1, 2, 3}));
  rows[3].mutable_params()->set_top_p(1.5f);
  ExpectError(rows, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[3].params.top_p:");

  rows = {FloatRow({1, 2, 3})};
  rows[0].add_context_token_ids(1);
  rows[0].add_context_token_ids(3);  // out of [0, 3)
  ExpectError(rows, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].context_token_ids[1]");

  struct Case {
    const char* path;
    void (*set)(v1::SamplingParams*);
  };
  const Case cases[] = {
      {"rows[0].params.temperature", [](v1::SamplingParams* p) { p->set_temperature(-1); }},
      {"rows[0].params.temperature",
       [](v1::SamplingParams* p) { p->set_temperature(std::nanf("")); }},
      {"rows[0].params.top_p", [](v1::SamplingParams* p) { p->set_top_p(0); }},
      {"rows[0].params.min_p", [](v1::SamplingParams* p) { p->set_min_p(1.5f); }},
      {"rows[0].params.typical_p", [](v1::SamplingParams* p) { p->set_typical_p(2); }},
      {"rows[0].params.repetition_penalty",
       [](v1::SamplingParams* p) { p->set_repetition_penalty(-2); }},
      {"rows[0].params.presence_penalty",
       [](v1::SamplingParams* p) {
         p->set_presence_penalty(std::numeric_limits<float>::infinity());
       }},
      {"rows[0].params.frequency_penalty",
       [](v1::SamplingParams* p) { p->set_frequency_penalty(std::nanf("")); }},
      {"rows[0].params.top_logprobs", [](v1::SamplingParams* p) { p->set_top_logprobs(21); }},
      {"rows[0].params.logit_bias",
       [](v1::SamplingParams* p) { (*p->mutable_logit_bias())[7] = 1; }},
      {"rows[0].params.allowed_token_ids",
       [](v1::SamplingParams* p) { p->add_allowed_token_ids(-1); }},
      {"rows[0].params.banned_token_ids",
       [](v1::SamplingParams* p) { p->add_banned_token_ids(3); }},
  };
  for (const Case& c : cases) {
    v1::Row row = FloatRow({1, 2, 3});
    c.set(row.mutable_params());
    ExpectError({row}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument, c.path);
  }
}

// The fields of issue 14: full messages, with the row's path and the value.
TEST(CodecTest, OutputFieldErrorsNameThePathAndTheValue) {
  struct Case {
    const char* message;
    void (*set)(v1::Row*);
  };
  const Case cases[] = {
      {"rows[0].allowed_token_bitmask: must be 4 * ceil(V / 32) = 4 bytes for V = 3, got 8",
       [](v1::Row* r) { r->set_allowed_token_bitmask(std::string(8, '\xff')); }},
      {"rows[0].num_prompt_tokens: must be in [0, 1] (the number of context_token_ids), got 2",
       [](v1::Row* r) {
         r->add_context_token_ids(1);
         r->set_num_prompt_tokens(2);
       }},
      {"rows[0].num_prompt_tokens: must be in [0, 0] (the number of context_token_ids), got -1",
       [](v1::Row* r) { r->set_num_prompt_tokens(-1); }},
      {"rows[0].params.min_tokens: must be >= 0, got -3",
       [](v1::Row* r) { r->mutable_params()->set_min_tokens(-3); }},
      {"rows[0].params.stop_token_ids[0]: token id 3 out of range [0, 3)",
       [](v1::Row* r) { r->mutable_params()->add_stop_token_ids(3); }},
      {"rows[0].params.bad_words[0].token_ids: must hold 1 to 128 token ids, got 0",
       [](v1::Row* r) { r->mutable_params()->add_bad_words(); }},
      {"rows[0].params.bad_words[1].token_ids[0]: token id -1 out of range [0, 3)",
       [](v1::Row* r) {
         r->mutable_params()->add_bad_words()->add_token_ids(1);
         r->mutable_params()->add_bad_words()->add_token_ids(-1);
       }},
      {"rows[0].params.bad_words: at most 1024 sequences, got 1025",
       [](v1::Row* r) {
         for (int i = 0; i < 1025; ++i) r->mutable_params()->add_bad_words()->add_token_ids(0);
       }},
      {"rows[0].params.no_repeat_ngram_size: must be >= 0, got -1",
       [](v1::Row* r) { r->mutable_params()->set_no_repeat_ngram_size(-1); }},
      {"rows[0].params.logprob_token_ids: at most 128 token ids, got 129",
       [](v1::Row* r) {
         for (int i = 0; i < 129; ++i) r->mutable_params()->add_logprob_token_ids(0);
       }},
      {"rows[0].params.logprob_token_ids[0]: token id 5 out of range [0, 3)",
       [](v1::Row* r) { r->mutable_params()->add_logprob_token_ids(5); }},
      {"rows[0].params.logprobs_mode: unknown value 9",
       [](v1::Row* r) {
         r->mutable_params()->set_logprobs_mode(static_cast<v1::LogprobsMode>(9));
       }},
  };
  for (const Case& c : cases) {
    v1::Row row = FloatRow({1, 2, 3});
    c.set(&row);
    v1::SampleRequest request;
    std::vector<DecodedRow> out;
    const absl::Status status = Decode({row}, RequestKind::kStateless, &request, &out);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(status.message(), c.message);
  }
}

TEST(CodecTest, OutputFieldsAreCarriedOverAsViews) {
  v1::Row row = FloatRow({1, 2, 3, 4});
  row.set_allowed_token_bitmask(std::string("\x05\0\0\0", 4));
  row.add_context_token_ids(0);
  row.add_context_token_ids(2);
  row.add_context_token_ids(3);
  row.set_num_prompt_tokens(1);
  v1::SamplingParams* p = row.mutable_params();
  p->set_preset(v1::PRESET_VLLM);
  p->set_logprobs_mode(v1::LOGPROBS_MODE_PROCESSED_LOGITS);
  p->set_min_tokens(4);
  p->add_stop_token_ids(3);
  v1::TokenSequence* word = p->add_bad_words();
  word->add_token_ids(2);
  word->add_token_ids(1);
  p->set_no_repeat_ngram_size(2);
  p->set_return_kept_set(true);
  p->add_logprob_token_ids(3);
  p->add_logprob_token_ids(0);
  v1::SampleRequest request;
  std::vector<DecodedRow> out;
  ASSERT_TRUE(Decode({row}, RequestKind::kStateless, &request, &out).ok());
  const sampler::SamplingParams& s = out[0].params;
  EXPECT_EQ(s.preset, sampler::Preset::kVllm);
  EXPECT_EQ(s.logprobs_mode, sampler::LogprobsMode::kProcessedLogits);
  EXPECT_EQ(s.allowed_token_bitmask.data,
            reinterpret_cast<const uint8_t*>(request.rows(0).allowed_token_bitmask().data()));
  EXPECT_EQ(s.allowed_token_bitmask.size_bytes, 4u);
  EXPECT_EQ(s.num_prompt_tokens, 1u);
  EXPECT_THAT(std::vector<int32_t>(s.output_token_ids().begin(), s.output_token_ids().end()),
              ::testing::ElementsAre(2, 3));
  EXPECT_EQ(s.min_tokens, 4);
  EXPECT_THAT(std::vector<int32_t>(s.stop_token_ids.begin(), s.stop_token_ids.end()),
              ::testing::ElementsAre(3));
  ASSERT_EQ(s.bad_words.size(), 1u);
  EXPECT_THAT(std::vector<int32_t>(s.bad_words[0].begin(), s.bad_words[0].end()),
              ::testing::ElementsAre(2, 1));
  EXPECT_EQ(s.no_repeat_ngram_size, 2);
  EXPECT_TRUE(s.return_kept_set);
  EXPECT_THAT(std::vector<int32_t>(s.logprob_token_ids.begin(), s.logprob_token_ids.end()),
              ::testing::ElementsAre(3, 0));
}

TEST(CodecTest, ProtoDefaultsMapToLibraryOffValues) {
  v1::SampleRequest request;
  std::vector<DecodedRow> rows;
  ASSERT_TRUE(Decode({FloatRow({1, 2, 3})}, RequestKind::kStateless, &request, &rows).ok());
  const sampler::SamplingParams& p = rows[0].params;
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.top_p, 1.0f);
  EXPECT_EQ(p.min_p, 0.0f);
  EXPECT_EQ(p.typical_p, 1.0f);
  EXPECT_EQ(p.repetition_penalty, 1.0f);
  EXPECT_EQ(p.num_samples, 1);
  EXPECT_EQ(p.min_tokens_to_keep, 1);
  EXPECT_EQ(p.top_logprobs, 0);
  EXPECT_EQ(p.preset, sampler::Preset::kStandard);
  EXPECT_EQ(p.logprobs_mode, sampler::LogprobsMode::kRaw);
  EXPECT_TRUE(p.logit_bias.empty());
  EXPECT_FALSE(rows[0].seed_given);
  EXPECT_EQ(p.seed, FixedSeed());  // picked
}

TEST(CodecTest, SetValuesAreCarriedOver) {
  v1::Row row = FloatRow({1, 2, 3, 4, 5});
  v1::SamplingParams* q = row.mutable_params();
  q->set_temperature(0);
  q->set_top_k(3);
  q->set_top_p(0.9f);
  q->set_min_p(0.05f);
  q->set_typical_p(0.8f);
  q->set_repetition_penalty(1.3f);
  q->set_presence_penalty(0.5f);
  q->set_frequency_penalty(-0.25f);
  (*q->mutable_logit_bias())[4] = -std::numeric_limits<float>::infinity();
  (*q->mutable_logit_bias())[0] = 2.5f;
  (*q->mutable_logit_bias())[2] = -1.0f;
  q->add_allowed_token_ids(0);
  q->add_allowed_token_ids(2);
  q->add_banned_token_ids(1);
  q->set_seed(0);  // 0 is a real seed, not "unset"
  q->set_num_samples(4);
  q->set_top_logprobs(2);
  q->set_logprobs_mode(v1::LOGPROBS_MODE_PROCESSED);
  q->set_preset(v1::PRESET_HF);
  q->set_min_tokens_to_keep(2);
  row.add_context_token_ids(3);
  row.set_step(99);
  row.set_sequence_id("abc");
  v1::SampleRequest request;
  std::vector<DecodedRow> rows;
  ASSERT_TRUE(Decode({row}, RequestKind::kStateless, &request, &rows).ok());
  const DecodedRow& d = rows[0];
  const sampler::SamplingParams& p = d.params;
  EXPECT_EQ(p.temperature, 0.0f);
  EXPECT_EQ(p.top_k, 3);
  EXPECT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.min_p, 0.05f);
  EXPECT_EQ(p.typical_p, 0.8f);
  EXPECT_EQ(p.repetition_penalty, 1.3f);
  EXPECT_EQ(p.presence_penalty, 0.5f);
  EXPECT_EQ(p.frequency_penalty, -0.25f);
  ASSERT_EQ(p.logit_bias.size(), 3u);  // sorted by id
  EXPECT_EQ(p.logit_bias[0].token_id, 0);
  EXPECT_EQ(p.logit_bias[0].bias, 2.5f);
  EXPECT_EQ(p.logit_bias[1].token_id, 2);
  EXPECT_EQ(p.logit_bias[2].token_id, 4);
  EXPECT_TRUE(std::isinf(p.logit_bias[2].bias) && p.logit_bias[2].bias < 0);
  EXPECT_EQ(p.allowed_token_ids.data(), request.rows(0).params().allowed_token_ids().data());
  EXPECT_EQ(p.allowed_token_ids.size(), 2u);
  EXPECT_EQ(p.banned_token_ids.size(), 1u);
  EXPECT_EQ(p.context_token_ids.data(), request.rows(0).context_token_ids().data());
  EXPECT_TRUE(d.seed_given);
  EXPECT_EQ(p.seed, 0u);
  EXPECT_EQ(p.num_samples, 4);
  EXPECT_EQ(p.top_logprobs, 2);
  EXPECT_EQ(p.logprobs_mode, sampler::LogprobsMode::kProcessed);
  EXPECT_EQ(p.preset, sampler::Preset::kHf);
  EXPECT_EQ(p.min_tokens_to_keep, 2);
  EXPECT_EQ(d.step, 99u);
  EXPECT_EQ(d.sequence_id, "abc");

  // The remaining enum values.
  row.mutable_params()->set_preset(v1::PRESET_LLAMA_CPP);
  row.mutable_params()->set_logprobs_mode(v1::LOGPROBS_MODE_RAW);
  row.mutable_params()->set_repetition_penalty(0);  // 0 = off = 1
  ASSERT_TRUE(Decode({row}, RequestKind::kStateless, &request, &rows).ok());
  EXPECT_EQ(rows[0].params.preset, sampler::Preset::kLlamaCpp);
  EXPECT_EQ(rows[0].params.logprobs_mode, sampler::LogprobsMode::kRaw);
  EXPECT_EQ(rows[0].params.repetition_penalty, 1.0f);
}

TEST(CodecTest, LlamaChainParamsDecodeWithDefaults) {
  v1::SampleRequest request;
  std::vector<DecodedRow> rows;
  ASSERT_TRUE(Decode({FloatRow({1, 2, 3})}, RequestKind::kStateless, &request, &rows).ok());
  const sampler::SamplingParams& off = rows[0].params;
  EXPECT_EQ(off.top_n_sigma, 0.0f);
  EXPECT_EQ(off.xtc_probability, 0.0f);
  EXPECT_EQ(off.dry.multiplier, 0.0f);
  EXPECT_EQ(off.mirostat.version, 0);
  EXPECT_EQ(off.dynatemp_range, 0.0f);
  EXPECT_EQ(off.dynatemp_exponent, 1.0f);  // unset = 1
  EXPECT_EQ(off.penalty_last_n, 0);

  v1::Row row = FloatRow({1, 2, 3, 4, 5});
  v1::SamplingParams* q = row.mutable_params();
  q->set_top_n_sigma(1.5f);
  q->set_xtc_probability(0.5f);
  q->set_xtc_threshold(0.2f);
  q->set_dynatemp_range(0.4f);
  q->set_dynatemp_exponent(2.0f);
  q->set_penalty_last_n(64);
  q->mutable_dry()->set_multiplier(0.8f);
  q->mutable_dry()->set_base(1.75f);
  q->mutable_dry()->set_allowed_length(3);
  q->mutable_dry()->set_penalty_last_n(128);
  q->mutable_dry()->add_sequence_breakers()->add_token_ids(4);
  v1::TokenSequence* pair = q->mutable_dry()->add_sequence_breakers();
  pair->add_token_ids(1);
  pair->add_token_ids(2);
  ASSERT_TRUE(Decode({row}, RequestKind::kStateless, &request, &rows).ok());
  const sampler::SamplingParams& p = rows[0].params;
  EXPECT_EQ(p.top_n_sigma, 1.5f);
  EXPECT_EQ(p.xtc_probability, 0.5f);
  EXPECT_EQ(p.xtc_threshold, 0.2f);
  EXPECT_EQ(p.dynatemp_range, 0.4f);
  EXPECT_EQ(p.dynatemp_exponent, 2.0f);
  EXPECT_EQ(p.penalty_last_n, 64);
  EXPECT_EQ(p.dry.multiplier, 0.8f);
  EXPECT_EQ(p.dry.base, 1.75f);
  EXPECT_EQ(p.dry.allowed_length, 3);
  EXPECT_EQ(p.dry.penalty_last_n, 128);
  ASSERT_EQ(p.dry.sequence_breakers.size(), 2u);
  EXPECT_THAT(
      std::vector<int32_t>(p.dry.sequence_breakers[1].begin(), p.dry.sequence_breakers[1].end()),
      ::testing::ElementsAre(1, 2));
  // Views, not copies.
  EXPECT_EQ(p.dry.sequence_breakers[1].data(),
            request.rows(0).params().dry().sequence_breakers(1).token_ids().data());

  v1::Row miro = FloatRow({1, 2, 3});
  miro.mutable_params()->mutable_mirostat()->set_version(1);
  miro.mutable_params()->mutable_mirostat()->set_tau(5.0f);
  miro.mutable_params()->mutable_mirostat()->set_eta(0.1f);
  ASSERT_TRUE(Decode({miro}, RequestKind::kStateless, &request, &rows).ok());
  EXPECT_EQ(rows[0].params.mirostat.m, 100);  // 0 = 100
  EXPECT_FALSE(rows[0].params.mirostat.mu.has_value());
  miro.mutable_params()->mutable_mirostat()->set_mu(7.5f);
  miro.mutable_params()->mutable_mirostat()->set_m(20);
  ASSERT_TRUE(Decode({miro}, RequestKind::kStateless, &request, &rows).ok());
  EXPECT_EQ(rows[0].params.mirostat.m, 20);
  EXPECT_EQ(rows[0].params.mirostat.mu, 7.5f);
}

TEST(CodecTest, LlamaChainErrorsNameTheFieldPathAndValue) {
  struct Case {
    const char* message;
    void (*set)(v1::SamplingParams*);
  };
  const Case cases[] = {
      {"rows[0].params.dry.base: must be > 1 when dry.multiplier > 0, got 0.5",
       [](v1::SamplingParams* p) {
         p->mutable_dry()->set_multiplier(1.0f);
         p->mutable_dry()->set_base(0.5f);
       }},
      {"rows[0].params.dry.base: must be > 1 when dry.multiplier > 0, got 0",
       [](v1::SamplingParams* p) { p->mutable_dry()->set_multiplier(1.0f); }},
      {"rows[0].params.dry.sequence_breakers[0].token_ids[0]: token id 9 out of range [0, 3)",
       [](v1::SamplingParams* p) { p->mutable_dry()->add_sequence_breakers()->add_token_ids(9); }},
      {"rows[0].params.mirostat.m: must be >= 0, got -4",
       [](v1::SamplingParams* p) { p->mutable_mirostat()->set_m(-4); }},
      {"rows[0].params.mirostat.tau: must be finite and > 0 when mirostat.version > 0, got 0",
       [](v1::SamplingParams* p) { p->mutable_mirostat()->set_version(2); }},
      {"rows[0].params.xtc_threshold: must be in (0, 0.5] when xtc_probability > 0, got 0",
       [](v1::SamplingParams* p) { p->set_xtc_probability(0.5f); }},
      {"rows[0].params.top_n_sigma: not available in preset HF (transformers has no "
       "top-n-sigma), got 2",
       [](v1::SamplingParams* p) {
         p->set_preset(v1::PRESET_HF);
         p->set_top_n_sigma(2.0f);
       }},
      {"rows[0].params.min_p: must be 0 when mirostat is on (mirostat replaces the "
       "truncations), got 0.1",
       [](v1::SamplingParams* p) {
         p->set_min_p(0.1f);
         p->mutable_mirostat()->set_version(2);
         p->mutable_mirostat()->set_tau(5.0f);
         p->mutable_mirostat()->set_eta(0.1f);
       }},
      {"rows[0].params.dynatemp_exponent: must be finite and > 0, got -1",
       [](v1::SamplingParams* p) { p->set_dynatemp_exponent(-1.0f); }},
  };
  for (const Case& c : cases) {
    v1::SampleRequest request;
    std::vector<DecodedRow> rows;
    v1::Row row = FloatRow({1, 2, 3});
    c.set(row.mutable_params());
    const absl::Status status = Decode({row}, RequestKind::kStateless, &request, &rows);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_EQ(status.message(), c.message);
  }
}

TEST(CodecTest, MirostatMuAndSamplersAreEncoded) {
  sampler::SampleResult result;
  result.samples.push_back({1, -0.1f, {}});
  v1::SampleResult out;
  EncodeSampleResult(result, 1, 0, "", &out);
  EXPECT_FALSE(out.has_mirostat_mu());
  result.mirostat_mu = 8.25f;
  EncodeSampleResult(result, 1, 0, "", &out);
  ASSERT_TRUE(out.has_mirostat_mu());
  EXPECT_EQ(out.mirostat_mu(), 8.25f);
  v1::ServerInfo info;
  EncodeServerLimits(Limits(), 1, 1, SharedMemoryOptions(), &info);
  const std::vector<std::string> samplers(info.samplers().begin(), info.samplers().end());
  for (const char* name :
       {"temperature", "top_k", "top_p", "min_p", "typical_p", "dry", "xtc_probability",
        "top_n_sigma", "mirostat", "dynatemp_range", "penalty_last_n", "allowed_token_bitmask",
        "bad_words", "no_repeat_ngram_size", "min_tokens"}) {
    EXPECT_THAT(samplers, ::testing::Contains(std::string(name)));
  }
}

TEST(CodecTest, PickSeedIsCalledOncePerUnseededRow) {
  v1::SampleRequest request;
  v1::Row seeded = FloatRow({1, 2});
  seeded.mutable_params()->set_seed(5);
  for (const v1::Row& r : {FloatRow({1, 2}), seeded, FloatRow({3, 4})}) {
    *request.add_rows() = r;
  }
  uint64_t next = 100;
  std::vector<DecodedRow> rows;
  ASSERT_TRUE(DecodeRequest(request, Limits(), RequestKind::kStateless,
                            [&next] { return next++; }, &rows)
                  .ok());
  EXPECT_EQ(rows[0].params.seed, 100u);
  EXPECT_EQ(rows[1].params.seed, 5u);
  EXPECT_EQ(rows[2].params.seed, 101u);
  EXPECT_EQ(next, 102u);
}

TEST(CodecTest, StreamRowsNeedUniqueSequenceIds) {
  v1::Row a = FloatRow({1, 2});
  a.set_sequence_id("a");
  v1::Row no_id = FloatRow({1, 2});
  ExpectError({a, no_id}, RequestKind::kStream, absl::StatusCode::kInvalidArgument,
              "rows[1].sequence_id: required in a stream");
  v1::Row b = a;
  b.set_sequence_id("b");
  ExpectError({a, b, a}, RequestKind::kStream, absl::StatusCode::kInvalidArgument,
              "rows[2].sequence_id: must be unique within a message, \"a\" appears more "
              "than once");
  // Stateless calls neither require nor check them.
  v1::SampleRequest request;
  std::vector<DecodedRow> rows;
  EXPECT_TRUE(Decode({a, a, no_id}, RequestKind::kStateless, &request, &rows).ok());
}

TEST(CodecTest, EndSequenceWithoutLogitsOnlyInStreams) {
  v1::Row end;
  end.set_sequence_id("a");
  end.set_end_sequence(true);
  end.mutable_params()->set_top_p(7);  // not looked at: nothing is sampled
  v1::SampleRequest request;
  std::vector<DecodedRow> rows;
  ASSERT_TRUE(Decode({end}, RequestKind::kStream, &request, &rows).ok());
  EXPECT_FALSE(rows[0].has_logits);
  EXPECT_TRUE(rows[0].end_sequence);
  ExpectError({end}, RequestKind::kStateless, absl::StatusCode::kInvalidArgument,
              "rows[0].logits: missing");
  // With logits it is validated like any row.
  v1::Row end_with_logits = end;
  end_with_logits.mutable_logits()->add_values(1);
  ExpectError({end_with_logits}, RequestKind::kStream, absl::StatusCode::kInvalidArgument,
              "rows[0].params.top_p");
}

TEST(CodecTest, EmptyRequestDecodesToNoRows) {
  v1::SampleRequest request;
  std::vector<DecodedRow> rows(3);
  ASSERT_TRUE(Decode({}, RequestKind::kStateless, &request, &rows).ok());
  EXPECT_TRUE(rows.empty());
}

TEST(CodecTest, EncodersFillEveryField) {
  sampler::SampleResult result;
  result.samples.push_back({7, -0.5f, {{7, -0.5f}, {2, -1.5f}}});
  result.samples.push_back({2, -1.5f, {}});
  v1::SampleResult out;
  EncodeSampleResult(result, 42, 3, "seq", &out);
  EXPECT_EQ(out.seed(), 42u);
  EXPECT_EQ(out.step(), 3u);
  EXPECT_EQ(out.sequence_id(), "seq");
  ASSERT_EQ(out.samples_size(), 2);
  EXPECT_EQ(out.samples(0).token_id(), 7);
  EXPECT_EQ(out.samples(0).logprob(), -0.5f);
  ASSERT_EQ(out.samples(0).top_logprobs_size(), 2);
  EXPECT_EQ(out.samples(0).top_logprobs(1).token_id(), 2);
  EXPECT_EQ(out.samples(0).top_logprobs(1).logprob(), -1.5f);
  EXPECT_EQ(out.samples(1).token_id(), 2);
  EXPECT_EQ(out.samples(0).rank(), 0);
  EXPECT_EQ(out.kept_set(), "");

  result.samples[0].rank = 3;
  result.samples[0].token_logprobs = {{5, -2.5f}, {1, -0.25f}};
  result.kept_set = std::string("\x81\0\0\0", 4);
  v1::SampleResult with_rl;
  EncodeSampleResult(result, 42, 3, "seq", &with_rl);
  EXPECT_EQ(with_rl.samples(0).rank(), 3);
  ASSERT_EQ(with_rl.samples(0).token_logprobs_size(), 2);
  EXPECT_EQ(with_rl.samples(0).token_logprobs(0).token_id(), 5);
  EXPECT_EQ(with_rl.samples(0).token_logprobs(1).logprob(), -0.25f);
  EXPECT_EQ(with_rl.kept_set(), std::string("\x81\0\0\0", 4));

  sampler::DistributionResult dist{{3, 1}, {0.75f, 0.25f}};
  v1::Distribution d;
  EncodeDistribution(dist, "x", &d);
  ASSERT_EQ(d.token_ids_size(), 2);
  EXPECT_EQ(d.token_ids(0), 3);
  EXPECT_EQ(d.probs(1), 0.25f);
  EXPECT_EQ(d.sequence_id(), "x");

  Limits limits;
  limits.max_vocab = 1000;
  v1::ServerInfo info;
  EncodeServerLimits(limits, 12345, 3, SharedMemoryOptions(), &info);
  EXPECT_EQ(info.max_vocab(), 1000);
  EXPECT_EQ(info.max_message_bytes(), 12345);
  EXPECT_EQ(info.worker_threads(), 3);
  EXPECT_EQ(info.max_num_samples(), kMaxNumSamples);
  EXPECT_EQ(info.presets_size(), 4);
  EXPECT_EQ(info.presets(3), v1::PRESET_VLLM);
  EXPECT_EQ(info.dtypes_size(), 3);
  EXPECT_EQ(info.simd_target(), sampler::SimdTargetName());
}

TEST(RowErrorTest, PrefixesTheRowAndKeepsTheCode) {
  absl::Status status = RowError(4, absl::InvalidArgumentError("logits[2]: NaN"));
  EXPECT_EQ(status.message(), "rows[4].logits[2]: NaN");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tokensampler::server
