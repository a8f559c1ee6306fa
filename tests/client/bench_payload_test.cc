// ComposeSampleRequest against protobuf, and the payloads a bench run generates.
#include "client/bench_payload.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "client/logits.h"
#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

TEST(ComposeSampleRequestTest, MatchesProtobuf) {
  // Rows large enough that the length varints take several bytes.
  const std::vector<float> row0 = RandomNormalLogits(1, 40000, 1);
  const std::vector<float> row1 = RandomNormalLogits(1, 3, 2);
  v1::Logits l0, l1;
  EncodeLogits(row0, Wire::kBfloat16, &l0);
  EncodeLogits(row1, Wire::kValues, &l1);
  v1::SamplingParams params;
  params.set_temperature(0.8f);
  params.set_top_k(50);
  const std::vector<grpc::Slice> slices = {grpc::Slice(l0.SerializeAsString()),
                                           grpc::Slice(l1.SerializeAsString())};
  const std::vector<std::string> ids = {"bench-0-0", "bench-0-1"};

  for (bool with_ids : {false, true}) {
    for (bool end : {false, true}) {
      const grpc::ByteBuffer buffer = ComposeSampleRequest(
          slices, params.SerializeAsString(),
          with_ids ? absl::MakeConstSpan(ids) : absl::Span<const std::string>(), end);
      v1::SampleRequest parsed;
      ASSERT_TRUE(parsed.ParseFromString(Flatten(buffer)));
      ASSERT_EQ(parsed.rows_size(), 2);
      EXPECT_EQ(parsed.rows(0).logits().raw(), l0.raw());
      EXPECT_EQ(parsed.rows(0).logits().dtype(), v1::DTYPE_BFLOAT16);
      EXPECT_EQ(parsed.rows(1).logits().values_size(), 3);
      EXPECT_EQ(parsed.rows(1).params().top_k(), 50);
      EXPECT_EQ(parsed.rows(0).sequence_id(), with_ids ? "bench-0-0" : "");
      EXPECT_EQ(parsed.rows(1).end_sequence(), end);

      // Byte-for-byte what protobuf itself writes for the same message.
      v1::SampleRequest expected;
      for (int r = 0; r < 2; ++r) {
        v1::Row* row = expected.add_rows();
        *row->mutable_logits() = r == 0 ? l0 : l1;
        *row->mutable_params() = params;
        if (with_ids) row->set_sequence_id(ids[r]);
        row->set_end_sequence(end);
      }
      EXPECT_EQ(Flatten(buffer), expected.SerializeAsString());
    }
  }
}

TEST(ComposeSampleRequestTest, NoParams) {
  v1::Logits l;
  EncodeLogits(std::vector<float>{1, 2}, Wire::kFloat32, &l);
  const std::vector<grpc::Slice> slices = {grpc::Slice(l.SerializeAsString())};
  v1::SampleRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(Flatten(ComposeSampleRequest(slices, "", {}, false))));
  EXPECT_FALSE(parsed.rows(0).has_params());
  EXPECT_EQ(parsed.rows(0).logits().raw().size(), 8u);
}

BenchOptions SmallOptions() {
  BenchOptions o;
  o.vocab = 40;
  o.rows = 3;
  o.wire = Wire::kFloat32;
  o.params.set_temperature(0.5f);
  return o;
}

TEST(MakeBenchPayloadsTest, UnaryRequestsOfDistinctRows) {
  const BenchOptions o = SmallOptions();
  const BenchPayloads p = MakeBenchPayloads(o, /*request_bytes=*/3 * 40 * 4);
  ASSERT_EQ(p.unary.size(), 4u);  // small requests: the most variants
  ASSERT_EQ(p.row_logits.size(), 4u);
  EXPECT_TRUE(p.float_rows.empty());
  EXPECT_EQ(p.params, o.params.SerializeAsString());
  v1::SampleRequest first, second;
  ASSERT_TRUE(first.ParseFromString(Flatten(p.unary[0])));
  ASSERT_TRUE(second.ParseFromString(Flatten(p.unary[1])));
  ASSERT_EQ(first.rows_size(), 3);
  EXPECT_EQ(first.rows(0).logits().raw().size(), 40u * 4);
  EXPECT_EQ(first.rows(2).params().temperature(), 0.5f);
  EXPECT_NE(first.rows(0).logits().raw(), first.rows(1).logits().raw());
  EXPECT_NE(first.rows(0).logits().raw(), second.rows(0).logits().raw());
  EXPECT_EQ(p.row_logits[0].size(), 3u);
}

TEST(MakeBenchPayloadsTest, LargeRequestsGetOneVariant) {
  const BenchPayloads p = MakeBenchPayloads(SmallOptions(), /*request_bytes=*/size_t{65} << 20);
  EXPECT_EQ(p.unary.size(), 1u);
}

TEST(MakeBenchPayloadsTest, VerifyRowsDraftTheArgmaxOfEachTargetRow) {
  BenchOptions o = SmallOptions();
  o.verify = true;
  o.draft_tokens = 2;
  const BenchPayloads p = MakeBenchPayloads(o, 3 * 3 * 40 * 4);
  ASSERT_FALSE(p.unary.empty());
  v1::VerifyRequest request;
  ASSERT_TRUE(request.ParseFromString(Flatten(p.unary[0])));
  ASSERT_EQ(request.rows_size(), 3);
  const v1::VerifyRow& row = request.rows(1);
  ASSERT_EQ(row.target_logits_size(), 3);
  ASSERT_EQ(row.draft_token_ids_size(), 2);
  for (int i = 0; i < 2; ++i) {
    std::vector<float> z(40);
    std::memcpy(z.data(), row.target_logits(i).raw().data(), z.size() * 4);
    EXPECT_EQ(row.draft_token_ids(i), std::max_element(z.begin(), z.end()) - z.begin());
  }
  EXPECT_EQ(row.params().temperature(), 0.5f);
}

TEST(MakeBenchPayloadsTest, SharedMemoryKeepsFloatRowsOnly) {
  BenchOptions o = SmallOptions();
  o.shared_memory = true;
  const BenchPayloads p = MakeBenchPayloads(o, 3 * 40 * 4);
  ASSERT_EQ(p.float_rows.size(), 4u);
  EXPECT_EQ(p.float_rows[0].size(), 3u * 40);
  EXPECT_TRUE(p.unary.empty());
}

}  // namespace
}  // namespace tokensampler::client
