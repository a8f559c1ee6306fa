// RowJob and StartRowJob on a real WorkerPool, without gRPC: every row sampled once as
// the library samples it, the lowest failing row reported, cancelled rows skipped and
// counted, a full queue refused without calling `done`.
#include "server/row_job.h"

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/codec.h"
#include "server/service.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

using ::testing::StartsWith;

v1::Row RandomRow(int vocab, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  v1::Row row;
  for (int i = 0; i < vocab; ++i) row.mutable_logits()->add_values(normal(gen));
  row.mutable_params()->set_seed(seed + 1);
  return row;
}

std::vector<DecodedRow> Decode(const v1::SampleRequest& request) {
  std::vector<DecodedRow> rows;
  absl::Status status = DecodeRequest(request, Limits(), RequestKind::kStateless,
                                      [] { return uint64_t{7}; }, &rows);
  EXPECT_TRUE(status.ok()) << status;
  return rows;
}

class RowJobTest : public ::testing::Test {
 protected:
  // Starts a job of `kind` over `rows` and waits for `done`; returns its status.
  absl::Status RunJob(RowJob::Kind kind, const std::vector<DecodedRow>& rows,
                      std::shared_ptr<RowJob>* job_out = nullptr) {
    auto job = std::make_shared<RowJob>();
    job->kind = kind;
    job->service = &service_;
    job->cancelled = cancelled_;
    job->rows = &rows;
    absl::Notification finished;
    absl::Status result;
    int calls = 0;
    job->done = [&](absl::Status s) {
      ++calls;
      result = std::move(s);
      finished.Notify();
    };
    if (job_out != nullptr) *job_out = job;
    EXPECT_TRUE(StartRowJob(pool_, job));
    finished.WaitForNotification();
    EXPECT_EQ(calls, 1);
    return result;
  }

  WorkerPool pool_{2, 8};
  SamplerService service_{&pool_, ServiceOptions()};
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
};

TEST_F(RowJobTest, SamplesEveryRowAsTheLibraryDoes) {
  v1::SampleRequest request;
  for (uint32_t i = 0; i < 7; ++i) *request.add_rows() = RandomRow(300 + 50 * i, i);
  const std::vector<DecodedRow> rows = Decode(request);
  std::shared_ptr<RowJob> job;
  ASSERT_TRUE(RunJob(RowJob::Kind::kSample, rows, &job).ok());
  ASSERT_EQ(job->samples.size(), rows.size());
  sampler::Sampler local;
  for (const DecodedRow& row : rows) {
    sampler::SampleResult expected;
    ASSERT_TRUE(local.Sample(row.logits, row.params, row.step, &expected).ok());
    const std::vector<sampler::Sample>& got = job->samples[row.index].samples;
    ASSERT_EQ(got.size(), expected.samples.size());
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k].token_id, expected.samples[k].token_id) << "row " << row.index;
      EXPECT_EQ(got[k].logprob, expected.samples[k].logprob) << "row " << row.index;
    }
  }
  EXPECT_EQ(service_.rows_in_flight(), 0);
  EXPECT_EQ(service_.rows_skipped(), 0u);
}

TEST_F(RowJobTest, DistributionJobFillsDistributions) {
  v1::SampleRequest request;
  for (uint32_t i = 0; i < 3; ++i) *request.add_rows() = RandomRow(100, i);
  const std::vector<DecodedRow> rows = Decode(request);
  std::shared_ptr<RowJob> job;
  ASSERT_TRUE(RunJob(RowJob::Kind::kDistribution, rows, &job).ok());
  ASSERT_EQ(job->distributions.size(), 3u);
  EXPECT_TRUE(job->samples.empty());
  sampler::Sampler local;
  for (const DecodedRow& row : rows) {
    sampler::DistributionResult expected;
    ASSERT_TRUE(local.Distribution(row.logits, row.params, &expected).ok());
    EXPECT_EQ(job->distributions[row.index].token_ids, expected.token_ids);
    EXPECT_EQ(job->distributions[row.index].probs, expected.probs);
  }
}

TEST_F(RowJobTest, ReportsTheLowestFailingRow) {
  v1::SampleRequest request;
  for (uint32_t i = 0; i < 8; ++i) *request.add_rows() = RandomRow(200, i);
  // Rows 5 and 2 fail in the sampler (NaN logits pass the codec's checks).
  request.mutable_rows(5)->mutable_logits()->set_values(3, std::nanf(""));
  request.mutable_rows(2)->mutable_logits()->set_values(7, std::nanf(""));
  const std::vector<DecodedRow> rows = Decode(request);
  for (int attempt = 0; attempt < 20; ++attempt) {
    absl::Status status = RunJob(RowJob::Kind::kSample, rows);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    ASSERT_THAT(std::string(status.message()), StartsWith("rows[2].logits")) << status;
  }
  EXPECT_EQ(service_.rows_in_flight(), 0);
}

TEST_F(RowJobTest, CancelledJobSkipsAndCountsItsRows) {
  v1::SampleRequest request;
  for (uint32_t i = 0; i < 5; ++i) *request.add_rows() = RandomRow(100, i);
  const std::vector<DecodedRow> rows = Decode(request);
  cancelled_->store(true);
  std::shared_ptr<RowJob> job;
  absl::Status status = RunJob(RowJob::Kind::kSample, rows, &job);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(service_.rows_skipped(), 5u);
  for (const sampler::SampleResult& sample : job->samples) EXPECT_TRUE(sample.samples.empty());
}

TEST_F(RowJobTest, RowsWithoutLogitsAreLeftAlone) {
  v1::SampleRequest request;
  *request.add_rows() = RandomRow(100, 1);
  std::vector<DecodedRow> rows = Decode(request);
  rows.emplace_back();  // a stream row that only ends its sequence
  rows.back().index = 1;
  std::shared_ptr<RowJob> job;
  ASSERT_TRUE(RunJob(RowJob::Kind::kSample, rows, &job).ok());
  ASSERT_EQ(job->samples.size(), 2u);
  EXPECT_EQ(job->samples[0].samples.size(), 1u);
  EXPECT_TRUE(job->samples[1].samples.empty());
  EXPECT_EQ(service_.rows_skipped(), 0u);
}

TEST_F(RowJobTest, FullQueueIsRefusedWithoutCallingDone) {
  WorkerPool pool(2, 1);
  SamplerService service(&pool, ServiceOptions());
  pool.Pause();
  v1::SampleRequest request;
  for (uint32_t i = 0; i < 2; ++i) *request.add_rows() = RandomRow(50, i);
  const std::vector<DecodedRow> rows = Decode(request);
  auto job = std::make_shared<RowJob>();
  job->service = &service;
  job->cancelled = cancelled_;
  job->rows = &rows;
  bool called = false;
  job->done = [&called](absl::Status) { called = true; };
  // Two rows make two tasks; one queue slot holds one.
  EXPECT_FALSE(StartRowJob(pool, job));
  EXPECT_FALSE(called);
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_EQ(service.rows_in_flight(), 0);
  pool.Resume();
}

}  // namespace
}  // namespace tokensampler::server
