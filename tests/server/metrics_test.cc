// The exposition writer without a server: value formatting, limit names, counters and
// gauges in the rendered text. The format itself is checked by a real parser in
// tests/e2e/python_metrics_test.py.
#include "server/metrics.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tokensampler::server {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, ValuesUseTheExpositionSpelling) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(42), "42");
  EXPECT_EQ(FormatMetricValue(0.0005), "0.0005");
  EXPECT_EQ(FormatMetricValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(MetricsTest, RejectionsAreFiledUnderTheLimitTheirMessageNames) {
  EXPECT_EQ(LimitNamedIn("rows: 2000 rows exceed the server limit max_rows=1024"), "max_rows");
  EXPECT_EQ(LimitNamedIn("server busy: the work queue is full (queue_depth=256 tasks)"),
            "queue_depth");
  EXPECT_EQ(LimitNamedIn("Received message larger than max (5 vs. 4)"), "max_message_bytes");
  EXPECT_EQ(LimitNamedIn("something else"), "other");
}

TEST(MetricsTest, RenderHasCountsHistogramAndGauges) {
  Metrics metrics;
  metrics.CountCall("/tokensampler.v1.Sampler/Sample", grpc::StatusCode::OK, 0.003);
  metrics.CountCall("/tokensampler.v1.Sampler/Sample", grpc::StatusCode::RESOURCE_EXHAUSTED, 0.0001,
                    "server busy: the work queue is full (queue_depth=2 tasks)");
  metrics.CountRows(sampler::Preset::kLlamaCpp, sampler::Dtype::kFloat16, 7);
  metrics.RegisterGauge("tokensampler_test_bytes", "A test gauge.", [] { return 12.5; });
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("tokensampler_rpc_calls_total{service=\"tokensampler.v1.Sampler\","
                              "method=\"Sample\",code=\"OK\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("tokensampler_rejected_total{limit=\"queue_depth\"} 1\n"));
  // 0.0001 s falls in the first bucket, 0.003 s in le=0.005 (cumulative: 2).
  EXPECT_THAT(text, HasSubstr("method=\"Sample\",le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("method=\"Sample\",le=\"0.005\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("tokensampler_rows_total{preset=\"llama_cpp\",dtype=\"float16\"} 7\n"));
  EXPECT_THAT(text,
              HasSubstr("# TYPE tokensampler_test_bytes gauge\ntokensampler_test_bytes 12.5\n"));
  EXPECT_THAT(text, HasSubstr("tokensampler_build_info{version=\""));
}

}  // namespace
}  // namespace tokensampler::server
