// sampler/stages/dry.h: repeat counts against brute force, breakers, the penalty rule.
#include "sampler/stages/dry.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/sampler/reference.h"

namespace tokensampler::sampler {
namespace {

TEST(DryRepeatCounts, LlamaCppSourceExample) {
  // llama.cpp src/llama-sampler.cpp, DRY's comment: "a b c c b c y a b c" gives
  // "0 0 3 1 0 2 0 0 0 0".
  const std::vector<int32_t> window = {0, 1, 2, 2, 1, 2, 9, 0, 1, 2};
  DryWorkspace ws;
  std::vector<int32_t> counts;
  DryRepeatCounts(window, 100, &ws, &counts);
  EXPECT_EQ(counts, (std::vector<int32_t>{0, 0, 3, 1, 0, 2, 0, 0, 0, 0}));
  DryRepeatCounts(window, 2, &ws, &counts);  // capped
  EXPECT_EQ(counts, (std::vector<int32_t>{0, 0, 2, 1, 0, 2, 0, 0, 0, 0}));
}

TEST(DryRepeatCounts, MatchesBruteForceOnRandomHistories) {
  std::mt19937 gen(13);
  DryWorkspace ws;
  std::vector<int32_t> counts;
  for (int trial = 0; trial < 400; ++trial) {
    const size_t n = gen() % 300;
    const int32_t alphabet = 1 + static_cast<int32_t>(gen() % 4);  // small: many repeats
    std::vector<int32_t> window(n);
    for (int32_t& t : window) t = static_cast<int32_t>(gen() % alphabet);
    const int32_t limit = trial % 3 == 0 ? static_cast<int32_t>(gen() % 10) : 1 << 30;
    DryRepeatCounts(window, limit, &ws, &counts);
    ASSERT_EQ(counts, testing::ReferenceDryCounts(window, limit)) << "trial " << trial;
  }
}

TEST(DryRepeatCounts, PeriodicHistoryOfAMillionTokensIsLinear) {
  // A period-3 history: a quadratic scan would compare ~5e11 token pairs here.
  std::vector<int32_t> window(1 << 20);
  for (size_t i = 0; i < window.size(); ++i) window[i] = static_cast<int32_t>(i % 3);
  DryWorkspace ws;
  std::vector<int32_t> counts;
  DryRepeatCounts(window, 1 << 30, &ws, &counts);
  const size_t n = window.size();
  // Position i ends a copy of the suffix iff i = n - 1 (mod 3); its length is i + 1.
  for (size_t i : {size_t{0}, size_t{1}, size_t{2}, n / 2, n - 4, n - 3, n - 2}) {
    const int32_t want = (i + 1) % 3 == n % 3 ? static_cast<int32_t>(i + 1) : 0;
    EXPECT_EQ(counts[i], want) << i;
  }
}

TEST(DryRepeatLimit, MostRecentBreakerBoundsTheRepeat) {
  DryWorkspace ws;
  const std::vector<int32_t> window = {5, 6, 7, 8, 5, 6};
  const std::vector<int32_t> single = {7};
  const std::vector<int32_t> pair = {7, 8};
  const std::vector<int32_t> absent = {8, 5, 9};
  std::vector<absl::Span<const int32_t>> breakers = {single};
  DryParams dry;
  dry.sequence_breakers = breakers;
  EXPECT_EQ(DryRepeatLimit(window, dry, &ws), 3);  // 7 is 3 from the end
  breakers = {pair, single};
  dry.sequence_breakers = breakers;
  EXPECT_EQ(DryRepeatLimit(window, dry, &ws), 2);  // "7 8" ends 2 from the end
  breakers = {absent};
  dry.sequence_breakers = breakers;
  EXPECT_EQ(DryRepeatLimit(window, dry, &ws), 6);
}

TEST(ApplyDry, PenaltyRuleAndExponentClamp) {
  // History 0 1 2 0 1: token 2 would extend "0 1" (length 2).
  const std::vector<int32_t> history = {0, 1, 2, 0, 1};
  DryParams dry;
  dry.multiplier = 0.5f;
  dry.base = 2.0f;
  dry.allowed_length = 1;
  std::vector<float> z(4, 0.0f);
  z[3] = -std::numeric_limits<float>::infinity();
  DryWorkspace ws;
  EXPECT_EQ(ApplyDry(history, dry, absl::MakeSpan(z), &ws), 1u);
  EXPECT_FLOAT_EQ(z[2], -0.5f * 2.0f);  // 0.5 * 2^(2 - 1)
  EXPECT_EQ(z[0], 0.0f);
  // A long repeat (398 tokens): the exponent stops at floor(88.7228391 / ln 2) = 128
  // instead of 397, so base^exponent stays finite.
  std::vector<int32_t> periodic(400);
  for (size_t i = 0; i < periodic.size(); ++i) periodic[i] = static_cast<int32_t>(i % 2);
  dry.multiplier = 1e-10f;
  std::vector<float> z2(2, 0.0f);
  ApplyDry(periodic, dry, absl::MakeSpan(z2), &ws);
  EXPECT_FLOAT_EQ(z2[0], -static_cast<float>(static_cast<double>(1e-10f) * std::pow(2.0, 128)));
  EXPECT_TRUE(std::isfinite(z2[0]));
}

TEST(ApplyDry, OffCases) {
  DryWorkspace ws;
  std::vector<float> z(3, 1.0f);
  const std::vector<int32_t> history = {0, 1, 0, 1, 0};
  DryParams dry;  // multiplier 0
  EXPECT_EQ(ApplyDry(history, dry, absl::MakeSpan(z), &ws), 0u);
  dry.multiplier = 1.0f;
  dry.allowed_length = 5;  // the window must be longer than allowed_length
  EXPECT_EQ(ApplyDry(history, dry, absl::MakeSpan(z), &ws), 0u);
  dry.allowed_length = 2;
  dry.penalty_last_n = 2;  // window {1, 0}: too short
  EXPECT_EQ(ApplyDry(history, dry, absl::MakeSpan(z), &ws), 0u);
  EXPECT_EQ(z, std::vector<float>(3, 1.0f));
}

}  // namespace
}  // namespace tokensampler::sampler
