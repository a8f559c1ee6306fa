// The token bitmask (sampler/stages/bitmask.h) inside the kernels that read the row
// (sampler/kernels.h), on every compiled SIMD target, forced in turn: each masked kernel
// against its scalar reference and against the unmasked kernel on the row with the masked
// tokens set to -inf (what the allowed-ids path hands it), bit for bit.
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/kernels.h"
#include "sampler/stages/bitmask.h"
#include "tests/sampler/simd_targets.h"

namespace tokensampler::sampler::kernels {
namespace {

const size_t kMaskSizes[] = {1, 2, 7, 31, 32, 33, 1025, 32000, 128256};

// Mask words random, full, empty, sparse, and with every bit past V set.
std::vector<uint8_t> Mask(size_t v, int pattern, std::mt19937& gen) {
  std::vector<uint8_t> mask(stages::BitmaskBytes(v), 0);
  for (uint8_t& byte : mask) {
    byte = pattern == 0   ? static_cast<uint8_t>(gen())
           : pattern == 1 ? 0xff
           : pattern == 2 ? 0x00
                          : static_cast<uint8_t>(gen() & gen());
  }
  for (size_t i = v; i < 8 * mask.size(); ++i) stages::BitmaskSet(mask.data(), i);
  return mask;
}

// The row as the allowed-ids path leaves it: masked tokens -inf.
std::vector<float> ByIds(const std::vector<float>& row, const std::vector<uint8_t>& mask) {
  std::vector<float> out(row);
  for (size_t i = 0; i < row.size(); ++i) {
    if (!stages::BitmaskAllows(mask.data(), i)) out[i] = -kInf;
  }
  return out;
}

// For each mask pattern, the row as a float32, bf16 and fp16 view (into `encoded`), each
// with its exact float values and those values as the allowed-ids path leaves them
// (masked tokens -inf).
struct MaskedRow {
  std::string where;
  std::vector<uint8_t> mask;
  LogitsView view;
  std::vector<float> decoded, by_ids;
};
std::vector<MaskedRow> MaskedRows(const std::vector<float>& row, const Rows16& encoded,
                                  uint32_t seed) {
  const size_t v = row.size();
  std::mt19937 gen(seed);
  std::vector<MaskedRow> out;
  for (int pattern = 0; pattern < 4; ++pattern) {
    const std::vector<uint8_t> mask = Mask(v, pattern, gen);
    for (const LogitsView& view :
         {LogitsView::Float32(row), LogitsView{encoded.bf16.data(), v, Dtype::kBFloat16},
          LogitsView{encoded.fp16.data(), v, Dtype::kFloat16}}) {
      std::vector<float> decoded(v);
      float unused;
      EXPECT_EQ(DecodeAndMaxScalar(view, decoded.data(), &unused), -1);
      std::vector<float> by_ids = ByIds(decoded, mask);
      out.push_back({"V " + std::to_string(v) + " pattern " + std::to_string(pattern) + " dtype " +
                         std::to_string(static_cast<int>(view.dtype)),
                     mask, view, std::move(decoded), std::move(by_ids)});
    }
  }
  return out;
}

size_t Mismatches(const std::vector<float>& a, const std::vector<float>& b) {
  size_t count = 0;
  for (size_t i = 0; i < a.size(); ++i) count += BitsOf(a[i]) != BitsOf(b[i]);
  return count;
}

using BitmaskKernelTest = SimdTargetTest;

TEST_P(BitmaskKernelTest, DecodeMaxAndExpSumMatchScalarAndTheAllowedIdsPath) {
  for (size_t v : kMaskSizes) {
    const std::vector<float> row = AwkwardRow(v, static_cast<uint32_t>(v));
    const Rows16 encoded(row);
    for (const MaskedRow& m : MaskedRows(row, encoded, static_cast<uint32_t>(v) + 1)) {
      const std::string& where = m.where;
      const std::vector<uint8_t>& mask = m.mask;
      const LogitsView& view = m.view;
      const std::vector<float>& decoded = m.decoded;
      const std::vector<float>& by_ids = m.by_ids;
      float want_max, want_raw;
      ASSERT_EQ(MaxCheckedScalar(decoded.data(), v, &want_raw), -1);
      ASSERT_EQ(DecodeAndMax(LogitsView::Float32(by_ids), nullptr, &want_max), -1);
      std::vector<float> simd(v), scalar(v);
      float max_simd, raw_simd, max_scalar, raw_scalar, max_checked, raw_checked;
      ASSERT_EQ(DecodeAndMax(view, simd.data(), &max_simd, mask.data(), &raw_simd), -1);
      ASSERT_EQ(DecodeAndMaxScalar(view, scalar.data(), &max_scalar, mask.data(), &raw_scalar), -1);
      EXPECT_EQ(Mismatches(simd, by_ids), 0u) << where;
      EXPECT_EQ(Mismatches(scalar, by_ids), 0u) << where;
      EXPECT_EQ(max_simd, want_max) << where;
      EXPECT_EQ(max_scalar, want_max) << where;
      EXPECT_EQ(raw_simd, want_raw) << where;
      EXPECT_EQ(raw_scalar, want_raw) << where;
      ASSERT_EQ(MaxChecked(decoded.data(), v, &max_checked, mask.data(), &raw_checked), -1);
      EXPECT_EQ(max_checked, want_max) << where;
      EXPECT_EQ(raw_checked, want_raw) << where;
      if (want_max == -kInf) continue;
      // The exp-sum of the masked row read in place: w and total bit for bit, block sums.
      for (float t : {1.0f, 0.7f}) {
        std::vector<float> w_ids(v), w_mask(v), w_scalar(v);
        std::vector<double> blocks_ids(v / kDrawBlock + 1), blocks_mask(v / kDrawBlock + 1);
        const double total_ids =
            ExpSumBlocks(by_ids.data(), v, want_max, t, w_ids.data(), blocks_ids.data());
        const double total_mask = ExpSumBlocks(decoded.data(), v, want_max, t, w_mask.data(),
                                               blocks_mask.data(), mask.data());
        const double total_scalar =
            ExpSumScalar(decoded.data(), v, want_max, t, w_scalar.data(), mask.data());
        EXPECT_EQ(total_mask, total_ids) << where << " T " << t;
        EXPECT_EQ(total_scalar, total_ids) << where << " T " << t;
        EXPECT_EQ(Mismatches(w_mask, w_ids), 0u) << where << " T " << t;
        EXPECT_EQ(Mismatches(w_scalar, w_ids), 0u) << where << " T " << t;
        EXPECT_EQ(blocks_mask, blocks_ids) << where << " T " << t;
      }
    }
  }
}

TEST_P(BitmaskKernelTest, ArgmaxAndTopKScansSkipMaskedTokens) {
  for (size_t v : kMaskSizes) {
    std::vector<float> row = AwkwardRow(v, static_cast<uint32_t>(v) + 7);
    for (size_t i = 2; i < v; i += 97) row[i] = 40.0f;  // masked or not, ties at the top
    const Rows16 encoded(row);
    for (const MaskedRow& m : MaskedRows(row, encoded, static_cast<uint32_t>(v) + 2)) {
      const std::string& where = m.where;
      const std::vector<uint8_t>& mask = m.mask;
      const LogitsView& view = m.view;
      const std::vector<float>& decoded = m.decoded;
      const std::vector<float>& by_ids = m.by_ids;
      size_t want_arg, got_arg, scalar_arg;
      float want_max, got_max, scalar_max;
      ASSERT_EQ(DecodeArgmax(LogitsView::Float32(by_ids), &want_arg, &want_max), -1);
      ASSERT_EQ(DecodeArgmax(view, &got_arg, &got_max, mask.data()), -1);
      ASSERT_EQ(DecodeArgmaxScalar(view, &scalar_arg, &scalar_max, mask.data()), -1);
      EXPECT_EQ(got_arg, want_arg) << where;
      EXPECT_EQ(scalar_arg, want_arg) << where;
      EXPECT_EQ(BitsOf(got_max), BitsOf(want_max)) << where;
      EXPECT_EQ(BitsOf(scalar_max), BitsOf(want_max)) << where;
      for (size_t k : {size_t{1}, size_t{5}, size_t{300}}) {
        const size_t cap = 2 * k + 64 + kCompressSlack;
        std::vector<int32_t> want(cap), got(cap);
        float want_bar, got_bar;
        const size_t want_count = TopKCandidates(by_ids.data(), v, k, want.data(), cap, &want_bar);
        size_t got_count;
        if (view.dtype == Dtype::kFloat32) {
          got_count =
              TopKCandidates(decoded.data(), v, k, got.data(), cap, &got_bar, -kInf, mask.data());
        } else {
          ASSERT_EQ(DecodeTopKCandidates(view, k, got.data(), cap, &got_count, &got_bar, -kInf,
                                         mask.data()),
                    -1);
        }
        ASSERT_EQ(got_count, want_count) << where << " k " << k;
        EXPECT_EQ(BitsOf(got_bar), BitsOf(want_bar)) << where << " k " << k;
        for (size_t j = 0; j < want_count; ++j) {
          ASSERT_EQ(got[j], want[j]) << where << " k " << k << " at " << j;
        }
      }
    }
  }
}

// A masked token is still checked: NaN and +inf are errors wherever they are.
TEST_P(BitmaskKernelTest, MaskedTokensAreStillChecked) {
  for (size_t v : {size_t{33}, size_t{1025}, size_t{32000}}) {
    std::vector<float> row = testing::NormalRow(v, 3);
    std::vector<uint8_t> mask(stages::BitmaskBytes(v), 0xff);
    const size_t bad = v - 3;
    mask[bad / 8] = static_cast<uint8_t>(mask[bad / 8] & ~(1u << (bad % 8)));
    for (float value : {std::numeric_limits<float>::quiet_NaN(), kInf}) {
      row[bad] = value;
      std::vector<float> out(v);
      float max;
      size_t arg;
      EXPECT_EQ(DecodeAndMax(LogitsView::Float32(row), out.data(), &max, mask.data()),
                static_cast<int64_t>(bad));
      EXPECT_EQ(MaxChecked(row.data(), v, &max, mask.data()), static_cast<int64_t>(bad));
      EXPECT_EQ(DecodeArgmax(LogitsView::Float32(row), &arg, &max, mask.data()),
                static_cast<int64_t>(bad));
    }
  }
}

// The kept set's bits (PositiveBits) against its scalar reference and ProbOf token by
// token, on weights with zeros, underflowing tiny values and a total that makes some
// probabilities 0.
TEST_P(BitmaskKernelTest, PositiveBitsAreTheSupport) {
  for (size_t v : kMaskSizes) {
    std::vector<float> w = testing::NormalRow(v, static_cast<uint32_t>(v) + 5, 1.0f);
    for (float& x : w) x = x < 0.0f ? 0.0f : x;
    for (size_t i = 1; i < v; i += 17) w[i] = 1e-45f;
    for (double total : {1.0, 1e30, 1e-70}) {
      std::vector<uint8_t> simd(stages::BitmaskBytes(v), 0), scalar(simd), want(simd);
      for (size_t i = 0; i < v; ++i) {
        if (ProbOf(w[i], total) > 0.0f) stages::BitmaskSet(want.data(), i);
      }
      PositiveBits(w.data(), v, total, simd.data());
      PositiveBitsScalar(w.data(), v, total, scalar.data());
      EXPECT_EQ(simd, want) << "V " << v << " total " << total;
      EXPECT_EQ(scalar, want) << "V " << v << " total " << total;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryTarget, BitmaskKernelTest, ::testing::ValuesIn(Targets()),
                         TargetParamName);

}  // namespace
}  // namespace tokensampler::sampler::kernels
