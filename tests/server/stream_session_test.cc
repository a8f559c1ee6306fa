// StreamSession state rules without a server: staging, commit, abort, limits.
#include "server/stream_session.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

using ::testing::ElementsAre;
using ::testing::StartsWith;

// A stream message built row by row.
class Message {
 public:
  Message& Row(const std::string& id, std::vector<int32_t> context, int vocab = 10,
               bool end = false) {
    v1::Row* row = request_.add_rows();
    row->set_sequence_id(id);
    for (int i = 0; i < vocab; ++i) row->mutable_logits()->add_values(0);
    for (int32_t t : context) row->add_context_token_ids(t);
    row->set_end_sequence(end);
    return *this;
  }
  Message& End(const std::string& id) {
    v1::Row* row = request_.add_rows();
    row->set_sequence_id(id);
    row->set_end_sequence(true);
    return *this;
  }
  Message& Prompt(int32_t num_prompt_tokens) {
    request_.mutable_rows(request_.rows_size() - 1)->set_num_prompt_tokens(num_prompt_tokens);
    return *this;
  }
  Message& Seed(uint64_t seed) {
    request_.mutable_rows(request_.rows_size() - 1)->mutable_params()->set_seed(seed);
    return *this;
  }
  std::vector<DecodedRow>& Decode(const Limits& limits) {
    uint64_t next = 1000;
    absl::Status status = DecodeRequest(request_, limits, RequestKind::kStream,
                                        [&next] { return next++; }, &rows_);
    EXPECT_TRUE(status.ok()) << status;
    return rows_;
  }

 private:
  v1::SampleRequest request_;
  std::vector<DecodedRow> rows_;
};

// A result per row whose first sample is `tokens[i]`.
std::vector<sampler::SampleResult> Drawn(std::vector<int32_t> tokens) {
  std::vector<sampler::SampleResult> results(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) results[i].samples.push_back({tokens[i], 0, {}});
  return results;
}

TEST(StreamSessionTest, HistoryStepAndSeedFollowTheSequence) {
  Limits limits;
  StreamSession session(limits);
  Message m1;
  m1.Row("a", {1, 2}).Seed(9).Row("b", {5});
  std::vector<DecodedRow>& rows = m1.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows).ok());
  // Staged rows see history = context, the sequence seed and step 0.
  EXPECT_THAT(std::vector<int32_t>(rows[0].params.context_token_ids.begin(),
                                   rows[0].params.context_token_ids.end()),
              ElementsAre(1, 2));
  EXPECT_EQ(rows[0].params.seed, 9u);
  EXPECT_EQ(rows[0].step, 0u);
  EXPECT_EQ(rows[1].params.seed, 1000u);  // picked
  session.Commit(rows, Drawn({7, 8}));
  EXPECT_THAT(*session.History("a"), ElementsAre(1, 2, 7));
  EXPECT_THAT(*session.History("b"), ElementsAre(5, 8));
  EXPECT_EQ(session.NextStep("a"), 1);

  // Second step: later seeds are ignored, the step advances, context appends.
  Message m2;
  m2.Row("a", {3}).Seed(12345);
  std::vector<DecodedRow>& rows2 = m2.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows2).ok());
  EXPECT_EQ(rows2[0].params.seed, 9u);
  EXPECT_EQ(rows2[0].step, 1u);
  EXPECT_THAT(std::vector<int32_t>(rows2[0].params.context_token_ids.begin(),
                                   rows2[0].params.context_token_ids.end()),
              ElementsAre(1, 2, 7, 3));
  session.Commit(rows2, Drawn({4}));
  EXPECT_THAT(*session.History("a"), ElementsAre(1, 2, 7, 3, 4));
  EXPECT_EQ(session.NextStep("a"), 2);
  EXPECT_EQ(session.NextStep("b"), 1);
}

TEST(StreamSessionTest, MirostatMuStartsFromTheFirstRowThenFollowsTheResults) {
  Limits limits;
  StreamSession session(limits);
  auto mirostat_row = [](float mu) {
    v1::SampleRequest request;
    v1::Row* row = request.add_rows();
    row->set_sequence_id("a");
    for (int i = 0; i < 10; ++i) row->mutable_logits()->add_values(0);
    v1::MirostatParams* m = row->mutable_params()->mutable_mirostat();
    m->set_version(2);
    m->set_tau(3.0f);
    m->set_eta(0.1f);
    m->set_mu(mu);
    return request;
  };
  auto decode = [&](const v1::SampleRequest& request, std::vector<DecodedRow>* rows) {
    ASSERT_TRUE(DecodeRequest(
                    request, limits, RequestKind::kStream, [] { return uint64_t{1}; }, rows)
                    .ok());
  };
  const v1::SampleRequest first = mirostat_row(4.0f);
  std::vector<DecodedRow> rows;
  decode(first, &rows);
  ASSERT_TRUE(session.Prepare(&rows).ok());
  EXPECT_EQ(rows[0].params.mirostat.mu, 4.0f);  // the first row's own mu
  EXPECT_FALSE(session.MirostatMu("a").has_value());
  std::vector<sampler::SampleResult> results = Drawn({3});
  results[0].mirostat_mu = 4.5f;
  session.Commit(rows, results);
  EXPECT_EQ(session.MirostatMu("a"), 4.5f);

  // The next row's mu is replaced by the sequence's; an aborted step leaves it alone.
  const v1::SampleRequest second = mirostat_row(99.0f);
  decode(second, &rows);
  ASSERT_TRUE(session.Prepare(&rows).ok());
  EXPECT_EQ(rows[0].params.mirostat.mu, 4.5f);
  session.Abort(rows);
  EXPECT_EQ(session.MirostatMu("a"), 4.5f);
  decode(second, &rows);
  ASSERT_TRUE(session.Prepare(&rows).ok());
  results[0].mirostat_mu = 4.25f;
  session.Commit(rows, results);
  EXPECT_EQ(session.MirostatMu("a"), 4.25f);
}

// The output a stream row's stages see: everything after the prompt, i.e. the tokens
// the server sampled plus context appended after the prompt.
TEST(StreamSessionTest, PromptThenOutputGrowsBySampledAndAppendedTokens) {
  Limits limits;
  StreamSession session(limits);
  Message m1;
  m1.Row("a", {1, 2, 3}).Prompt(2);
  std::vector<DecodedRow>& rows = m1.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows).ok());
  EXPECT_EQ(rows[0].params.num_prompt_tokens, 2u);
  EXPECT_THAT(std::vector<int32_t>(rows[0].params.output_token_ids().begin(),
                                   rows[0].params.output_token_ids().end()),
              ElementsAre(3));
  session.Commit(rows, Drawn({7}));

  Message m2;
  m2.Row("a", {4});
  std::vector<DecodedRow>& rows2 = m2.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows2).ok());
  EXPECT_EQ(rows2[0].params.num_prompt_tokens, 2u);
  EXPECT_THAT(std::vector<int32_t>(rows2[0].params.output_token_ids().begin(),
                                   rows2[0].params.output_token_ids().end()),
              ElementsAre(3, 7, 4));
  session.Commit(rows2, Drawn({5}));

  // More prompt after output is refused, and the state is unchanged.
  Message m3;
  m3.Row("a", {6}).Prompt(1);
  std::vector<DecodedRow>& rows3 = m3.Decode(limits);
  const absl::Status status = session.Prepare(&rows3);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "rows[0].num_prompt_tokens: sequence \"a\" already has 4 output tokens; prompt "
            "tokens can only be sent before the first output, got 1");
  EXPECT_THAT(*session.History("a"), ElementsAre(1, 2, 3, 7, 4, 5));

  // A sequence whose first row is all prompt can add prompt until its first output;
  // Abort takes the staged prompt back.
  Message m4;
  m4.Row("b", {1}).Prompt(1);
  std::vector<DecodedRow>& rows4 = m4.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows4).ok());
  session.Abort(rows4);
  EXPECT_EQ(session.History("b"), nullptr);
}

TEST(StreamSessionTest, EndSequenceFreesAfterSampling) {
  Limits limits;
  StreamSession session(limits);
  Message m1;
  m1.Row("a", {1}).Row("b", {2});
  auto& rows = m1.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows).ok());
  session.Commit(rows, Drawn({3, 4}));
  ASSERT_EQ(session.live_sequences(), 2u);

  Message m2;
  m2.Row("a", {}, 10, /*end=*/true).End("b").End("never-seen");
  auto& rows2 = m2.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows2).ok());
  EXPECT_EQ(rows2[0].step, 1u);  // the last step of "a" is still sampled
  session.Commit(rows2, Drawn({5, 0, 0}));
  EXPECT_EQ(session.live_sequences(), 0u);
  EXPECT_EQ(session.History("a"), nullptr);

  // A freed id starts over at step 0 with an empty history.
  Message m3;
  m3.Row("a", {});
  auto& rows3 = m3.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows3).ok());
  EXPECT_EQ(rows3[0].step, 0u);
  EXPECT_TRUE(rows3[0].params.context_token_ids.empty());
}

TEST(StreamSessionTest, AbortLeavesStateAsBefore) {
  Limits limits;
  StreamSession session(limits);
  Message m1;
  m1.Row("a", {1, 2});
  auto& rows = m1.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows).ok());
  session.Commit(rows, Drawn({3}));

  Message m2;
  m2.Row("a", {4, 5}).Row("new", {6});
  auto& rows2 = m2.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows2).ok());
  EXPECT_EQ(session.live_sequences(), 2u);  // staged
  session.Abort(rows2);
  EXPECT_EQ(session.live_sequences(), 1u);
  EXPECT_THAT(*session.History("a"), ElementsAre(1, 2, 3));
  EXPECT_EQ(session.NextStep("a"), 1);
  EXPECT_EQ(session.History("new"), nullptr);
}

TEST(StreamSessionTest, LimitsRejectWithoutChangingState) {
  Limits limits;
  limits.max_sequences = 2;
  limits.max_history_tokens = 5;
  StreamSession session(limits);
  Message m1;
  m1.Row("a", {1, 2});
  auto& rows = m1.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows).ok());
  session.Commit(rows, Drawn({3}));  // history 3 tokens

  Message too_many;
  too_many.Row("a", {}).Row("b", {}).Row("c", {});
  auto& rows2 = too_many.Decode(limits);
  absl::Status status = session.Prepare(&rows2);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              StartsWith("rows[2].sequence_id: cannot start sequence \"c\""));
  EXPECT_THAT(std::string(status.message()), testing::HasSubstr("max_sequences=2"));
  EXPECT_EQ(session.live_sequences(), 1u);
  EXPECT_THAT(*session.History("a"), ElementsAre(1, 2, 3));

  // 3 held + 2 context + 1 drawn = 6 > 5.
  Message too_long;
  too_long.Row("b", {}).Row("a", {4, 5});
  auto& rows3 = too_long.Decode(limits);
  status = session.Prepare(&rows3);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              StartsWith("rows[1].context_token_ids: sequence \"a\" would hold 6 tokens"));
  EXPECT_EQ(session.live_sequences(), 1u);  // "b" was not created
  EXPECT_THAT(*session.History("a"), ElementsAre(1, 2, 3));

  // Exactly at the limit is fine.
  Message at_limit;
  at_limit.Row("a", {4});
  auto& rows4 = at_limit.Decode(limits);
  EXPECT_TRUE(session.Prepare(&rows4).ok());
}

TEST(StreamSessionTest, HistoryIdsMustFitALaterSmallerVocabulary) {
  Limits limits;
  StreamSession session(limits);
  Message m1;
  m1.Row("a", {8}, /*vocab=*/10);
  auto& rows = m1.Decode(limits);
  ASSERT_TRUE(session.Prepare(&rows).ok());
  session.Commit(rows, Drawn({9}));

  Message smaller;
  smaller.Row("a", {}, /*vocab=*/5);
  auto& rows2 = smaller.Decode(limits);
  absl::Status status = session.Prepare(&rows2);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              StartsWith("rows[0].logits: 5 logits, but the history of sequence \"a\" "
                         "holds token id 9"));
  EXPECT_THAT(*session.History("a"), ElementsAre(8, 9));
}

}  // namespace
}  // namespace tokensampler::server
