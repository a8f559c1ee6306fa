// The token bucket that bounds client-triggered warn lines.
#include "server/log_limiter.h"

#include <cstdint>

#include "gtest/gtest.h"
#include "server/client_text.h"

namespace tokensampler::server {
namespace {

TEST(LogLimiterTest, BurstThenRateAndCountsWhatItDropped) {
  LogLimiter limiter(/*per_second=*/10, /*burst=*/5);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  uint64_t suppressed = 99;
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) admitted += limiter.Admit(t0, &suppressed) ? 1 : 0;
  EXPECT_EQ(admitted, 5);
  EXPECT_EQ(suppressed, 0u);
  // 100 ms later one token is back; the line that takes it reports the 995 dropped.
  EXPECT_TRUE(limiter.Admit(t0 + absl::Milliseconds(100), &suppressed));
  EXPECT_EQ(suppressed, 995u);
  EXPECT_FALSE(limiter.Admit(t0 + absl::Milliseconds(100), &suppressed));
  // A long pause refills only up to the burst.
  admitted = 0;
  for (int i = 0; i < 100; ++i) {
    admitted += limiter.Admit(t0 + absl::Hours(1), &suppressed) ? 1 : 0;
  }
  EXPECT_EQ(admitted, 5);
  // A clock that steps back does not mint tokens.
  EXPECT_FALSE(limiter.Admit(t0, &suppressed));
}

TEST(ClientTextTest, QuotesAndTruncates) {
  EXPECT_EQ(QuoteClientString("abc"), "\"abc\"");
  EXPECT_EQ(QuoteClientString("a\"b\n"), "\"a\\\"b\\n\"");
  const std::string long_id(8192, 'x');
  EXPECT_EQ(QuoteClientString(long_id),
            "\"" + std::string(kMaxQuotedClientBytes, 'x') + "\"... (8192 bytes)");
  // The cut never splits a UTF-8 character: 63 ASCII bytes and a 2-byte "é" at 63..64.
  const std::string utf8 = std::string(63, 'a') + "\xc3\xa9" + "tail";
  EXPECT_EQ(TruncateForStatus(utf8, 64), std::string(63, 'a') + "... (69 bytes)");
  EXPECT_EQ(TruncateForStatus("short", 64), "short");
}

}  // namespace
}  // namespace tokensampler::server
