#include "client/logits.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "client/half.h"
#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

TEST(ParseFloatListTest, Values) {
  auto v = ParseFloatList("2.0, 1.0,0.1,-inf,-3e2", "--logits");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->size(), 5u);
  EXPECT_EQ((*v)[0], 2.0f);
  EXPECT_EQ((*v)[2], 0.1f);
  EXPECT_TRUE(std::isinf((*v)[3]) && (*v)[3] < 0);
  EXPECT_EQ((*v)[4], -300.0f);
}

TEST(ParseFloatListTest, Errors) {
  auto v = ParseFloatList("1.0,abc", "--logits");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message(), "--logits: 'abc' is not a number");
  EXPECT_FALSE(ParseFloatList("1.0,,2", "--logits").ok());
  EXPECT_FALSE(ParseFloatList("", "--logits").ok());
}

TEST(ParseIdListTest, ValuesAndErrors) {
  auto v = ParseIdList("1, 2,3", "--context");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_TRUE(ParseIdList("", "--context")->empty());
  auto bad = ParseIdList("1,2.5", "--banned");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--banned: '2.5' is not a 32-bit integer token id");
  EXPECT_FALSE(ParseIdList("99999999999", "--allowed").ok());
  // Negative ids parse; the server rejects them naming the field.
  EXPECT_EQ(ParseIdList("-1", "--allowed")->at(0), -1);
}

TEST(ParseLogitBiasTest, Pairs) {
  auto v = ParseLogitBias("13:2.5, 50256:-inf");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->size(), 2u);
  EXPECT_EQ((*v)[0].first, 13);
  EXPECT_EQ((*v)[0].second, 2.5f);
  EXPECT_EQ((*v)[1].first, 50256);
  EXPECT_TRUE(std::isinf((*v)[1].second));
}

TEST(ParseLogitBiasTest, Errors) {
  EXPECT_EQ(ParseLogitBias("13").status().message(), "--logit_bias: '13' is not id:value");
  EXPECT_EQ(ParseLogitBias("x:1").status().message(),
            "--logit_bias: 'x' is not a 32-bit integer token id");
  EXPECT_EQ(ParseLogitBias("1:y").status().message(), "--logit_bias: 'y' is not a number");
  EXPECT_EQ(ParseLogitBias("1:1,1:2").status().message(),
            "--logit_bias: token id 1 is given twice");
}

TEST(WireTest, ParseAndName) {
  EXPECT_EQ(*ParseWire("values"), Wire::kValues);
  EXPECT_EQ(*ParseWire("float32"), Wire::kFloat32);
  EXPECT_EQ(*ParseWire("BF16"), Wire::kBfloat16);
  EXPECT_EQ(*ParseWire("float16"), Wire::kFloat16);
  auto bad = ParseWire("int8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--wire: unknown value 'int8'"), std::string::npos);
  EXPECT_EQ(WireName(Wire::kBfloat16), "bfloat16");
  EXPECT_EQ(WireBytesPerLogit(Wire::kValues), 4u);
  EXPECT_EQ(WireBytesPerLogit(Wire::kFloat16), 2u);
}

TEST(EncodeLogitsTest, EachWire) {
  const std::vector<float> logits = {1.0f, -2.0f, 0.1f};
  v1::Logits out;
  EncodeLogits(logits, Wire::kValues, &out);
  EXPECT_EQ(out.dtype(), v1::DTYPE_UNSPECIFIED);
  EXPECT_TRUE(out.raw().empty());
  ASSERT_EQ(out.values_size(), 3);
  EXPECT_EQ(out.values(2), 0.1f);

  EncodeLogits(logits, Wire::kFloat32, &out);
  EXPECT_EQ(out.values_size(), 0);
  EXPECT_EQ(out.dtype(), v1::DTYPE_FLOAT32);
  ASSERT_EQ(out.raw().size(), 12u);
  float f;
  std::memcpy(&f, out.raw().data() + 8, 4);
  EXPECT_EQ(f, 0.1f);

  EncodeLogits(logits, Wire::kBfloat16, &out);
  EXPECT_EQ(out.dtype(), v1::DTYPE_BFLOAT16);
  ASSERT_EQ(out.raw().size(), 6u);
  const auto* b = reinterpret_cast<const unsigned char*>(out.raw().data());
  EXPECT_EQ(b[0] | (b[1] << 8), 0x3f80);  // little-endian
  EXPECT_EQ(b[2] | (b[3] << 8), 0xc000);
  EXPECT_EQ(b[4] | (b[5] << 8), 0x3dcd);

  EncodeLogits(logits, Wire::kFloat16, &out);
  EXPECT_EQ(out.dtype(), v1::DTYPE_FLOAT16);
  b = reinterpret_cast<const unsigned char*>(out.raw().data());
  EXPECT_EQ(b[0] | (b[1] << 8), 0x3c00);
  EXPECT_EQ(b[2] | (b[3] << 8), 0xc000);
  EXPECT_EQ(b[4] | (b[5] << 8), 0x2e66);
}

TEST(RandomNormalLogitsTest, DeterministicWithExpectedMoments) {
  const auto a = RandomNormalLogits(2, 50001, 7);
  const auto b = RandomNormalLogits(2, 50001, 7);
  const auto c = RandomNormalLogits(2, 50001, 8);
  ASSERT_EQ(a.size(), 100002u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double sum = 0, sum2 = 0;
  for (float x : a) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
    sum2 += double{x} * x;
  }
  const double mean = sum / a.size();
  const double sd = std::sqrt(sum2 / a.size() - mean * mean);
  // 100k draws: the mean's standard error is 3/sqrt(1e5) ~ 0.0095; allow 5 of them.
  EXPECT_NEAR(mean, 0.0, 0.05);
  EXPECT_NEAR(sd, 3.0, 0.05);
}

}  // namespace
}  // namespace tokensampler::client
