// Decoding Verify requests without a server: every shape and value rule with its field
// path, the per-position context, and the encoder.
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/codec.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

using ::testing::ElementsAre;

uint64_t FixedSeed() { return 777; }

void SetValues(v1::Logits* logits, const std::vector<float>& values) {
  logits->mutable_values()->Add(values.begin(), values.end());
}

// A valid row: k drafts over V = 4, with draft probabilities when `with_q`.
v1::VerifyRow ValidRow(int k, bool with_q) {
  v1::VerifyRow row;
  for (int i = 0; i <= k; ++i) SetValues(row.add_target_logits(), {1.0f, 2.0f, 0.5f, -1.0f});
  for (int i = 0; i < k; ++i) {
    row.add_draft_token_ids(i % 4);
    if (with_q) {
      std::vector<float> q(4, 0.1f);
      q[i % 4] = 0.7f;
      SetValues(row.add_draft_probs(), q);
    }
  }
  row.add_context_token_ids(3);
  row.set_step(10);
  row.set_sequence_id("s");
  return row;
}

absl::Status Decode(const v1::VerifyRow& row, std::vector<DecodedVerifyRow>* out,
                    v1::VerifyRequest* request, Limits limits = {}) {
  request->clear_rows();
  *request->add_rows() = row;
  return DecodeVerifyRequest(*request, limits, FixedSeed, out);
}

std::string ErrorOf(const v1::VerifyRow& row, Limits limits = {}) {
  v1::VerifyRequest request;
  std::vector<DecodedVerifyRow> out;
  const absl::Status status = Decode(row, &out, &request, limits);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(VerifyCodecTest, DecodesShapesViewsAndPositionContexts) {
  v1::VerifyRequest request;
  std::vector<DecodedVerifyRow> rows;
  ASSERT_TRUE(Decode(ValidRow(3, true), &rows, &request).ok());
  ASSERT_EQ(rows.size(), 1u);
  const DecodedVerifyRow& row = rows[0];
  EXPECT_EQ(row.positions(), 4u);
  EXPECT_EQ(row.draft_probs.size(), 3u);
  EXPECT_EQ(row.target_logits[2].data, request.rows(0).target_logits(2).values().data());
  EXPECT_EQ(row.row.params.seed, 777u);
  EXPECT_EQ(row.row.params.num_samples, 1);
  EXPECT_EQ(row.row.step, 10u);
  EXPECT_EQ(row.row.sequence_id, "s");
  // Position i's penalties see the context, then drafts 0..i-1.
  EXPECT_THAT(row.ParamsAt(0).context_token_ids, ElementsAre(3));
  EXPECT_THAT(row.ParamsAt(2).context_token_ids, ElementsAre(3, 0, 1));
  EXPECT_THAT(row.ParamsAt(3).context_token_ids, ElementsAre(3, 0, 1, 2));
}

TEST(VerifyCodecTest, NoDraftsAndOneHotDraftsAreValid) {
  v1::VerifyRequest request;
  std::vector<DecodedVerifyRow> rows;
  ASSERT_TRUE(Decode(ValidRow(0, false), &rows, &request).ok());
  EXPECT_EQ(rows[0].positions(), 1u);
  ASSERT_TRUE(Decode(ValidRow(2, false), &rows, &request).ok());
  EXPECT_TRUE(rows[0].draft_probs.empty());
}

TEST(VerifyCodecTest, DecodesTheOutputParamsAndRefusesTheKeptSet) {
  v1::VerifyRow row = ValidRow(1, false);
  row.mutable_params()->add_logprob_token_ids(2);
  row.mutable_params()->set_min_tokens(3);
  row.mutable_params()->add_stop_token_ids(1);
  row.mutable_params()->add_bad_words()->add_token_ids(0);
  row.mutable_params()->set_no_repeat_ngram_size(2);
  v1::VerifyRequest request;
  std::vector<DecodedVerifyRow> rows;
  ASSERT_TRUE(Decode(row, &rows, &request).ok());
  const sampler::SamplingParams at = rows[0].ParamsAt(1);
  EXPECT_THAT(at.logprob_token_ids, ElementsAre(2));
  EXPECT_EQ(at.min_tokens, 3);
  EXPECT_THAT(at.stop_token_ids, ElementsAre(1));
  ASSERT_EQ(at.bad_words.size(), 1u);
  EXPECT_THAT(at.bad_words[0], ElementsAre(0));
  EXPECT_EQ(at.no_repeat_ngram_size, 2);
  row.mutable_params()->set_return_kept_set(true);
  EXPECT_EQ(ErrorOf(row),
            "rows[0].params.return_kept_set: not available in Verify (a VerifyResult has no "
            "kept_set), got true");
}

TEST(VerifyCodecTest, ShapeErrorsNameTheField) {
  v1::VerifyRow row = ValidRow(4, true);
  row.mutable_target_logits()->RemoveLast();
  EXPECT_EQ(ErrorOf(row), "rows[0].target_logits: want k + 1 = 5 rows, got 4");
  row = ValidRow(4, true);
  row.mutable_draft_probs()->RemoveLast();
  EXPECT_EQ(ErrorOf(row), "rows[0].draft_probs: want k = 4 rows or none, got 3");
  Limits limits;
  limits.max_draft_tokens = 3;
  EXPECT_EQ(ErrorOf(ValidRow(4, false), limits),
            "rows[0].draft_token_ids: 4 draft tokens exceed the server limit "
            "max_draft_tokens=3");
  row = ValidRow(2, true);
  row.mutable_target_logits(2)->add_values(0.0f);
  EXPECT_EQ(ErrorOf(row),
            "rows[0].target_logits[2]: vocabulary size 5 differs from target_logits[0]'s 4");
  row = ValidRow(2, true);
  row.mutable_draft_probs(1)->add_values(0.0f);
  EXPECT_EQ(ErrorOf(row),
            "rows[0].draft_probs[1]: vocabulary size 5 differs from target_logits[0]'s 4");
  row = ValidRow(1, false);
  row.mutable_target_logits(1)->clear_values();
  EXPECT_EQ(
      ErrorOf(row),
      "rows[0].target_logits[1]: missing; set values, raw or shared_memory (at least 1 logit)");
  row = ValidRow(1, true);
  row.mutable_draft_probs(0)->set_raw("abc");
  row.mutable_draft_probs(0)->clear_values();
  row.mutable_draft_probs(0)->set_dtype(v1::DTYPE_FLOAT16);
  EXPECT_EQ(ErrorOf(row),
            "rows[0].draft_probs[0].raw: length must be a multiple of 2 bytes for "
            "DTYPE_FLOAT16, got 3");
  limits = Limits();
  limits.max_vocab = 3;
  EXPECT_EQ(ErrorOf(ValidRow(1, false), limits),
            "rows[0].target_logits[0]: 4 logits exceed the server limit max_vocab=3");
}

TEST(VerifyCodecTest, IdAndParamErrorsNameTheField) {
  v1::VerifyRow row = ValidRow(2, false);
  row.set_draft_token_ids(1, 4);
  EXPECT_EQ(ErrorOf(row), "rows[0].draft_token_ids[1]: token id 4 out of range [0, 4)");
  row.set_draft_token_ids(1, -1);
  EXPECT_EQ(ErrorOf(row), "rows[0].draft_token_ids[1]: token id -1 out of range [0, 4)");
  row = ValidRow(2, false);
  row.mutable_params()->set_num_samples(2);
  EXPECT_EQ(ErrorOf(row),
            "rows[0].params.num_samples: must be 0 or 1 in Verify (one token per position), "
            "got 2");
  row.mutable_params()->set_num_samples(1);
  row.mutable_params()->set_top_p(1.5f);
  EXPECT_EQ(ErrorOf(row), "rows[0].params.top_p: must be in (0, 1], got 1.5");
  row = ValidRow(2, false);
  row.add_context_token_ids(9);
  EXPECT_EQ(ErrorOf(row), "rows[0].context_token_ids[1]: token id 9 out of range [0, 4)");
}

TEST(VerifyCodecTest, DraftProbabilityErrorsNameTheEntry) {
  v1::VerifyRow row = ValidRow(2, true);
  row.mutable_draft_probs(1)->set_values(2, -0.1f);
  EXPECT_EQ(ErrorOf(row), "rows[0].draft_probs[1][2]: must be finite and >= 0, got -0.1");
  row = ValidRow(2, true);
  row.mutable_draft_probs(0)->set_values(3, std::numeric_limits<float>::infinity());
  EXPECT_EQ(ErrorOf(row), "rows[0].draft_probs[0][3]: must be finite and >= 0, got inf");
  row = ValidRow(2, true);
  row.mutable_draft_probs(0)->set_values(3, 0.2f);
  EXPECT_EQ(ErrorOf(row), "rows[0].draft_probs[0]: must sum to 1 within 0.001, got 1.1");
  row = ValidRow(2, true);
  // Draft 1 proposes token 1; give it no mass (and keep the sum at 1).
  row.mutable_draft_probs(1)->set_values(1, 0.0f);
  row.mutable_draft_probs(1)->set_values(0, 0.8f);
  EXPECT_EQ(ErrorOf(row),
            "rows[0].draft_probs[1][1]: the draft proposed token 1 but gave it probability 0");
}

TEST(VerifyCodecTest, DraftProbabilitiesMayBeSixteenBit) {
  v1::VerifyRow row = ValidRow(1, false);
  // bfloat16 0.25 = 0x3E80, 0.5 = 0x3F00; [0.5, 0.25, 0.25, 0] proposes token 0.
  const uint16_t bf16[4] = {0x3F00, 0x3E80, 0x3E80, 0x0000};
  v1::Logits* q = row.add_draft_probs();
  q->set_raw(std::string(reinterpret_cast<const char*>(bf16), sizeof(bf16)));
  q->set_dtype(v1::DTYPE_BFLOAT16);
  v1::VerifyRequest request;
  std::vector<DecodedVerifyRow> rows;
  ASSERT_TRUE(Decode(row, &rows, &request).ok());
  EXPECT_EQ(rows[0].draft_probs[0].dtype, sampler::Dtype::kBFloat16);
  EXPECT_EQ(rows[0].draft_probs[0].size, 4u);
}

TEST(VerifyCodecTest, TooManyRowsIsResourceExhausted) {
  v1::VerifyRequest request;
  for (int i = 0; i < 3; ++i) *request.add_rows() = ValidRow(0, false);
  Limits limits;
  limits.max_rows = 2;
  std::vector<DecodedVerifyRow> rows;
  const absl::Status status = DecodeVerifyRequest(request, limits, FixedSeed, &rows);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(), "rows: 3 rows exceed the server limit max_rows=2");
}

TEST(VerifyCodecTest, EncodesTokensAcceptedCountSeedStepAndId) {
  sampler::VerifyResult result;
  result.tokens = {{5, -0.5f, {{5, -0.5f}}}, {7, -1.25f, {}}};
  result.num_accepted = 1;
  v1::VerifyResult out;
  EncodeVerifyResult(result, 99, 12, "abc", &out);
  ASSERT_EQ(out.tokens_size(), 2);
  EXPECT_EQ(out.tokens(0).token_id(), 5);
  EXPECT_EQ(out.tokens(0).top_logprobs(0).logprob(), -0.5f);
  EXPECT_EQ(out.tokens(1).logprob(), -1.25f);
  EXPECT_EQ(out.num_accepted(), 1);
  EXPECT_EQ(out.seed(), 99u);
  EXPECT_EQ(out.step(), 12u);
  EXPECT_EQ(out.sequence_id(), "abc");
}

}  // namespace
}  // namespace tokensampler::server
