#include "client/latency.h"

#include <vector>

#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

TEST(PercentileTest, NearestRankOnTenValues) {
  const std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(Percentile(v, 0), 1);
  EXPECT_EQ(Percentile(v, 10), 1);   // rank ceil(1.0) = 1
  EXPECT_EQ(Percentile(v, 11), 2);   // rank ceil(1.1) = 2
  EXPECT_EQ(Percentile(v, 50), 5);   // rank 5
  EXPECT_EQ(Percentile(v, 90), 9);   // rank 9, not 10 (0.9 * 10 in floating point)
  EXPECT_EQ(Percentile(v, 99), 10);  // rank ceil(9.9) = 10
  EXPECT_EQ(Percentile(v, 100), 10);
}

TEST(PercentileTest, Hundred) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i * 0.5);
  EXPECT_EQ(Percentile(v, 50), 25.0);
  EXPECT_EQ(Percentile(v, 90), 45.0);
  EXPECT_EQ(Percentile(v, 99), 49.5);
}

TEST(PercentileTest, SmallAndEmpty) {
  EXPECT_EQ(Percentile({}, 50), 0);
  const std::vector<double> one = {7};
  EXPECT_EQ(Percentile(one, 0), 7);
  EXPECT_EQ(Percentile(one, 99), 7);
  const std::vector<double> two = {1, 3};
  EXPECT_EQ(Percentile(two, 50), 1);
  EXPECT_EQ(Percentile(two, 51), 3);
}

TEST(SummarizeTest, SortsAndSummarises) {
  std::vector<double> v = {9, 1, 5, 3, 7};
  const LatencySummary s = Summarize(v);
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_EQ(s.p50, 5);  // rank ceil(2.5) = 3 -> 5
  EXPECT_EQ(s.p90, 9);  // rank ceil(4.5) = 5
  EXPECT_EQ(s.p99, 9);
  EXPECT_EQ(s.max, 9);
  EXPECT_EQ(v, (std::vector<double>{1, 3, 5, 7, 9}));
  std::vector<double> empty;
  EXPECT_EQ(Summarize(empty).count, 0u);
}

}  // namespace
}  // namespace tokensampler::client
