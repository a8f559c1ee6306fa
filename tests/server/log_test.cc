// The key=value log line format.
#include "server/log.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tokensampler::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(LogTest, KeyValueLineQuotesWhatNeedsIt) {
  std::string line = FormatLogLine(LogLevel::kWarn, "rpc_error",
                                   {{"rpc", "Sample"},
                                    {"message", "rows[3].params.top_p: must be \"x\""},
                                    {"empty", ""}});
  EXPECT_THAT(line, StartsWith("ts="));
  EXPECT_THAT(line, HasSubstr(" level=warn event=rpc_error rpc=Sample "
                              "message=\"rows[3].params.top_p: must be \\\"x\\\"\" "
                              "empty=\"\""));
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace tokensampler::server
