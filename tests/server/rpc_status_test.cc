// The one absl::Status -> grpc::Status conversion and the code names in logs and
// metrics.
#include "server/rpc_status.h"

#include <string>

#include "gtest/gtest.h"

namespace tokensampler::server {
namespace {

TEST(RpcStatusTest, CodesMapOneToOneExceptUnknown) {
  grpc::Status s = ToGrpcStatus(absl::InvalidArgumentError("rows[0].x: bad"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "rows[0].x: bad");
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("x")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(absl::UnknownError("x")).error_code(),
            grpc::StatusCode::INTERNAL);
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(RpcStatusTest, LongMessagesAreCapped) {
  grpc::Status s = ToGrpcStatus(absl::InvalidArgumentError(std::string(8192, 'x')));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            std::string(kMaxStatusMessageBytes, 'x') + "... (8192 bytes)");
  const std::string short_message(kMaxStatusMessageBytes, 'y');
  EXPECT_EQ(ToGrpcStatus(absl::InternalError(short_message)).error_message(), short_message);
}

TEST(RpcStatusTest, EveryCodeHasItsGrpcName) {
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(static_cast<grpc::StatusCode>(17)), "INTERNAL");
  for (int c = 0; c <= 16; ++c) {
    EXPECT_FALSE(GrpcCodeName(static_cast<grpc::StatusCode>(c)).empty()) << c;
  }
}

}  // namespace
}  // namespace tokensampler::server
