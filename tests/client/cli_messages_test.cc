// The CLI's wording of misspelt flags and of calls over a message size limit.
#include "client/cli_messages.h"

#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

TEST(SimilarNamesTest, TyposThenPrefixes) {
  const std::vector<std::string> known = {"temperature", "top_k", "top_p", "timeout", "seed"};
  EXPECT_EQ(SimilarNames("temprature", known), std::vector<std::string>{"temperature"});
  EXPECT_EQ(SimilarNames("top_q", known), (std::vector<std::string>{"top_k", "top_p"}));
  EXPECT_EQ(SimilarNames("temp", known), std::vector<std::string>{"temperature"});
  EXPECT_EQ(SimilarNames("t", known),
            (std::vector<std::string>{"temperature", "top_k", "top_p", "timeout"}));
  EXPECT_TRUE(SimilarNames("frobnicate", known).empty());
}

TEST(ExplainCallErrorTest, MessageSizeLimitsSayWhoseAndHowToRaise) {
  constexpr int64_t kClientMax = 256 << 20;
  const absl::Status server = ExplainCallError(
      absl::ResourceExhaustedError("Received message larger than max (5000000 vs. 4194304)"),
      kClientMax);
  EXPECT_EQ(server.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(server.message(),
            "the request (5000000 bytes) is over the server's limit max_message_bytes=4194304; "
            "raise it on the server (--max_message_bytes or TOKENSAMPLER_MAX_MESSAGE_BYTES), "
            "or send fewer rows per request or --wire=bfloat16 "
            "[Received message larger than max (5000000 vs. 4194304)]");
  const absl::Status sent = ExplainCallError(
      absl::ResourceExhaustedError("Sent message larger than max (300000000 vs. 268435456)"),
      kClientMax);
  EXPECT_NE(sent.message().find("over this client's message limit of 268435456 bytes"),
            absl::string_view::npos)
      << sent.message();
  const absl::Status response = ExplainCallError(
      absl::ResourceExhaustedError("Received message larger than max (300000000 vs. 268435456)"),
      kClientMax);
  EXPECT_NE(response.message().find("the response (300000000 bytes)"), absl::string_view::npos);
  // Anything else is left alone.
  const absl::Status busy = absl::ResourceExhaustedError("server busy: the work queue is full");
  EXPECT_EQ(ExplainCallError(busy, kClientMax), busy);
  EXPECT_EQ(ExplainCallError(absl::InvalidArgumentError("x"), kClientMax),
            absl::InvalidArgumentError("x"));
}

}  // namespace
}  // namespace tokensampler::client
