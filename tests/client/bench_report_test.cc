// A bench run's JSON and text reports.
#include "client/bench_report.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <string>

#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

BenchResult SomeResult() {
  BenchResult r;
  r.requests = 90;
  r.rows = 180;
  r.errors = 3;
  r.error_codes = {{"UNAVAILABLE", 2}, {"DEADLINE_EXCEEDED", 1}};
  r.first_error = "UNAVAILABLE: \"peer\" went away\n\tat 1";
  r.seconds = 1.5;
  r.requests_per_s = 60;
  r.latency_ms.p50 = 1.25;
  return r;
}

TEST(BenchReportTest, ModeNames) {
  BenchOptions o;
  EXPECT_STREQ(BenchModeName(o), "unary");
  o.stream = true;
  EXPECT_STREQ(BenchModeName(o), "stream");
  o.stream = false;
  o.verify = true;
  EXPECT_STREQ(BenchModeName(o), "verify");
}

TEST(BenchReportTest, JsonParsesBackWithEveryString) {
  BenchOptions o;
  o.concurrency = 4;
  o.pipeline = "full";
  o.shared_memory = true;
  const std::string json = BenchResultJson(o, SomeResult(), "unix:/tmp/a \"b\"");
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  const auto& f = parsed.fields();
  EXPECT_EQ(f.at("server").string_value(), "unix:/tmp/a \"b\"");
  EXPECT_EQ(f.at("first_error").string_value(), "UNAVAILABLE: \"peer\" went away\n\tat 1");
  EXPECT_EQ(f.at("wire").string_value(), "shm");
  EXPECT_EQ(f.at("mode").string_value(), "unary");
  EXPECT_EQ(f.at("concurrency").number_value(), 4);
  EXPECT_EQ(f.at("requests").number_value(), 90);
  EXPECT_EQ(f.at("error_codes").struct_value().fields().at("UNAVAILABLE").number_value(), 2);
  EXPECT_EQ(f.at("latency_ms").struct_value().fields().at("p50").number_value(), 1.25);
}

TEST(BenchReportTest, TextListsErrorsOnlyWhenThereAreSome) {
  BenchOptions o;
  o.wire = Wire::kBfloat16;
  BenchResult r = SomeResult();
  std::string text = BenchResultText(o, r, "127.0.0.1:1");
  EXPECT_NE(text.find("server 127.0.0.1:1  mode unary  pipeline greedy  wire bfloat16"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("requests   90 ok, 3 failed in 1.50s"), std::string::npos) << text;
  EXPECT_NE(text.find("errors     DEADLINE_EXCEEDED=1 UNAVAILABLE=2\n"), std::string::npos) << text;
  r.errors = 0;
  text = BenchResultText(o, r, "127.0.0.1:1");
  EXPECT_EQ(text.find("errors"), std::string::npos) << text;
}

}  // namespace
}  // namespace tokensampler::client
