// The measured window, counters and fatal stop that a bench run's callers share.
#include "client/bench_run.h"

#include <chrono>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

using std::chrono::milliseconds;

BenchPayloads OnePayload() {
  BenchPayloads p;
  p.unary.resize(2);
  return p;
}

// A run of options_ started at t0_.
class StartedRunTest : public ::testing::Test {
 protected:
  BenchRun& Start() {
    run_ = std::make_unique<BenchRun>(options_, OnePayload());
    run_->Start(t0_);
    return *run_;
  }

  BenchOptions options_;
  const BenchClock::time_point t0_ = BenchClock::now();
  std::unique_ptr<BenchRun> run_;
};

TEST(StatusCodeNameTest, Names) {
  EXPECT_EQ(StatusCodeName(0), "OK");
  EXPECT_EQ(StatusCodeName(3), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(99), "CODE_99");
}

TEST(BenchRunTest, RequestsCountMeasuredCallsOnly) {
  BenchOptions o;
  o.requests = 3;
  o.warmup = absl::ZeroDuration();
  BenchRun run(o, OnePayload());
  const BenchClock::time_point t0 = BenchClock::now();
  run.Start(t0);
  bool measured = false;
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(run.Over(t0)) << i;
    EXPECT_TRUE(run.MayIssue(t0, &measured)) << i;
    EXPECT_TRUE(measured);
  }
  EXPECT_TRUE(run.Over(t0));
  EXPECT_FALSE(run.MayIssue(t0, &measured));
  EXPECT_FALSE(run.MayIssue(t0, &measured));  // stays stopped
}

TEST(BenchRunTest, WarmupCallsAreNotMeasuredAndDurationEndsTheRun) {
  BenchOptions o;
  o.warmup = absl::Seconds(1);
  o.duration = absl::Seconds(2);
  BenchRun run(o, OnePayload());
  const BenchClock::time_point t0 = BenchClock::now();
  run.Start(t0);
  bool measured = true;
  EXPECT_TRUE(run.MayIssue(t0 + milliseconds(500), &measured));
  EXPECT_FALSE(measured);
  EXPECT_TRUE(run.MayIssue(t0 + milliseconds(1500), &measured));
  EXPECT_TRUE(measured);
  EXPECT_FALSE(run.Over(t0 + milliseconds(2900)));
  EXPECT_TRUE(run.Over(t0 + milliseconds(3000)));
  EXPECT_FALSE(run.MayIssue(t0 + milliseconds(3000), &measured));
  EXPECT_EQ(run.measure_start(), t0 + milliseconds(1000));
}

TEST_F(StartedRunTest, RecordCountsMeasuredCalls) {
  BenchRun& run = Start();
  CallerStats stats;
  run.Record(&stats, /*measured=*/false, t0_, t0_ + milliseconds(1), grpc::Status::OK);
  EXPECT_EQ(stats.ok, 0);
  run.Record(&stats, true, t0_, t0_ + milliseconds(4), grpc::Status::OK);
  run.Record(&stats, true, t0_, t0_ + milliseconds(5),
             grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone"));
  run.Record(&stats, true, t0_, t0_ + milliseconds(6),
             grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone again"));
  EXPECT_EQ(stats.ok, 1);
  ASSERT_EQ(stats.latency_ms.size(), 1u);
  EXPECT_DOUBLE_EQ(stats.latency_ms[0], 4.0);
  EXPECT_EQ(stats.error_codes[static_cast<int>(grpc::StatusCode::UNAVAILABLE)], 2);
  EXPECT_EQ(stats.first_error, "UNAVAILABLE: gone");
  EXPECT_EQ(stats.last_done, t0_ + milliseconds(6));
  EXPECT_EQ(run.ok(), 1);
  EXPECT_EQ(run.failed(), 2);
  EXPECT_EQ(run.fatal_error(), "");  // UNAVAILABLE may pass: the run goes on
  bool measured = false;
  EXPECT_TRUE(run.MayIssue(t0_, &measured));
}

TEST_F(StartedRunTest, AFatalErrorStopsTheRunEvenInWarmup) {
  BenchRun& run = Start();
  CallerStats stats;
  run.Record(&stats, /*measured=*/false, t0_, t0_,
             grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "rows[0].params.top_p: bad"));
  run.Record(&stats, false, t0_, t0_, grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "later"));
  EXPECT_EQ(run.fatal_error(), "INVALID_ARGUMENT: rows[0].params.top_p: bad");  // the first
  EXPECT_TRUE(run.Over(t0_));
  bool measured = false;
  EXPECT_FALSE(run.MayIssue(t0_, &measured));
}

TEST(BenchRunTest, WhichFailuresAreFatal) {
  using grpc::StatusCode;
  EXPECT_TRUE(BenchRun::IsFatal(grpc::Status(StatusCode::INVALID_ARGUMENT, "")));
  EXPECT_TRUE(BenchRun::IsFatal(grpc::Status(StatusCode::UNIMPLEMENTED, "")));
  EXPECT_TRUE(BenchRun::IsFatal(grpc::Status(StatusCode::PERMISSION_DENIED, "")));
  EXPECT_TRUE(BenchRun::IsFatal(grpc::Status(StatusCode::UNAUTHENTICATED, "")));
  EXPECT_TRUE(BenchRun::IsFatal(
      grpc::Status(StatusCode::RESOURCE_EXHAUSTED, "Received message larger than max (5 vs. 4)")));
  EXPECT_FALSE(BenchRun::IsFatal(grpc::Status(StatusCode::RESOURCE_EXHAUSTED, "queue full")));
  EXPECT_FALSE(BenchRun::IsFatal(grpc::Status(StatusCode::UNAVAILABLE, "")));
  EXPECT_FALSE(BenchRun::IsFatal(grpc::Status(StatusCode::DEADLINE_EXCEEDED, "")));
}

TEST(BenchRunTest, WaitsForEveryCaller) {
  BenchOptions o;
  o.concurrency = 2;
  BenchRun run(o, OnePayload());
  run.Start(BenchClock::now());
  EXPECT_FALSE(run.WaitFor(milliseconds(1)));
  run.CallerFinished();
  EXPECT_FALSE(run.WaitFor(milliseconds(1)));
  run.CallerFinished();
  EXPECT_TRUE(run.WaitFor(milliseconds(1)));
}

TEST(BenchRunTest, PayloadsCycle) {
  BenchOptions o;
  BenchRun run(o, OnePayload());
  EXPECT_EQ(&run.UnaryPayload(0), &run.UnaryPayload(2));
  EXPECT_NE(&run.UnaryPayload(0), &run.UnaryPayload(1));
}

}  // namespace
}  // namespace tokensampler::client
