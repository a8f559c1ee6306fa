// The service in-process on 127.0.0.1:0, driven through the generated stub.
#include "server/service.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/codec.h"
#include "server/server.h"
#include "tests/server/test_util.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The stateless result a local Sampler gives for `row` with `seed` and `step`.
sampler::SampleResult LocalSample(const v1::Row& row, uint64_t seed, uint64_t step) {
  v1::SampleRequest request;
  *request.add_rows() = row;
  std::vector<DecodedRow> rows;
  absl::Status status = DecodeRequest(request, Limits(), RequestKind::kStateless,
                                      [] { return uint64_t{0}; }, &rows);
  EXPECT_TRUE(status.ok()) << status;
  rows[0].params.seed = seed;
  sampler::Sampler local;
  sampler::SampleResult result;
  status = local.Sample(rows[0].logits, rows[0].params, step, &result);
  EXPECT_TRUE(status.ok()) << status;
  return result;
}

std::vector<int32_t> Tokens(const v1::SampleResult& result) {
  std::vector<int32_t> out;
  for (const v1::Sample& s : result.samples()) out.push_back(s.token_id());
  return out;
}

std::vector<int32_t> Tokens(const sampler::SampleResult& result) {
  std::vector<int32_t> out;
  for (const sampler::Sample& s : result.samples) out.push_back(s.token_id);
  return out;
}

using Stream = grpc::ClientReaderWriter<v1::SampleRequest, v1::SampleResponse>;

// Every service test runs with gRPC threads sampling one-task calls themselves
// (--sample_on_grpc_threads) and without.
class ServiceTest : public InProcessServerTestBase<::testing::TestWithParam<bool>> {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.sample_on_grpc_threads = GetParam();
    options.workers = 2;
    options.queue_depth = 4;
    options.max_message_bytes = 4 << 20;
    options.limits.max_vocab = 200000;
    options.limits.max_rows = 16;
    options.limits.max_sequences = 4;
    options.limits.max_history_tokens = 64;
    StartServer(options);
    ASSERT_GT(server_->port(), 0);
  }

  // Pauses the pool and fills its 4 queue slots: two calls of two rows, on two workers,
  // take two slots each. Their statuses arrive once the pool resumes.
  std::vector<std::future<grpc::Status>> FillQueue() {
    server_->pool().Pause();
    v1::SampleRequest two_rows;
    *two_rows.add_rows() = MakeRow({1, 2, 3});
    *two_rows.add_rows() = MakeRow({3, 2, 1});
    std::vector<std::future<grpc::Status>> queued;
    for (int i = 0; i < 2; ++i) {
      queued.push_back(std::async(std::launch::async, [this, two_rows] {
        v1::SampleResponse r;
        return Sample(two_rows, &r);
      }));
    }
    EXPECT_TRUE(Eventually([this] { return server_->pool().queued() == 4; }));
    return queued;
  }
};

TEST_P(ServiceTest, ServerInfoReportsVersionLimitsAndCounters) {
  grpc::ClientContext context;
  v1::ServerInfo info;
  ASSERT_TRUE(stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
  EXPECT_EQ(info.version(), TOKENSAMPLER_VERSION);
  EXPECT_EQ(info.simd_target(), sampler::SimdTargetName());
  EXPECT_EQ(info.max_vocab(), 200000);
  EXPECT_EQ(info.max_rows_per_request(), 16);
  EXPECT_EQ(info.max_message_bytes(), 4 << 20);
  EXPECT_EQ(info.max_sequences_per_stream(), 4);
  EXPECT_EQ(info.max_history_tokens(), 64);
  EXPECT_EQ(info.max_num_samples(), kMaxNumSamples);
  EXPECT_EQ(info.max_top_logprobs(), sampler::kMaxTopLogprobs);
  EXPECT_EQ(info.worker_threads(), 2);
  EXPECT_EQ(info.presets_size(), 4);
  EXPECT_EQ(info.dtypes_size(), 3);
  EXPECT_THAT(info.instance(), testing::EndsWith(":" + std::to_string(getpid())));
  EXPECT_EQ(info.requests_served(), 0u);

  v1::SampleRequest request;
  *request.add_rows() = MakeRow({1, 2, 3});
  *request.add_rows() = MakeRow({3, 2, 1});
  v1::SampleResponse response;
  ASSERT_TRUE(Sample(request, &response).ok());
  grpc::ClientContext context2;
  ASSERT_TRUE(stub_->GetServerInfo(&context2, v1::GetServerInfoRequest(), &info).ok());
  EXPECT_EQ(info.requests_served(), 1u);
  EXPECT_EQ(info.rows_served(), 2u);
}

INSTANTIATE_TEST_SUITE_P(, ServiceTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "SampleOnGrpcThreads" : "WorkersOnly";
                         });

TEST_P(ServiceTest, OneRowCallsSampleOnTheGrpcThreadOnlyWhenAllowed) {
  v1::SampleRequest request;
  *request.add_rows() = MakeRow(RandomLogits(1000, 5));
  request.mutable_rows(0)->set_sequence_id("s");  // required in a stream
  for (int i = 0; i < 3; ++i) {
    v1::SampleResponse response;
    ASSERT_TRUE(Sample(request, &response).ok());
  }
  // Each call finds a free slot of the two, unless the previous call's thread has not
  // yet given its slot back: then it goes to a worker. So at least one ran here.
  const uint64_t unary = server_->pool().ran_here();
  EXPECT_EQ(unary > 0, GetParam());
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Write(request));
    v1::SampleResponse response;
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.results_size(), 1);
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  const uint64_t streamed = server_->pool().ran_here();
  EXPECT_EQ(streamed > unary, GetParam());
  // Two rows make two tasks: always the workers.
  *request.add_rows() = MakeRow(RandomLogits(1000, 6));
  request.mutable_rows(1)->set_sequence_id("t");
  v1::SampleResponse response;
  ASSERT_TRUE(Sample(request, &response).ok());
  EXPECT_EQ(server_->pool().ran_here(), streamed);
}

TEST_P(ServiceTest, GreedyPicksTheArgmaxOfEachRow) {
  v1::SampleRequest request;
  for (int argmax : {0, 5, 9, 3}) {
    std::vector<float> logits(10, 0.0f);
    logits[argmax] = 4.0f;
    v1::Row row = MakeRow(logits);
    row.mutable_params()->set_temperature(0);
    row.set_sequence_id("row" + std::to_string(argmax));
    *request.add_rows() = row;
  }
  v1::SampleResponse response;
  ASSERT_TRUE(Sample(request, &response).ok());
  ASSERT_EQ(response.results_size(), 4);
  const int expected[] = {0, 5, 9, 3};
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(response.results(i).samples_size(), 1);
    EXPECT_EQ(response.results(i).samples(0).token_id(), expected[i]);
    EXPECT_EQ(response.results(i).sequence_id(), "row" + std::to_string(expected[i]));
  }
}

TEST_P(ServiceTest, SeededRowGivesTheSameTokensInAnyBatch) {
  v1::Row probe = MakeRow(RandomLogits(5000, 1));
  probe.mutable_params()->set_seed(1234);
  probe.mutable_params()->set_num_samples(8);
  probe.mutable_params()->set_top_k(200);
  probe.set_step(17);
  const std::vector<int32_t> expected = Tokens(LocalSample(probe, 1234, 17));

  for (int position : {0, 3, 7}) {
    v1::SampleRequest request;
    for (int i = 0; i < 8; ++i) {
      if (i == position) {
        *request.add_rows() = probe;
      } else {
        v1::Row other = MakeRow(RandomLogits(3000 + i, 100 + i));
        other.set_step(i);
        *request.add_rows() = other;
      }
    }
    v1::SampleResponse response;
    ASSERT_TRUE(Sample(request, &response).ok());
    ASSERT_EQ(response.results_size(), 8);
    const v1::SampleResult& result = response.results(position);
    EXPECT_EQ(result.seed(), 1234u);
    EXPECT_EQ(result.step(), 17u);
    EXPECT_EQ(Tokens(result), expected) << "position " << position;
  }
}

TEST_P(ServiceTest, ServerPickedSeedReplays) {
  v1::Row row = MakeRow(RandomLogits(1000, 2));
  row.mutable_params()->set_num_samples(16);
  row.set_step(5);
  v1::SampleRequest request;
  *request.add_rows() = row;
  *request.add_rows() = row;
  v1::SampleResponse response;
  ASSERT_TRUE(Sample(request, &response).ok());
  const uint64_t seed0 = response.results(0).seed();
  EXPECT_NE(seed0, response.results(1).seed());  // picked per row
  EXPECT_EQ(response.results(0).step(), 5u);

  v1::Row replay = row;
  replay.mutable_params()->set_seed(seed0);
  v1::SampleRequest again;
  *again.add_rows() = replay;
  v1::SampleResponse replayed;
  ASSERT_TRUE(Sample(again, &replayed).ok());
  EXPECT_EQ(Tokens(replayed.results(0)), Tokens(response.results(0)));
  EXPECT_EQ(Tokens(response.results(0)), Tokens(LocalSample(row, seed0, 5)));
}

TEST_P(ServiceTest, EveryDtypeGivesTheSameDistribution) {
  // Values exact in bfloat16 and float16.
  const std::vector<float> values = {0.5f, -1.0f, 2.0f, 1.5f, -0.25f, 3.0f, 0.0f, 1.0f};
  v1::SampleRequest request;
  *request.add_rows() = MakeRow(values);
  v1::Row f32;
  f32.mutable_logits()->set_raw(LogitBytes(values, v1::DTYPE_FLOAT32));
  f32.mutable_logits()->set_dtype(v1::DTYPE_FLOAT32);
  *request.add_rows() = f32;
  for (v1::Dtype dtype : {v1::DTYPE_BFLOAT16, v1::DTYPE_FLOAT16}) {
    v1::Row row;
    row.mutable_logits()->set_raw(LogitBytes(values, dtype));
    row.mutable_logits()->set_dtype(dtype);
    *request.add_rows() = row;
  }
  grpc::ClientContext context;
  v1::DistributionResponse response;
  ASSERT_TRUE(stub_->GetDistribution(&context, request, &response).ok());
  ASSERT_EQ(response.distributions_size(), 4);
  const v1::Distribution& reference = response.distributions(0);
  ASSERT_EQ(reference.token_ids_size(), 8);
  EXPECT_EQ(reference.token_ids(0), 5);  // logit 3.0
  float sum = 0;
  for (int i = 0; i < reference.probs_size(); ++i) {
    sum += reference.probs(i);
    if (i > 0) {
      EXPECT_GE(reference.probs(i - 1), reference.probs(i));
    }
  }
  EXPECT_NEAR(sum, 1.0f, 1e-5f);
  for (int d = 1; d < 4; ++d) {
    const v1::Distribution& other = response.distributions(d);
    ASSERT_EQ(other.token_ids_size(), reference.token_ids_size()) << d;
    for (int i = 0; i < other.token_ids_size(); ++i) {
      EXPECT_EQ(other.token_ids(i), reference.token_ids(i)) << d;
      EXPECT_NEAR(other.probs(i), reference.probs(i), 1e-6f) << d;
    }
  }
}

TEST_P(ServiceTest, DistributionMatchesTheLibrary) {
  v1::Row row = MakeRow(RandomLogits(4000, 3));
  row.mutable_params()->set_top_p(0.9f);
  row.mutable_params()->set_temperature(0.7f);
  v1::SampleRequest request;
  *request.add_rows() = row;
  grpc::ClientContext context;
  v1::DistributionResponse response;
  ASSERT_TRUE(stub_->GetDistribution(&context, request, &response).ok());

  std::vector<DecodedRow> rows;
  ASSERT_TRUE(DecodeRequest(request, Limits(), RequestKind::kStateless,
                            [] { return uint64_t{0}; }, &rows)
                  .ok());
  sampler::Sampler local;
  sampler::DistributionResult expected;
  ASSERT_TRUE(local.Distribution(rows[0].logits, rows[0].params, &expected).ok());
  const v1::Distribution& got = response.distributions(0);
  ASSERT_EQ(static_cast<size_t>(got.token_ids_size()), expected.token_ids.size());
  ASSERT_LT(expected.token_ids.size(), 4000u);  // top_p cut something
  for (size_t i = 0; i < expected.token_ids.size(); ++i) {
    EXPECT_EQ(got.token_ids(i), expected.token_ids[i]);
    EXPECT_EQ(got.probs(i), expected.probs[i]);
  }
}

TEST_P(ServiceTest, EmptyRequestGetsEmptyResponse) {
  v1::SampleResponse response;
  ASSERT_TRUE(Sample(v1::SampleRequest(), &response).ok());
  EXPECT_EQ(response.results_size(), 0);
}

TEST_P(ServiceTest, BadRowRejectsTheRequestNamingRowAndField) {
  v1::SampleRequest request;
  for (int i = 0; i < 4; ++i) *request.add_rows() = MakeRow({1, 2, 3});
  request.mutable_rows(3)->mutable_params()->set_top_p(1.5f);
  v1::SampleResponse response;
  grpc::Status status = Sample(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("rows[3].params.top_p:"));
  EXPECT_EQ(response.results_size(), 0);

  // Logit values are checked by the library on the workers; same error shape.
  v1::SampleRequest nan_request;
  *nan_request.add_rows() = MakeRow({1, 2, 3});
  *nan_request.add_rows() = MakeRow({1, std::nanf(""), 3});
  status = Sample(nan_request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("rows[1].logits"));

  v1::SampleRequest masked;
  const float inf = std::numeric_limits<float>::infinity();
  *masked.add_rows() = MakeRow({-inf, -inf});
  status = Sample(masked, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("rows[0].logits"));
}

TEST_P(ServiceTest, LimitsAreEnforced) {
  v1::SampleRequest rows17;
  for (int i = 0; i < 17; ++i) *rows17.add_rows() = MakeRow({1, 2});
  v1::SampleResponse response;
  grpc::Status status = Sample(rows17, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_rows=16"));

  v1::SampleRequest big_vocab;
  *big_vocab.add_rows() = MakeRow(std::vector<float>(200001, 0.0f));
  status = Sample(big_vocab, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("max_vocab=200000"));

  // Over --max_message_bytes (4 MiB here): gRPC refuses it before the service sees it.
  v1::SampleRequest huge;
  for (int i = 0; i < 6; ++i) *huge.add_rows() = MakeRow(std::vector<float>(200000, 0.0f));
  status = Sample(huge, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_P(ServiceTest, FullQueueGetsResourceExhausted) {
  std::vector<std::future<grpc::Status>> queued = FillQueue();
  ASSERT_EQ(server_->pool().queued(), 4u);
  v1::SampleRequest two_rows;
  *two_rows.add_rows() = MakeRow({1, 2, 3});
  *two_rows.add_rows() = MakeRow({3, 2, 1});
  v1::SampleResponse response;
  grpc::Status status = Sample(two_rows, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("queue_depth=4"));
  server_->pool().Resume();
  for (auto& f : queued) EXPECT_TRUE(f.get().ok());
}

TEST_P(ServiceTest, CancelledCallStopsConsumingWork) {
  server_->pool().Pause();
  v1::SampleRequest request;
  for (int i = 0; i < 6; ++i) *request.add_rows() = MakeRow(RandomLogits(1000, i));
  grpc::ClientContext context;
  v1::SampleResponse response;
  std::promise<grpc::Status> done;
  stub_->async()->Sample(&context, &request, &response,
                         [&done](grpc::Status s) { done.set_value(s); });
  ASSERT_TRUE(Eventually([this] { return server_->pool().queued() == 2; }));
  context.TryCancel();
  EXPECT_EQ(done.get_future().get().error_code(), grpc::StatusCode::CANCELLED);
  const uint64_t served = server_->service().rows_served();
  // The server learns of the cancellation asynchronously; wait for it, then let the
  // workers go: the queued rows must be skipped, not sampled.
  ASSERT_TRUE(Eventually([this] { return server_->service().calls_cancelled() == 1; }));
  server_->pool().Resume();
  ASSERT_TRUE(Eventually([this] { return server_->service().rows_skipped() == 6; }));
  EXPECT_EQ(server_->service().rows_served(), served);
}

TEST_P(ServiceTest, ExpiredDeadlineStopsConsumingWork) {
  server_->pool().Pause();
  v1::SampleRequest request;
  for (int i = 0; i < 4; ++i) *request.add_rows() = MakeRow(RandomLogits(1000, i));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  v1::SampleResponse response;
  grpc::Status status = stub_->Sample(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server sees the cancellation too; resume and the queued rows are skipped.
  ASSERT_TRUE(Eventually([this] { return server_->pool().queued() == 2; }));
  ASSERT_TRUE(Eventually([this] { return server_->service().calls_cancelled() == 1; }));
  server_->pool().Resume();
  EXPECT_TRUE(Eventually([this] { return server_->service().rows_skipped() == 4; }))
      << "skipped " << server_->service().rows_skipped() << " served "
      << server_->service().rows_served();
  EXPECT_EQ(server_->service().rows_served(), 0u);
}

// --- SampleStream ------------------------------------------------------------------

TEST_P(ServiceTest, StreamTokensEqualStatelessSamples) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
  std::vector<int32_t> history_a(prompt), history_b;
  uint64_t seed_a = 0, seed_b = 0;
  for (int step = 0; step < 6; ++step) {
    v1::SampleRequest message;
    v1::Row a = MakeRow(RandomLogits(50, 10 + step));
    a.set_sequence_id("a");
    a.mutable_params()->set_repetition_penalty(1.8f);
    a.mutable_params()->set_presence_penalty(0.7f);
    a.mutable_params()->set_frequency_penalty(0.3f);
    a.set_step(1000);  // ignored in streams
    if (step == 0) {
      a.mutable_params()->set_seed(77);
      a.mutable_context_token_ids()->Add(prompt.begin(), prompt.end());
    }
    v1::Row b = MakeRow(RandomLogits(50, 20 + step));
    b.set_sequence_id("b");
    b.mutable_params()->set_frequency_penalty(1.1f);
    // "b" joins late and the order of the rows changes.
    if (step >= 2) *message.add_rows() = b;
    *message.add_rows() = a;
    ASSERT_TRUE(stream->Write(message));
    v1::SampleResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_EQ(response.results_size(), message.rows_size());
    for (int i = 0; i < message.rows_size(); ++i) {
      const v1::SampleResult& result = response.results(i);
      const bool is_a = result.sequence_id() == "a";
      std::vector<int32_t>& history = is_a ? history_a : history_b;
      uint64_t& seed = is_a ? seed_a : seed_b;
      if (is_a && step == 0) {
        EXPECT_EQ(result.seed(), 77u);
      }
      if (seed == 0) seed = result.seed();
      EXPECT_EQ(result.seed(), seed);
      EXPECT_EQ(result.step(), static_cast<uint64_t>(is_a ? step : step - 2));
      // The same row sent statelessly with the full history as context.
      v1::Row stateless = message.rows(i);
      stateless.clear_context_token_ids();
      stateless.mutable_context_token_ids()->Add(history.begin(), history.end());
      EXPECT_EQ(Tokens(result), Tokens(LocalSample(stateless, seed, result.step())))
          << result.sequence_id() << " step " << step;
      history.push_back(result.samples(0).token_id());
    }
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_P(ServiceTest, MirostatStreamEqualsStatelessCallsPassingMuBack) {
  // 50 steps of two sequences (v2 under STANDARD with DRY, v1 under LLAMA_CPP): the
  // stream keeps mu per sequence; stateless Sample calls with the same rows, the whole
  // history and the previous result's mirostat_mu give the same tokens and the same mu.
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  std::map<std::string, std::vector<int32_t>> history;
  std::map<std::string, float> mu;  // the stateless trajectory
  std::map<std::string, std::vector<float>> trajectory;
  for (int step = 0; step < 50; ++step) {
    v1::SampleRequest message;
    for (int s = 0; s < 2; ++s) {
      v1::Row row = MakeRow(RandomLogits(300, 100 * s + step));
      row.set_sequence_id(s == 0 ? "v2" : "v1");
      v1::SamplingParams* p = row.mutable_params();
      p->set_seed(5 + s);
      p->mutable_mirostat()->set_version(s == 0 ? 2 : 1);
      p->mutable_mirostat()->set_tau(s == 0 ? 3.0f : 4.0f);
      p->mutable_mirostat()->set_eta(0.2f);
      if (s == 0) {
        p->mutable_dry()->set_multiplier(0.8f);
        p->mutable_dry()->set_base(1.75f);
        p->mutable_dry()->set_allowed_length(1);
        p->set_temperature(0.9f);
      } else {
        p->set_preset(v1::PRESET_LLAMA_CPP);
        p->mutable_mirostat()->set_m(50);
      }
      // Later rows' mu is not read in a stream; send a wrong one to prove it.
      if (step > 0) p->mutable_mirostat()->set_mu(-100.0f);
      *message.add_rows() = row;
    }
    ASSERT_TRUE(stream->Write(message));
    v1::SampleResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_EQ(response.results_size(), 2);
    for (int i = 0; i < 2; ++i) {
      const v1::SampleResult& result = response.results(i);
      const std::string id = result.sequence_id();
      ASSERT_TRUE(result.has_mirostat_mu());
      v1::SampleRequest stateless;
      v1::Row* row = stateless.add_rows();
      *row = message.rows(i);
      row->set_step(static_cast<uint64_t>(step));
      row->mutable_context_token_ids()->Add(history[id].begin(), history[id].end());
      if (step == 0) {
        row->mutable_params()->mutable_mirostat()->clear_mu();
      } else {
        row->mutable_params()->mutable_mirostat()->set_mu(mu[id]);
      }
      v1::SampleResponse direct;
      ASSERT_TRUE(Sample(stateless, &direct).ok());
      ASSERT_TRUE(direct.results(0).has_mirostat_mu());
      EXPECT_EQ(Tokens(result), Tokens(direct.results(0))) << id << " step " << step;
      EXPECT_EQ(result.mirostat_mu(), direct.results(0).mirostat_mu()) << id << " step " << step;
      mu[id] = direct.results(0).mirostat_mu();
      trajectory[id].push_back(mu[id]);
      history[id].push_back(result.samples(0).token_id());
    }
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  // mu moved (it is a trajectory, not a constant) and stayed finite.
  for (const auto& [id, values] : trajectory) {
    EXPECT_NE(*std::min_element(values.begin(), values.end()),
              *std::max_element(values.begin(), values.end()))
        << id;
    for (float v : values) EXPECT_TRUE(std::isfinite(v)) << id;
  }
}

TEST_P(ServiceTest, StreamPenaltiesSeeEarlierTokensUntilEndSequence) {
  // Four tied logits, greedy, a large presence penalty: each step must pick the lowest
  // id not yet generated, so the tokens are 0, 1, 2, 3 - then 0 again after a restart.
  v1::Row row = MakeRow({5, 5, 5, 5});
  row.set_sequence_id("s");
  row.mutable_params()->set_temperature(0);
  row.mutable_params()->set_presence_penalty(10);
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  auto step = [&](const v1::Row& r) {
    v1::SampleRequest message;
    *message.add_rows() = r;
    EXPECT_TRUE(stream->Write(message));
    v1::SampleResponse response;
    EXPECT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.results_size(), 1);
    return response.results_size() == 1 ? response.results(0) : v1::SampleResult();
  };
  for (int expected = 0; expected < 4; ++expected) {
    v1::SampleResult result = step(row);
    ASSERT_EQ(result.samples_size(), 1);
    EXPECT_EQ(result.samples(0).token_id(), expected);
    EXPECT_EQ(result.step(), static_cast<uint64_t>(expected));
  }
  v1::Row end;
  end.set_sequence_id("s");
  end.set_end_sequence(true);
  v1::SampleResult freed = step(end);
  EXPECT_EQ(freed.samples_size(), 0);
  EXPECT_EQ(freed.sequence_id(), "s");
  v1::SampleResult restarted = step(row);
  ASSERT_EQ(restarted.samples_size(), 1);
  EXPECT_EQ(restarted.samples(0).token_id(), 0);  // history forgotten
  EXPECT_EQ(restarted.step(), 0u);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_P(ServiceTest, StreamEndSequenceWithLogitsSamplesThenFrees) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  // max_sequences is 4: ending four sequences must make room for four new ones.
  for (int round = 0; round < 2; ++round) {
    v1::SampleRequest message;
    for (int i = 0; i < 4; ++i) {
      v1::Row row = MakeRow({1, 2, 3});
      row.set_sequence_id("r" + std::to_string(round) + "_" + std::to_string(i));
      row.set_end_sequence(true);
      *message.add_rows() = row;
    }
    ASSERT_TRUE(stream->Write(message));
    v1::SampleResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_EQ(response.results_size(), 4);
    for (const v1::SampleResult& r : response.results()) EXPECT_EQ(r.samples_size(), 1);
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// Sends `messages` on a fresh stream, reading one response per message until one fails;
// returns the final status and how many responses came back.
grpc::Status RunStream(v1::Sampler::Stub* stub, const std::vector<v1::SampleRequest>& messages,
                       int* responses) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  std::unique_ptr<Stream> stream = stub->SampleStream(&context);
  *responses = 0;
  for (const v1::SampleRequest& message : messages) {
    if (!stream->Write(message)) break;
    v1::SampleResponse response;
    if (!stream->Read(&response)) break;
    ++*responses;
  }
  stream->WritesDone();
  return stream->Finish();
}

TEST_P(ServiceTest, StreamErrorsEndTheStreamNamingTheRow) {
  v1::SampleRequest good;
  v1::Row a = MakeRow({1, 2, 3});
  a.set_sequence_id("a");
  *good.add_rows() = a;

  v1::SampleRequest duplicate = good;
  *duplicate.add_rows() = a;
  int responses = 0;
  grpc::Status status = RunStream(stub_.get(), {good, duplicate, good}, &responses);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("rows[1].sequence_id: must be unique"));
  EXPECT_EQ(responses, 1);  // the message before the bad one was answered

  v1::SampleRequest no_id;
  *no_id.add_rows() = MakeRow({1, 2});
  status = RunStream(stub_.get(), {no_id}, &responses);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("rows[0].sequence_id: required"));

  v1::SampleRequest five;
  for (int i = 0; i < 5; ++i) {
    v1::Row row = MakeRow({1, 2});
    row.set_sequence_id(std::to_string(i));
    *five.add_rows() = row;
  }
  status = RunStream(stub_.get(), {five}, &responses);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_sequences=4"));

  v1::SampleRequest long_context = good;
  for (int i = 0; i < 64; ++i) long_context.mutable_rows(0)->add_context_token_ids(1);
  status = RunStream(stub_.get(), {long_context}, &responses);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_history_tokens=64"));

  // A sampling error on the workers ends the stream the same way.
  v1::SampleRequest nan = good;
  nan.mutable_rows(0)->mutable_logits()->set_values(1, std::nanf(""));
  status = RunStream(stub_.get(), {good, nan}, &responses);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("rows[0].logits"));
  EXPECT_EQ(responses, 1);
}

TEST_P(ServiceTest, StreamCancelledByClientEnds) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  v1::SampleRequest message;
  v1::Row a = MakeRow({1, 2, 3});
  a.set_sequence_id("a");
  *message.add_rows() = a;
  ASSERT_TRUE(stream->Write(message));
  v1::SampleResponse response;
  ASSERT_TRUE(stream->Read(&response));
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_P(ServiceTest, StreamWithFullQueueGetsResourceExhausted) {
  std::vector<std::future<grpc::Status>> queued = FillQueue();
  ASSERT_EQ(server_->pool().queued(), 4u);
  v1::SampleRequest message;
  v1::Row a = MakeRow({1, 2, 3});
  a.set_sequence_id("a");
  *message.add_rows() = a;
  int responses = 0;
  grpc::Status status = RunStream(stub_.get(), {message}, &responses);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("queue_depth=4"));
  EXPECT_EQ(responses, 0);
  server_->pool().Resume();
  for (auto& f : queued) EXPECT_TRUE(f.get().ok());
}

TEST_P(ServiceTest, CancelledStreamSkipsItsQueuedRows) {
  server_->pool().Pause();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  v1::SampleRequest message;
  for (int i = 0; i < 3; ++i) {
    v1::Row row = MakeRow(RandomLogits(500, i));
    row.set_sequence_id(std::to_string(i));
    *message.add_rows() = row;
  }
  ASSERT_TRUE(stream->Write(message));
  ASSERT_TRUE(Eventually([this] { return server_->pool().queued() == 2; }));
  context.TryCancel();
  ASSERT_TRUE(Eventually([this] { return server_->service().calls_cancelled() == 1; }));
  server_->pool().Resume();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([this] { return server_->service().rows_skipped() == 3; }));
  EXPECT_EQ(server_->service().rows_served(), 0u);
}

// --- Health and reflection, through the generic stub (their protos are not installed) --

// grpc.health.v1.HealthCheckRequest{service = name}, hand-encoded (field 1, string).
std::string HealthRequest(const std::string& name) {
  if (name.empty()) return "";
  return std::string("\x0a", 1) + static_cast<char>(name.size()) + name;
}

TEST_P(ServiceTest, HealthReportsServingOverallAndForTheService) {
  grpc::GenericStub stub(channel_);
  const std::string kServing("\x08\x01", 2);  // HealthCheckResponse{status = SERVING}
  std::string response;
  ASSERT_TRUE(GenericUnary(&stub, "/grpc.health.v1.Health/Check", HealthRequest(""),
                           &response)
                  .ok());
  EXPECT_EQ(response, kServing);
  ASSERT_TRUE(GenericUnary(&stub, "/grpc.health.v1.Health/Check",
                           HealthRequest(kServiceName), &response)
                  .ok());
  EXPECT_EQ(response, kServing);
  EXPECT_EQ(GenericUnary(&stub, "/grpc.health.v1.Health/Check", HealthRequest("nope"),
                         &response)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_P(ServiceTest, LameDuckReportsNotServingAndStillServesNewCalls) {
  grpc::GenericStub health(channel_);
  const std::string kNotServing("\x08\x02", 2);  // HealthCheckResponse{NOT_SERVING}
  EXPECT_FALSE(server_->lame_duck());
  server_->EnterLameDuck();
  server_->EnterLameDuck();  // idempotent
  EXPECT_TRUE(server_->lame_duck());
  for (const char* service : {"", kServiceName}) {
    std::string response;
    ASSERT_TRUE(GenericUnary(&health, "/grpc.health.v1.Health/Check",
                             HealthRequest(service), &response)
                    .ok());
    EXPECT_EQ(response, kNotServing) << "service '" << service << "'";
  }

  // Calls still work: on the open connection and on a new one.
  v1::SampleRequest request;
  v1::Row row = MakeRow({0.5f, 3.0f, 1.0f});
  row.mutable_params()->set_temperature(0);
  *request.add_rows() = row;
  v1::SampleResponse response;
  grpc::Status status = Sample(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.results(0).samples(0).token_id(), 1);

  auto fresh = v1::Sampler::NewStub(PrivateChannel(server_->address()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  response.Clear();
  status = fresh->Sample(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.results(0).samples(0).token_id(), 1);
  EXPECT_EQ(server_->service().requests_served(), 2u);

  server_->Shutdown(absl::Seconds(10));
  EXPECT_FALSE(Sample(request, &response).ok());  // the port is closed now
}

TEST(ServerOptionsTest, MaxConnectionAgeSendsGoawayAndClientsReconnect) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.workers = 1;
  options.max_connection_age = absl::Milliseconds(300);
  options.max_connection_age_grace = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = PrivateChannel((*server)->address());
  auto stub = v1::Sampler::NewStub(channel);
  v1::ServerInfo info;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
  }
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // The server's GOAWAY at the connection's age moves the channel off READY (to IDLE);
  // the next call connects again and succeeds.
  EXPECT_TRUE(channel->WaitForStateChange(
      GRPC_CHANNEL_READY, std::chrono::system_clock::now() + std::chrono::seconds(30)));
  EXPECT_NE(channel->GetState(false), GRPC_CHANNEL_READY);
  grpc::ClientContext context;
  EXPECT_TRUE(stub->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
  (*server)->Shutdown(absl::Seconds(5));
}

TEST(ServerOptionsTest, NegativeDurationsAreRejected) {
  ServerOptions options;
  options.max_connection_age = absl::Seconds(-1);
  EXPECT_EQ(ValidateServerOptions(options).message(),
            "--max_connection_age: must be >= 0 (0 = off), got -1s");
  options.max_connection_age = absl::ZeroDuration();
  options.max_connection_age_grace = absl::Seconds(-2);
  EXPECT_EQ(ValidateServerOptions(options).message(),
            "--max_connection_age_grace: must be >= 0, got -2s");
}

// ServerReflectionInfo with one list_services request; `*bytes` gets the response.
grpc::Status ListServicesByReflection(const std::shared_ptr<grpc::Channel>& channel,
                                      std::string* bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  EXPECT_NE(call, nullptr);
  auto wait = [&cq](intptr_t expected) {
    void* tag;
    bool ok;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), expected);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  wait(1);
  // ServerReflectionRequest{list_services = ""}: field 7, length 0.
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  wait(2);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  const bool read = wait(3);
  call->WritesDone(reinterpret_cast<void*>(4));
  wait(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  wait(5);
  bytes->clear();
  std::vector<grpc::Slice> slices;
  if (read && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      bytes->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

TEST_P(ServiceTest, ReflectionListsTheService) {
  std::string bytes;
  grpc::Status status = ListServicesByReflection(channel_, &bytes);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(bytes, HasSubstr("tokensampler.v1.Sampler"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
}

// --reflection=false: the reflection service is not there, the Sampler and health are.
TEST(ServerOptionsTest, ReflectionCanBeTurnedOff) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.workers = 1;
  options.reflection = false;
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = PrivateChannel((*server)->address());
  std::string bytes;
  EXPECT_EQ(ListServicesByReflection(channel, &bytes).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  grpc::ClientContext context;
  v1::ServerInfo info;
  EXPECT_TRUE(v1::Sampler::NewStub(channel)
                  ->GetServerInfo(&context, v1::GetServerInfoRequest(), &info)
                  .ok());
  (*server)->Shutdown(absl::Seconds(5));
}

// gRPC turns SO_REUSEPORT on by default; then a second server would start on a busy
// port and share its connections with the first.
TEST(ServerOptionsTest, BusyPortIsRefused) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.workers = 1;
  absl::StatusOr<std::unique_ptr<Server>> first = Server::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  options.address = (*first)->address();
  absl::StatusOr<std::unique_ptr<Server>> second = Server::Start(options);
  EXPECT_FALSE(second.ok());
  (*first)->Shutdown(absl::Seconds(5));
}

TEST(ServerOptionsTest, AddressNeedsAPort) {
  ServerOptions options;
  for (const char* address : {"localhost", "127.0.0.1", "[::1]", "localhost:", "host:http",
                              "127.0.0.1:65536", "[::1]:-1"}) {
    options.address = address;
    EXPECT_THAT(ValidateServerOptions(options).message(),
                HasSubstr(absl::StrCat("--address: '", address, "' has no valid port")));
  }
  for (const char* address : {"localhost:0", "127.0.0.1:50051", "[::]:65535", "unix:/tmp/s"}) {
    options.address = address;
    EXPECT_TRUE(ValidateServerOptions(options).ok()) << address;
  }
}

// Client strings are quoted into statuses and logs at most 64 bytes long: an 8 KiB
// sequence_id must still give INVALID_ARGUMENT (an echo of it would exceed gRPC's 8 KiB
// metadata limit and come back RESOURCE_EXHAUSTED instead), and a 1 MiB one a short
// message.
TEST_P(ServiceTest, LongSequenceIdsAreTruncatedInStatuses) {
  for (size_t length : {size_t{8} << 10, size_t{1} << 20}) {
    const std::string id(length, 'q');
    v1::SampleRequest message;
    for (int i = 0; i < 2; ++i) {
      v1::Row row = MakeRow({1, 2, 3});
      row.set_sequence_id(id);
      *message.add_rows() = row;
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
    stream->Write(message);
    stream->WritesDone();
    v1::SampleResponse response;
    EXPECT_FALSE(stream->Read(&response));
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << length;
    EXPECT_THAT(status.error_message(),
                StartsWith("rows[1].sequence_id: must be unique within a message, \"qqqq"));
    EXPECT_THAT(status.error_message(),
                HasSubstr(absl::StrCat("... (", length, " bytes) appears more than once")));
    EXPECT_LT(status.error_message().size(), 200u);
  }
}

// Whatever bytes a client sends, the answer is a deliberate status, never UNKNOWN or
// a crash: flip bytes of valid requests and send them raw.
TEST_P(ServiceTest, CorruptedRequestsNeverGetUnknown) {
  v1::SampleRequest valid;
  for (int i = 0; i < 3; ++i) {
    v1::Row row = MakeRow(RandomLogits(40, i));
    row.mutable_params()->set_top_k(5);
    row.mutable_params()->set_top_p(0.9f);
    (*row.mutable_params()->mutable_logit_bias())[3] = 1.0f;
    row.mutable_params()->add_banned_token_ids(7);
    row.mutable_params()->set_num_samples(2);
    row.add_context_token_ids(1);
    row.set_sequence_id("s" + std::to_string(i));
    *valid.add_rows() = row;
  }
  const std::string bytes = valid.SerializeAsString();
  grpc::GenericStub stub(channel_);
  std::mt19937 gen(7);
  std::map<grpc::StatusCode, int> codes;
  for (int trial = 0; trial < 300; ++trial) {
    std::string mutated = bytes;
    const int flips = 1 + trial % 4;
    for (int f = 0; f < flips; ++f) {
      mutated[gen() % mutated.size()] = static_cast<char>(gen());
    }
    const char* method = trial % 2 == 0 ? "/tokensampler.v1.Sampler/Sample"
                                        : "/tokensampler.v1.Sampler/GetDistribution";
    std::string response;
    grpc::Status status = GenericUnary(&stub, method, mutated, &response);
    ++codes[status.error_code()];
    EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
        << status.error_code() << " " << status.error_message();
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      EXPECT_THAT(status.error_message(), testing::ContainsRegex("^(rows|request: not a valid "
                                                                 "tokensampler.v1.SampleRequest)"));
    }
  }
  // Both kinds of failure occur: bytes that do not parse, and rows that break a rule.
  EXPECT_GT(codes[grpc::StatusCode::INVALID_ARGUMENT], 20);
  EXPECT_GT(codes[grpc::StatusCode::OK], 0);
  grpc::ClientContext context;
  v1::ServerInfo info;
  EXPECT_TRUE(stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
}

TEST_P(ServiceTest, ShutdownTurnsHealthOffAndLetsOpenStreamsFinish) {
  // A stream opened before shutdown keeps working during the drain.
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  v1::SampleRequest message;
  v1::Row a = MakeRow({1, 2, 3});
  a.set_sequence_id("a");
  *message.add_rows() = a;
  ASSERT_TRUE(stream->Write(message));
  v1::SampleResponse response;
  ASSERT_TRUE(stream->Read(&response));

  // A health Watch opened before shutdown sees SERVING, then NOT_SERVING.
  grpc::GenericStub generic(channel_);
  grpc::ClientContext watch_context;
  watch_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto watch = generic.PrepareCall(&watch_context, "/grpc.health.v1.Health/Watch", &cq);
  auto next = [&cq](intptr_t expected) {
    void* tag;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), expected);
    return ok;
  };
  auto read_status = [&]() {
    grpc::ByteBuffer buffer;
    watch->Read(&buffer, reinterpret_cast<void*>(3));
    if (!next(3)) return std::string("read failed");
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (buffer.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    return bytes;
  };
  watch->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(next(1));
  grpc::Slice watch_slice(HealthRequest(kServiceName));
  grpc::ByteBuffer watch_request(&watch_slice, 1);
  watch->WriteLast(watch_request, grpc::WriteOptions(), reinterpret_cast<void*>(2));
  ASSERT_TRUE(next(2));
  EXPECT_EQ(read_status(), std::string("\x08\x01", 2));  // SERVING

  std::thread shutdown([this] { server_->Shutdown(absl::Seconds(10)); });
  EXPECT_EQ(read_status(), std::string("\x08\x02", 2));  // NOT_SERVING
  watch_context.TryCancel();
  grpc::Status watch_status;
  watch->Finish(&watch_status, reinterpret_cast<void*>(4));
  next(4);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }

  ASSERT_TRUE(stream->Write(message));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.results(0).step(), 1u);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  shutdown.join();
}

}  // namespace
}  // namespace tokensampler::server
