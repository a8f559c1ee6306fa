// RowJob (as SampleJob) and StartRowJob on a real WorkerPool, without gRPC: every row
// sampled once as the library samples it, the lowest failing row reported, cancelled rows
// skipped and counted, a full queue refused without calling `done`.
#include "server/row_job.h"

#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/codec.h"
#include "server/service.h"
#include "tests/server/test_util.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

using ::testing::StartsWith;

v1::Row RandomRow(int vocab, uint32_t seed) {
  v1::Row row = MakeRow(RandomLogits(vocab, seed));
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
  absl::Status RunJob(SampleJob::Kind kind, const std::vector<DecodedRow>& rows,
                      std::shared_ptr<SampleJob>* job_out = nullptr) {
    absl::Notification finished;
    absl::Status result;
    int calls = 0;
    std::shared_ptr<SampleJob> job =
        MakeSampleJob(kind, &service_, cancelled_, &rows, [&](absl::Status s) {
          ++calls;
          result = std::move(s);
          finished.Notify();
        });
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
  std::shared_ptr<SampleJob> job;
  ASSERT_TRUE(RunJob(SampleJob::Kind::kSample, rows, &job).ok());
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
  std::shared_ptr<SampleJob> job;
  ASSERT_TRUE(RunJob(SampleJob::Kind::kDistribution, rows, &job).ok());
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
    absl::Status status = RunJob(SampleJob::Kind::kSample, rows);
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
  std::shared_ptr<SampleJob> job;
  absl::Status status = RunJob(SampleJob::Kind::kSample, rows, &job);
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
  std::shared_ptr<SampleJob> job;
  ASSERT_TRUE(RunJob(SampleJob::Kind::kSample, rows, &job).ok());
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
  bool called = false;
  auto job = MakeSampleJob(SampleJob::Kind::kSample, &service, cancelled_, &rows,
                           [&called](absl::Status) { called = true; });
  // Two rows make two tasks; one queue slot holds one.
  EXPECT_FALSE(StartRowJob(pool, job));
  EXPECT_FALSE(called);
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_EQ(service.rows_in_flight(), 0);
  pool.Resume();
}

// A job of `n` units that records which ran: every third unit (0, 3, ...) has nothing
// to do, units from `skip_from` on are skipped.
class CountingJob final : public RowJob {
 public:
  CountingJob(SamplerService* service, std::shared_ptr<const std::atomic<bool>> cancelled, size_t n,
              size_t skip_from, absl::AnyInvocable<void(absl::Status)> done)
      : RowJob(service, std::move(cancelled), n, "counted", std::move(done)),
        runs(n),
        skip_from_(skip_from) {}

  size_t units() const override { return runs.size(); }

  std::vector<std::atomic<int>> runs;

 private:
  Need Needs(size_t unit) override {
    if (unit % 3 == 0) return Need::kNone;
    return unit >= skip_from_ ? Need::kSkip : Need::kRun;
  }
  void RunUnit(Task&, size_t unit) override { runs[unit].fetch_add(1); }
  absl::Status Outcome() override { return absl::OkStatus(); }

  const size_t skip_from_;
};

TEST_F(RowJobTest, EveryNeededUnitRunsOnceAndSkippedOnesAreCounted) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    absl::Notification finished;
    absl::Status result = absl::UnknownError("done not called");
    auto job = std::make_shared<CountingJob>(&service_, cancelled_, 40, 30, [&](absl::Status s) {
      result = std::move(s);
      finished.Notify();
    });
    const uint64_t skipped_before = service_.rows_skipped();
    ASSERT_TRUE(StartRowJob(pool_, job));
    finished.WaitForNotification();
    EXPECT_TRUE(result.ok()) << result;
    for (size_t u = 0; u < 40; ++u) {
      EXPECT_EQ(job->runs[u].load(), u % 3 != 0 && u < 30 ? 1 : 0) << "unit " << u;
    }
    // 30..39 without 30, 33, 36, 39.
    EXPECT_EQ(service_.rows_skipped() - skipped_before, 6u);
    EXPECT_EQ(service_.rows_in_flight(), 0);
  }
}

TEST_F(RowJobTest, CancelledJobRunsNothingAndSaysWhatWasNotDone) {
  cancelled_->store(true);
  absl::Notification finished;
  absl::Status result;
  auto job = std::make_shared<CountingJob>(&service_, cancelled_, 7, 7, [&](absl::Status s) {
    result = std::move(s);
    finished.Notify();
  });
  ASSERT_TRUE(StartRowJob(pool_, job));
  finished.WaitForNotification();
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(result.message(), "call cancelled before its rows were counted");
  for (const std::atomic<int>& runs : job->runs) EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(service_.rows_skipped(), 4u);  // 1, 2, 4, 5
}

}  // namespace
}  // namespace tokensampler::server
