// The SampleStream reactor through a server in-process on 127.0.0.1:0: pipelined
// messages answered in order, a message that only ends sequences answered without the
// pool, an error after the earlier responses, and the stream's counts given back.
#include "server/stream_reactor.h"

#include <chrono>
#include <cmath>
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

using ::testing::StartsWith;
using Stream = grpc::ClientReaderWriter<v1::SampleRequest, v1::SampleResponse>;

// One message of one greedy row for sequence `id` whose draw is `argmax`.
v1::SampleRequest PeakMessage(const std::string& id, int argmax) {
  v1::SampleRequest message;
  *message.add_rows() = PeakRow(16, argmax);
  message.mutable_rows(0)->set_sequence_id(id);
  return message;
}

class StreamReactorTest : public InProcessServerTest {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.workers = 2;
    options.queue_depth = 4;
    StartServer(options);
  }
};

TEST_F(StreamReactorTest, PipelinedMessagesAreAnsweredInOrder) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  const std::vector<int> peaks = {3, 11, 0, 15, 7, 7, 2, 9};
  // All messages written before any response is read: the reactor reads ahead, and
  // holds back reading while responses wait for this slow reader.
  for (size_t i = 0; i < peaks.size(); ++i) {
    ASSERT_TRUE(stream->Write(PeakMessage("s" + std::to_string(i % 2), peaks[i])));
  }
  stream->WritesDone();
  for (size_t i = 0; i < peaks.size(); ++i) {
    v1::SampleResponse response;
    ASSERT_TRUE(stream->Read(&response)) << "response " << i;
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_EQ(response.results(0).samples(0).token_id(), peaks[i]) << "response " << i;
    EXPECT_EQ(response.results(0).sequence_id(), "s" + std::to_string(i % 2));
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(Eventually([this] { return server_->service().open_streams() == 0; }));
  EXPECT_EQ(server_->service().live_sequences(), 0);
}

TEST_F(StreamReactorTest, EndOnlyMessageIsAnsweredWithoutThePool) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  ASSERT_TRUE(stream->Write(PeakMessage("a", 4)));
  v1::SampleResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(server_->service().live_sequences(), 1);
  server_->pool().Pause();
  v1::SampleRequest end;
  v1::Row* row = end.add_rows();
  row->set_sequence_id("a");
  row->set_end_sequence(true);
  ASSERT_TRUE(stream->Write(end));
  ASSERT_TRUE(stream->Read(&response));  // answered while no worker may run
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).sequence_id(), "a");
  EXPECT_EQ(response.results(0).samples_size(), 0);
  EXPECT_EQ(server_->service().live_sequences(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(StreamReactorTest, ErrorEndsTheStreamAfterEarlierResponses) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  std::unique_ptr<Stream> stream = stub_->SampleStream(&context);
  v1::SampleRequest bad = PeakMessage("b", 1);
  bad.mutable_rows(0)->mutable_logits()->set_values(5, std::nanf(""));
  ASSERT_TRUE(stream->Write(PeakMessage("a", 2)));
  ASSERT_TRUE(stream->Write(PeakMessage("a", 6)));
  stream->Write(bad);
  stream->Write(PeakMessage("a", 8));  // never answered
  stream->WritesDone();
  std::vector<int> tokens;
  v1::SampleResponse response;
  while (stream->Read(&response)) tokens.push_back(response.results(0).samples(0).token_id());
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("rows[0].logits"));
  EXPECT_EQ(tokens, (std::vector<int>{2, 6}));
  EXPECT_TRUE(Eventually([this] { return server_->service().open_streams() == 0; }));
  EXPECT_EQ(server_->service().live_sequences(), 0);
}

}  // namespace
}  // namespace tokensampler::server
