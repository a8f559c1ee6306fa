// The unary reactor (Sample, GetDistribution) through a server in-process on
// 127.0.0.1:0: rows answered in request order, the lowest failing row named, a full
// queue refused, and no rows or budget left behind by a finished call.
#include "server/batch_reactor.h"

#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/server/test_util.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class BatchReactorTest : public InProcessServerTest {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.workers = 2;
    options.queue_depth = 2;
    StartServer(options);
  }
};

TEST_F(BatchReactorTest, AnswersRowsInRequestOrder) {
  // More rows than workers, so rows finish out of order on two threads.
  const std::vector<int> peaks = {7, 0, 3, 9, 1, 8, 2, 6, 4, 5};
  v1::SampleRequest request;
  for (size_t i = 0; i < peaks.size(); ++i) {
    v1::Row row = PeakRow(10 + 100 * static_cast<int>(i % 3), peaks[i]);
    row.set_sequence_id("r" + std::to_string(i));
    *request.add_rows() = row;
  }
  v1::SampleResponse response;
  ASSERT_TRUE(Sample(request, &response).ok());
  ASSERT_EQ(response.results_size(), static_cast<int>(peaks.size()));
  for (size_t i = 0; i < peaks.size(); ++i) {
    EXPECT_EQ(response.results(i).samples(0).token_id(), peaks[i]);
    EXPECT_EQ(response.results(i).sequence_id(), "r" + std::to_string(i));
  }
  EXPECT_EQ(server_->service().rows_served(), peaks.size());
  EXPECT_EQ(server_->service().rows_in_flight(), 0);
}

TEST_F(BatchReactorTest, DistributionAnswersEachRowInOrder) {
  v1::SampleRequest request;
  *request.add_rows() = PeakRow(4, 2);
  *request.add_rows() = PeakRow(6, 5);
  for (v1::Row& row : *request.mutable_rows()) row.mutable_params()->clear_temperature();
  grpc::ClientContext context;
  v1::DistributionResponse response;
  ASSERT_TRUE(stub_->GetDistribution(&context, request, &response).ok());
  ASSERT_EQ(response.distributions_size(), 2);
  EXPECT_EQ(response.distributions(0).token_ids(0), 2);
  EXPECT_EQ(response.distributions(0).token_ids_size(), 4);
  EXPECT_EQ(response.distributions(1).token_ids(0), 5);
  EXPECT_EQ(response.distributions(1).token_ids_size(), 6);
}

TEST_F(BatchReactorTest, NamesTheLowestFailingRow) {
  v1::SampleRequest request;
  for (int i = 0; i < 6; ++i) *request.add_rows() = PeakRow(50, i);
  request.mutable_rows(4)->mutable_logits()->set_values(1, std::nanf(""));
  request.mutable_rows(3)->mutable_logits()->set_values(2, std::nanf(""));
  v1::SampleResponse response;
  grpc::Status status = Sample(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("rows[3].logits"));
  EXPECT_EQ(response.results_size(), 0);
  EXPECT_EQ(server_->service().rows_served(), 0u);
}

TEST_F(BatchReactorTest, FullQueueFinishesWithResourceExhausted) {
  server_->pool().Pause();
  // Three rows make two tasks (two workers); two queue slots hold one such call.
  v1::SampleRequest request;
  for (int i = 0; i < 3; ++i) *request.add_rows() = PeakRow(8, i);
  grpc::ClientContext first;
  v1::SampleResponse first_response;
  std::promise<grpc::Status> first_done;
  stub_->async()->Sample(&first, &request, &first_response,
                         [&first_done](grpc::Status s) { first_done.set_value(s); });
  ASSERT_TRUE(Eventually([this] { return server_->pool().queued() == 2; }));
  v1::SampleResponse response;
  grpc::Status status = Sample(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("queue_depth=2"));
  EXPECT_EQ(server_->service().rows_in_flight(), 3);  // the first call's rows only
  server_->pool().Resume();
  EXPECT_TRUE(first_done.get_future().get().ok());
  EXPECT_EQ(first_response.results_size(), 3);
}

}  // namespace
}  // namespace tokensampler::server
