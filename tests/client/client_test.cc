// The typed client and the load generator against an in-process fake server.
#include "client/client.h"

#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/bench.h"
#include "client/bench_report.h"
#include "gtest/gtest.h"
#include "tests/client/fake_server.h"

namespace tokensampler::client {
namespace {

using testing::FakeServer;

v1::SampleRequest OneRow(std::vector<float> values, std::string sequence_id = "") {
  v1::SampleRequest request;
  v1::Row* row = request.add_rows();
  row->mutable_logits()->mutable_values()->Assign(values.begin(), values.end());
  row->set_sequence_id(std::move(sequence_id));
  return request;
}

TEST(ClientTest, CallsEachRpc) {
  FakeServer server;
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_FALSE((*client)->target().round_robin);

  auto sample = (*client)->Sample(OneRow({0.1f, 3.0f, 1.0f}));
  ASSERT_TRUE(sample.ok()) << sample.status();
  ASSERT_EQ(sample->results_size(), 1);
  EXPECT_EQ(sample->results(0).samples(0).token_id(), 1);
  EXPECT_EQ(sample->results(0).seed(), 777u);

  auto dist = (*client)->GetDistribution(OneRow({5.0f, 1.0f}));
  ASSERT_TRUE(dist.ok()) << dist.status();
  EXPECT_EQ(dist->distributions(0).token_ids(0), 0);

  auto info = (*client)->GetServerInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version(), "0.0.0-fake");
}

TEST(ClientTest, ServerErrorsKeepCodeAndMessage) {
  FakeServer server;
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok());
  v1::SampleRequest request = OneRow({1, 2});
  request.mutable_rows(0)->mutable_params()->set_top_p(1.5f);
  auto r = (*client)->Sample(request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "rows[0].params.top_p: must be in (0, 1], got 1.5");
}

TEST(ClientTest, DownServerSaysWhere) {
  std::string address;
  {
    FakeServer server;  // take a free port, then close it
    address = server.address();
  }
  auto client = Client::Create(address);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Sample(OneRow({1}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(absl::StrCat("cannot reach server at ", address, ": ")),
            std::string::npos)
      << r.status().message();
  auto h = (*client)->Health();
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kUnavailable);
}

TEST(ClientTest, BadAddressIsAnError) {
  auto client = Client::Create("nowhere");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(client.status().message().find("--server: 'nowhere'"), std::string::npos);
}

TEST(ClientTest, Deadline) {
  FakeServer server;
  ClientOptions options;
  options.timeout = absl::Milliseconds(200);
  auto client = Client::Create(server.address(), options);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Sample(OneRow({1}, "sleep"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("raise --timeout"), std::string::npos);
}

TEST(ClientTest, Health) {
  FakeServer server;
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(*(*client)->Health(), HealthStatus::kServing);
  EXPECT_EQ(*(*client)->Health("tokensampler.v1.Sampler"), HealthStatus::kServing);
  EXPECT_EQ(*(*client)->Health("no.such.Service"), HealthStatus::kServiceUnknown);
  server.health()->SetServingStatus("tokensampler.v1.Sampler", false);
  EXPECT_EQ(*(*client)->Health("tokensampler.v1.Sampler"), HealthStatus::kNotServing);
  server.health()->SetServingStatus(false);
  EXPECT_EQ(*(*client)->Health(), HealthStatus::kNotServing);
  EXPECT_EQ(HealthStatusName(HealthStatus::kNotServing), "NOT_SERVING");
}

TEST(ClientTest, Stream) {
  FakeServer server;
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok());
  auto stream = (*client)->OpenStream();
  for (int step = 0; step < 3; ++step) {
    auto r = stream->Step(OneRow({0, 0, 9}, "seq"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->results(0).step(), static_cast<uint64_t>(step));
    EXPECT_EQ(r->results(0).samples(0).token_id(), 2);
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(server.service().stream_messages.load(), 3);

  // A rejected message ends the stream with the server's status.
  auto broken = (*client)->OpenStream();
  auto r = broken->Step(OneRow({1}, "fail"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(broken->Step(OneRow({1})).ok());
}

TEST(ClientTest, CommaListSpreadsCallsRoundRobin) {
  FakeServer a("a"), b("b");
  auto client = Client::Create(absl::StrCat(a.address(), ",", b.address()));
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->target().round_robin);
  EXPECT_EQ((*client)->target().target, absl::StrCat("ipv4:", a.address(), ",", b.address()));
  // round_robin picks among connected backends; keep calling (bounded) until both
  // have been used, then check the split is even-ish.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((a.service().sample_calls == 0 || b.service().sample_calls == 0) &&
         std::chrono::steady_clock::now() < give_up) {
    ASSERT_TRUE((*client)->Sample(OneRow({1, 2})).ok());
  }
  const int a0 = a.service().sample_calls, b0 = b.service().sample_calls;
  ASSERT_GT(a0, 0);
  ASSERT_GT(b0, 0);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*client)->Sample(OneRow({1, 2})).ok());
  // With both READY, round robin alternates: exactly 10 more each.
  EXPECT_EQ(a.service().sample_calls - a0, 10);
  EXPECT_EQ(b.service().sample_calls - b0, 10);
}

TEST(ClientTest, RetriesUnavailableWhenAsked) {
  FakeServer server;
  server.service().unavailable_first = 2;
  auto no_retry = Client::Create(server.address());
  ASSERT_TRUE(no_retry.ok());
  EXPECT_EQ((*no_retry)->Sample(OneRow({1, 2})).status().code(), absl::StatusCode::kUnavailable);
  // One UNAVAILABLE left: two extra attempts get through it.
  ClientOptions options;
  options.retries = 2;
  auto retrying = Client::Create(server.address(), options);
  ASSERT_TRUE(retrying.ok());
  const int before = server.service().sample_calls;
  auto r = (*retrying)->Sample(OneRow({1, 5}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).samples(0).token_id(), 1);
  EXPECT_EQ(server.service().sample_calls - before, 2);

  options.retries = 5;
  EXPECT_EQ(Client::Create(server.address(), options).status().message(),
            "--retries: must be in [0, 4], got 5");
}

TEST(ServiceConfigJsonTest, Forms) {
  EXPECT_EQ(ServiceConfigJson(false, 0), "");
  EXPECT_EQ(ServiceConfigJson(true, 0),
            R"({"loadBalancingConfig": [{"round_robin": {}}], )"
            R"("healthCheckConfig": {"serviceName": "tokensampler.v1.Sampler"}})");
  const std::string both = ServiceConfigJson(true, 2);
  EXPECT_NE(both.find(R"("maxAttempts": 3)"), std::string::npos) << both;
  EXPECT_NE(both.find(R"("retryableStatusCodes": ["UNAVAILABLE"])"), std::string::npos);
  EXPECT_NE(both.find("round_robin"), std::string::npos);
}

BenchOptions SmallBench() {
  BenchOptions o;
  o.concurrency = 4;
  o.requests = 50;
  o.warmup = absl::ZeroDuration();
  o.vocab = 1000;
  o.rows = 3;
  o.wire = Wire::kBfloat16;
  return o;
}

TEST(BenchTest, UnaryCountsEveryRequest) {
  FakeServer server;
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok());
  auto r = RunBench(**client, SmallBench(), nullptr, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->requests, 50);
  EXPECT_EQ(r->rows, 150);
  EXPECT_EQ(r->errors, 0);
  EXPECT_EQ(server.service().sample_calls.load(), 50);
  EXPECT_EQ(server.service().last_vocab.load(), 1000);
  EXPECT_EQ(server.service().last_rows.load(), 3);
  EXPECT_EQ(r->logits_bytes_per_request, 3 * 1000 * 2);
  EXPECT_EQ(r->latency_ms.count, 50u);
  EXPECT_LE(r->latency_ms.p50, r->latency_ms.p99);
  EXPECT_LE(r->latency_ms.p99, r->latency_ms.max);
  EXPECT_GT(r->rows_per_s, 0);
  const std::string json = BenchResultJson(SmallBench(), *r, server.address());
  for (const char* key : {"\"requests\": 50", "\"rows\": 150", "\"errors\": 0",
                          "\"error_codes\": {}", "\"seconds\"", "\"rows_per_s\"", "\"mb_per_s\"",
                          "\"latency_ms\": {\"p50\"", "\"p90\"", "\"p99\"", "\"max\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  }
}

TEST(BenchTest, FailedCallsAreCountedAndTheRunGoesOn) {
  FakeServer server;
  server.service().fail_every = 5;
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok());
  auto r = RunBench(**client, SmallBench(), nullptr, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->requests + r->errors, 50);
  EXPECT_EQ(r->errors, 10);
  EXPECT_EQ(r->error_codes.at("RESOURCE_EXHAUSTED"), 10);
  EXPECT_NE(r->first_error.find("queue full"), std::string::npos);
  EXPECT_NE(BenchResultJson(SmallBench(), *r, "x").find("\"RESOURCE_EXHAUSTED\": 10"),
            std::string::npos);
}

// A client of an address where a server was and nothing listens any more.
std::unique_ptr<Client> ClientOfAGoneServer() {
  std::string address;
  {
    FakeServer server;
    address = server.address();
  }
  auto client = Client::Create(address);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

TEST(BenchTest, DownServerCountsUnavailable) {
  std::unique_ptr<Client> client = ClientOfAGoneServer();
  ASSERT_NE(client, nullptr);
  BenchOptions o = SmallBench();
  o.requests = 8;
  auto r = RunBench(*client, o, nullptr, false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->requests, 0);
  EXPECT_EQ(r->errors, 8);
  EXPECT_EQ(r->error_codes.at("UNAVAILABLE"), 8);
}

TEST(BenchTest, StreamMode) {
  FakeServer server;
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok());
  BenchOptions o = SmallBench();
  o.stream = true;
  o.requests = 30;
  o.stream_sequence_steps = 4;
  auto r = RunBench(**client, o, nullptr, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->requests, 30);
  EXPECT_EQ(r->errors, 0);
  EXPECT_EQ(server.service().stream_messages.load(), 30);
  // Each stream carries at most 4 messages, so 30 messages need at least 8 streams.
  EXPECT_GE(server.service().streams_opened.load(), 8);
}

TEST(BenchTest, HungStreamsAreCancelledAfterTheRun) {
  FakeServer server;
  server.service().stream_delay_ms = 2500;
  ClientOptions client_options;
  client_options.timeout = absl::Milliseconds(100);
  auto client = Client::Create(server.address(), client_options);
  ASSERT_TRUE(client.ok());
  BenchOptions o = SmallBench();
  o.stream = true;
  o.concurrency = 2;
  o.requests = 0;
  o.duration = absl::Milliseconds(100);
  auto r = RunBench(**client, o, nullptr, false);
  ASSERT_TRUE(r.ok()) << r.status();
  // Both first messages were still waiting when the streams were cancelled.
  EXPECT_EQ(r->requests, 0);
  EXPECT_EQ(r->errors, 2);
  EXPECT_EQ(r->error_codes.at("CANCELLED"), 2);
}

TEST(BenchTest, DurationMode) {
  FakeServer server;
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok());
  BenchOptions o = SmallBench();
  o.requests = 0;
  o.duration = absl::Milliseconds(300);
  auto r = RunBench(**client, o, nullptr, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->requests, 0);
  EXPECT_EQ(r->requests, server.service().sample_calls.load());
  EXPECT_GE(r->seconds, 0.3);
}

// A parameter the server rejects would be rejected on every call: the run stops at the
// first rejection (during warmup too) and reports the server's message.
TEST(BenchTest, StopsAtTheFirstInvalidArgument) {
  for (bool stream : {false, true}) {
    FakeServer server;
    auto client = Client::Create(server.address());
    ASSERT_TRUE(client.ok());
    BenchOptions o = SmallBench();
    o.stream = stream;
    o.requests = 0;
    o.duration = absl::Seconds(60);
    o.warmup = absl::Seconds(1);
    o.params.set_top_p(1.5f);
    auto r = RunBench(**client, o, nullptr, false);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->fatal_error, "INVALID_ARGUMENT: rows[0].params.top_p: must be in (0, 1], got 1.5");
    // At most one call per caller was in flight when the first rejection came back.
    EXPECT_LE(server.service().sample_calls.load() + server.service().stream_messages.load(),
              o.concurrency)
        << (stream ? "stream" : "unary");
  }
}

// A stream that fails at once (nothing listening) must not crash the bench: its reactor
// may be done before Begin has started its first read and write.
TEST(BenchTest, StreamModeAgainstADownServerCountsFailures) {
  std::unique_ptr<Client> client = ClientOfAGoneServer();
  ASSERT_NE(client, nullptr);
  BenchOptions o = SmallBench();
  o.stream = true;
  o.concurrency = 8;
  o.requests = 0;
  o.warmup = absl::ZeroDuration();
  o.duration = absl::Seconds(1);
  auto r = RunBench(*client, o, nullptr, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->requests, 0);
  EXPECT_TRUE(r->fatal_error.empty()) << r->fatal_error;
}

TEST(BenchTest, BadOptions) {
  FakeServer server;
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok());
  BenchOptions o = SmallBench();
  o.concurrency = 0;
  EXPECT_EQ(RunBench(**client, o, nullptr, false).status().message(),
            "--concurrency: must be >= 1, got 0");
  o = SmallBench();
  o.rows = -1;
  EXPECT_FALSE(RunBench(**client, o, nullptr, false).ok());
}

}  // namespace
}  // namespace tokensampler::client
