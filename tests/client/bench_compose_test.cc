#include <string>
#include <vector>

#include "client/bench.h"
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

TEST(StatusCodeNameTest, Names) {
  EXPECT_EQ(StatusCodeName(0), "OK");
  EXPECT_EQ(StatusCodeName(3), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(99), "CODE_99");
}

}  // namespace
}  // namespace tokensampler::client
