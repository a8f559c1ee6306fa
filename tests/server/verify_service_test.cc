// The Verify RPC in-process on 127.0.0.1:0: results equal the library's VerifyRow in any
// batch, k = 0 equals Sample, errors name row, position and field, limits are reported.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sampler/sampler.h"
#include "sampler/verify.h"
#include "server/codec.h"
#include "server/server.h"
#include "tests/server/test_util.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::server {
namespace {

using ::testing::HasSubstr;

// Softmax of random logits: a valid draft distribution.
std::vector<float> RandomProbs(int vocab, uint32_t seed) {
  std::vector<float> q = RandomLogits(vocab, seed, 1.0f);
  double sum = 0.0;
  for (float& x : q) sum += (x = std::exp(x));
  for (float& x : q) x = static_cast<float>(x / sum);
  return q;
}

// A row of k drafts over V tokens; draft token i proposed from q_i when `with_q`.
v1::VerifyRow RandomRow(int vocab, int k, uint32_t seed, bool with_q) {
  v1::VerifyRow row;
  for (int i = 0; i <= k; ++i) {
    const std::vector<float> z = RandomLogits(vocab, seed * 100 + i);
    row.add_target_logits()->mutable_values()->Add(z.begin(), z.end());
  }
  std::mt19937 gen(seed);
  for (int i = 0; i < k; ++i) {
    if (with_q) {
      const std::vector<float> q = RandomProbs(vocab, seed * 100 + 50 + i);
      row.add_draft_probs()->mutable_values()->Add(q.begin(), q.end());
      std::discrete_distribution<int> pick(q.begin(), q.end());
      row.add_draft_token_ids(pick(gen));
    } else {
      row.add_draft_token_ids(static_cast<int32_t>(gen() % vocab));
    }
  }
  row.mutable_params()->set_seed(seed);
  row.set_step(seed * 7);
  row.set_sequence_id("seq" + std::to_string(seed));
  return row;
}

// What the library gives for `row` on one thread.
sampler::VerifyResult LocalVerify(const v1::VerifyRow& row) {
  v1::VerifyRequest request;
  *request.add_rows() = row;
  std::vector<DecodedVerifyRow> rows;
  absl::Status status = DecodeVerifyRequest(
      request, Limits(), [] { return uint64_t{1}; }, &rows);
  EXPECT_TRUE(status.ok()) << status;
  const DecodedVerifyRow& d = rows[0];
  sampler::VerifyInputs in;
  in.target_logits = d.target_logits;
  in.draft_token_ids = d.draft_token_ids;
  in.draft_probs = d.draft_probs;
  in.params = d.row.params;
  in.step = d.row.step;
  sampler::Sampler sampler;
  sampler::SamplerTarget target(&sampler);
  sampler::VerifyResult result;
  status = sampler::VerifyRow(target, in, &result);
  EXPECT_TRUE(status.ok()) << status;
  return result;
}

class VerifyServiceTest : public InProcessServerTestBase<::testing::TestWithParam<bool>> {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.sample_on_grpc_threads = GetParam();
    options.workers = 2;
    options.queue_depth = 8;
    options.limits.max_draft_tokens = 8;
    StartServer(options);
  }
};

INSTANTIATE_TEST_SUITE_P(, VerifyServiceTest, ::testing::Bool(),
                         [](const auto& test) { return test.param ? "CallerRuns" : "Workers"; });

TEST_P(VerifyServiceTest, RowsEqualTheLibraryInAnyBatch) {
  std::vector<v1::VerifyRow> rows;
  for (uint32_t s = 0; s < 12; ++s) {
    v1::VerifyRow row = RandomRow(300 + 50 * s, static_cast<int>(s % 6), s, s % 3 != 0);
    v1::SamplingParams* p = row.mutable_params();
    if (s % 4 == 1) p->set_temperature(0.0f);
    if (s % 4 == 2) {
      p->set_top_p(0.9f);
      p->set_repetition_penalty(1.2f);
      p->set_logprobs_mode(v1::LOGPROBS_MODE_PROCESSED);
    }
    p->set_top_logprobs(static_cast<int32_t>(s % 3));
    rows.push_back(row);
  }
  v1::VerifyRequest batch;
  for (const auto& row : rows) *batch.add_rows() = row;
  v1::VerifyResponse all;
  ASSERT_TRUE(Verify(batch, &all).ok());
  ASSERT_EQ(all.results_size(), static_cast<int>(rows.size()));
  for (size_t r = 0; r < rows.size(); ++r) {
    const sampler::VerifyResult local = LocalVerify(rows[r]);
    v1::VerifyRequest one;
    *one.add_rows() = rows[r];
    v1::VerifyResponse alone;
    ASSERT_TRUE(Verify(one, &alone).ok());
    for (const v1::VerifyResult* got : {&all.results(r), &alone.results(0)}) {
      EXPECT_EQ(got->num_accepted(), local.num_accepted) << r;
      ASSERT_EQ(got->tokens_size(), static_cast<int>(local.tokens.size())) << r;
      for (size_t i = 0; i < local.tokens.size(); ++i) {
        EXPECT_EQ(got->tokens(i).token_id(), local.tokens[i].token_id) << r << " " << i;
        EXPECT_EQ(got->tokens(i).logprob(), local.tokens[i].logprob) << r << " " << i;
        EXPECT_EQ(got->tokens(i).top_logprobs_size(),
                  static_cast<int>(local.tokens[i].top_logprobs.size()));
      }
      EXPECT_EQ(got->seed(), r);
      EXPECT_EQ(got->step(), r * 7);
      EXPECT_EQ(got->sequence_id(), "seq" + std::to_string(r));
    }
  }
}

TEST_P(VerifyServiceTest, NoDraftEqualsSample) {
  // The emitted token is Sample's, every field of it: logprob, top_logprobs, rank and
  // token_logprobs, in every logprobs mode, greedy included.
  const v1::LogprobsMode modes[] = {v1::LOGPROBS_MODE_RAW, v1::LOGPROBS_MODE_PROCESSED,
                                    v1::LOGPROBS_MODE_RAW_LOGITS,
                                    v1::LOGPROBS_MODE_PROCESSED_LOGITS};
  for (uint32_t s = 0; s < 12; ++s) {
    v1::VerifyRow row = RandomRow(1000, 0, s, false);
    v1::SamplingParams* params = row.mutable_params();
    params->set_top_k(s * 10);
    params->set_logprobs_mode(modes[s % 4]);
    if (s % 3 != 2) params->set_top_logprobs(2);
    if (s % 2 == 0) {
      for (int32_t id : {3, 999, 17}) params->add_logprob_token_ids(id);
    }
    params->set_repetition_penalty(1.3f);
    row.add_context_token_ids(7);
    int32_t banned = -1;
    if (s >= 8) {
      // Greedy, with a bad word that bans the best token after the context's 7: the
      // params Verify decodes are Sample's.
      params->set_temperature(0.0f);
      const auto& z = row.target_logits(0).values();
      for (int32_t j = 0; j < z.size(); ++j) {
        if (j != 7 && (banned < 0 || z[j] > z[banned])) banned = j;
      }
      v1::TokenSequence* word = params->add_bad_words();
      word->add_token_ids(7);
      word->add_token_ids(banned);
    }
    v1::VerifyRequest request;
    *request.add_rows() = row;
    v1::VerifyResponse verified;
    ASSERT_TRUE(Verify(request, &verified).ok());
    v1::SampleRequest sample_request;
    v1::Row* sample_row = sample_request.add_rows();
    *sample_row->mutable_logits() = row.target_logits(0);
    *sample_row->mutable_params() = row.params();
    *sample_row->mutable_context_token_ids() = row.context_token_ids();
    sample_row->set_step(row.step());
    v1::SampleResponse sampled;
    ASSERT_TRUE(Sample(sample_request, &sampled).ok());
    ASSERT_EQ(verified.results(0).tokens_size(), 1);
    EXPECT_EQ(verified.results(0).num_accepted(), 0);
    const v1::Sample& expected = sampled.results(0).samples(0);
    const bool ranked = s % 3 != 2 || s % 2 == 0;
    EXPECT_EQ(expected.rank() > 0, ranked) << s;
    EXPECT_EQ(expected.token_logprobs_size(), s % 2 == 0 ? 3 : 0) << s;
    EXPECT_NE(expected.token_id(), banned) << s;
    EXPECT_EQ(verified.results(0).tokens(0).SerializeAsString(), expected.SerializeAsString())
        << s << "\nVerify: " << verified.results(0).tokens(0).ShortDebugString()
        << "\nSample: " << expected.ShortDebugString();
  }
}

TEST_P(VerifyServiceTest, ServerPicksAndReturnsASeedThatReplays) {
  v1::VerifyRow row = RandomRow(500, 3, 5, true);
  row.mutable_params()->clear_seed();
  v1::VerifyRequest request;
  *request.add_rows() = row;
  v1::VerifyResponse response;
  ASSERT_TRUE(Verify(request, &response).ok());
  row.mutable_params()->set_seed(response.results(0).seed());
  const sampler::VerifyResult local = LocalVerify(row);
  ASSERT_EQ(response.results(0).tokens_size(), static_cast<int>(local.tokens.size()));
  for (size_t i = 0; i < local.tokens.size(); ++i) {
    EXPECT_EQ(response.results(0).tokens(i).token_id(), local.tokens[i].token_id);
  }
}

TEST_P(VerifyServiceTest, BadInputNamesRowPositionAndField) {
  v1::VerifyRequest request;
  *request.add_rows() = RandomRow(100, 2, 1, true);
  v1::VerifyRow bad = RandomRow(100, 2, 2, true);
  bad.mutable_target_logits(0)->set_values(5, std::nanf(""));
  *request.add_rows() = bad;
  v1::VerifyResponse response;
  grpc::Status status = Verify(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "rows[1].target_logits[0][5]: must not be NaN");

  request.clear_rows();
  bad = RandomRow(100, 9, 3, false);
  *request.add_rows() = bad;
  status = Verify(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "rows[0].draft_token_ids: 9 draft tokens exceed the server limit "
            "max_draft_tokens=8");
}

TEST_P(VerifyServiceTest, PositionsAfterTheFirstRejectionAreNotComputed) {
  // Greedy with a wrong first draft stops at position 0: a NaN at position 2 is never
  // read, whatever the number of workers; at position 0 it is reported.
  v1::VerifyRow row = RandomRow(100, 3, 4, false);
  row.mutable_params()->set_temperature(0.0f);
  const auto& z = row.target_logits(0).values();
  const int argmax = static_cast<int>(std::max_element(z.begin(), z.end()) - z.begin());
  row.set_draft_token_ids(0, (argmax + 1) % 100);
  row.mutable_target_logits(2)->set_values(7, std::nanf(""));
  v1::VerifyRequest request;
  *request.add_rows() = row;
  for (int attempt = 0; attempt < 20; ++attempt) {
    v1::VerifyResponse response;
    ASSERT_TRUE(Verify(request, &response).ok());
    EXPECT_EQ(response.results(0).num_accepted(), 0);
    EXPECT_EQ(response.results(0).tokens(0).token_id(), argmax);
  }
  request.mutable_rows(0)->set_draft_token_ids(0, argmax);
  request.mutable_rows(0)->mutable_target_logits(1)->set_values(3, INFINITY);
  v1::VerifyResponse response;
  const grpc::Status status = Verify(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "rows[0].target_logits[1][3]: must not be +inf");
}

TEST_P(VerifyServiceTest, EmptyRequestAndServerInfo) {
  v1::VerifyResponse response;
  ASSERT_TRUE(Verify(v1::VerifyRequest(), &response).ok());
  EXPECT_EQ(response.results_size(), 0);
  grpc::ClientContext context;
  v1::ServerInfo info;
  ASSERT_TRUE(stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
  EXPECT_EQ(info.max_draft_tokens(), 8);
  EXPECT_GE(info.rows_served(), 0u);
}

TEST_P(VerifyServiceTest, SharedMemoryRowsGiveTheSameResultAsValues) {
  // One region holding the k + 1 target rows then the k draft rows, float32.
  constexpr int kVocab = 256;
  constexpr int kK = 3;
  const v1::VerifyRow values = RandomRow(kVocab, kK, 9, /*with_q=*/true);
  const size_t row_bytes = kVocab * sizeof(float);
  const size_t bytes = (2 * kK + 1) * row_bytes;
  TestObject object(bytes);
  v1::VerifyRow shared = values;
  auto place = [&](v1::Logits* logits, size_t slot) {
    object.Write(slot * row_bytes, logits->values().data(), row_bytes);
    logits->clear_values();
    logits->set_dtype(v1::DTYPE_FLOAT32);
    logits->mutable_shared_memory()->set_region("verify");
    logits->mutable_shared_memory()->set_offset(slot * row_bytes);
    logits->mutable_shared_memory()->set_byte_size(row_bytes);
  };
  for (int i = 0; i <= kK; ++i) place(shared.mutable_target_logits(i), i);
  for (int i = 0; i < kK; ++i) place(shared.mutable_draft_probs(i), kK + 1 + i);
  v1::RegisterSharedMemoryRequest reg;
  reg.set_name("verify");
  reg.set_key(object.key());
  reg.set_byte_size(bytes);
  v1::RegisterSharedMemoryResponse registered;
  ASSERT_TRUE(stub_->RegisterSharedMemory(DeadlineContext().get(), reg, &registered).ok());
  v1::VerifyRequest by_values, in_region;
  *by_values.add_rows() = values;
  *in_region.add_rows() = shared;
  v1::VerifyResponse want, got;
  ASSERT_TRUE(Verify(by_values, &want).ok());
  const grpc::Status status = Verify(in_region, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString());
}

TEST_P(VerifyServiceTest, RowsAreCountedAsServed) {
  const uint64_t before = server_->service().rows_served();
  v1::VerifyRequest request;
  *request.add_rows() = RandomRow(64, 2, 1, false);
  *request.add_rows() = RandomRow(64, 0, 2, false);
  v1::VerifyResponse response;
  ASSERT_TRUE(Verify(request, &response).ok());
  EXPECT_EQ(server_->service().rows_served(), before + 2);
}

}  // namespace
}  // namespace tokensampler::server
