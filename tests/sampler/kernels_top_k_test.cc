// The top-k candidate scans on every compiled SIMD target (sampler/kernels/top_k.cc).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "sampler/kernels.h"
#include "sampler/sampler.h"
#include "tests/sampler/reference.h"
#include "tests/sampler/simd_targets.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler::kernels {
namespace {


class TopKKernelTest : public SimdTargetTest {};

TEST_P(TopKKernelTest, TopKCandidatesHoldTheTopK) {
  for (size_t n : {1, 9, 100, 1025, 32000, 128256}) {
    for (size_t k : {1, 2, 50, 1000}) {
      // variant 2 and 3: a starting floor (a logit of the row, so ties with it occur).
      for (int variant = 0; variant < 4; ++variant) {
        std::vector<float> row = variant % 2 == 0
                                     ? AwkwardRow(n, static_cast<uint32_t>(n + k))
                                     : testing::TiedRow(n, static_cast<uint32_t>(k));
        const float floor = variant < 2 ? -kInf : row[n / 2];
        std::vector<int32_t> buf(2 * k + 64);
        float bar = 0;
        const size_t count =
            TopKCandidates(row.data(), n, k, buf.data(), buf.size(), &bar, floor);
        ASSERT_LE(count, buf.size());
        auto before = [&](int32_t a, int32_t b) {
          return row[a] > row[b] || (row[a] == row[b] && a < b);
        };
        std::vector<int32_t> all;
        for (size_t i = 0; i < n; ++i) {
          if (row[i] > floor) all.push_back(static_cast<int32_t>(i));
        }
        std::sort(all.begin(), all.end(), before);
        all.resize(std::min(k, all.size()));
        std::sort(buf.begin(), buf.begin() + count, before);
        ASSERT_GE(count, all.size());
        buf.resize(all.size());
        ASSERT_EQ(buf, all) << "n " << n << " k " << k << " variant " << variant;
      }
    }
  }
}

// The scan straight from a bf16/fp16 row leaves exactly the buffer (same ids, same
// order), count and bar of TopKCandidates on the decoded row, and that buffer holds the
// row's best k: rows with ties, -inf, -0 and subnormals, k from 1 to near V/2, with and
// without a floor, and sizes around the vector and block lengths.
TEST_P(TopKKernelTest, DecodeTopKCandidatesEqualTopKCandidatesOnTheDecodedRow) {
  for (size_t n : {1, 2, 7, 8, 9, 31, 33, 64, 65, 100, 1025, 32000, 128256}) {
    for (size_t k : {size_t{1}, size_t{2}, size_t{50}, size_t{1000}, n / 2 - (n > 2)}) {
      if (k == 0 || k > n) continue;
      for (int variant = 0; variant < 6; ++variant) {
        const uint32_t seed = static_cast<uint32_t>(n * 7 + k);
        std::vector<float> row = variant % 3 == 0   ? AwkwardRow(n, seed)
                                 : variant % 3 == 1 ? testing::TiedRow(n, seed)
                                                    : testing::NormalRow(n, seed, 3.0f);
        if (variant % 3 == 2) row[n / 3] += 20.0f;  // peaked: the bar rises at once
        const Rows16 rows(row);
        for (const LogitsView& view : {LogitsView{rows.bf16.data(), n, Dtype::kBFloat16},
                                       LogitsView{rows.fp16.data(), n, Dtype::kFloat16}}) {
          std::vector<float> z(n);
          float max = 0;
          ASSERT_EQ(DecodeAndMaxScalar(view, z.data(), &max), -1);
          const float floor = variant < 3 ? -kInf : z[n / 2];
          const size_t cap = 2 * k + 64;
          std::vector<int32_t> want(cap, -1), got(cap, -2);
          float want_bar = 0, got_bar = 1;
          size_t got_count = 0;
          const size_t want_count =
              TopKCandidates(z.data(), n, k, want.data(), cap, &want_bar, floor);
          ASSERT_EQ(DecodeTopKCandidates(view, k, got.data(), cap, &got_count, &got_bar, floor),
                    -1);
          const std::string where = "n " + std::to_string(n) + " k " + std::to_string(k) +
                                    " variant " + std::to_string(variant) + " dtype " +
                                    std::to_string(static_cast<int>(view.dtype));
          ASSERT_EQ(got_count, want_count) << where;
          ASSERT_EQ(BitsOf(got_bar), BitsOf(want_bar)) << where;
          want.resize(want_count);
          got.resize(got_count);
          ASSERT_EQ(got, want) << where;
          // The best k by a full sort of the decoded row.
          auto before = [&](int32_t a, int32_t b) {
            return z[a] > z[b] || (z[a] == z[b] && a < b);
          };
          std::vector<int32_t> best;
          for (size_t i = 0; i < n; ++i) {
            if (z[i] > floor) best.push_back(static_cast<int32_t>(i));
          }
          std::sort(best.begin(), best.end(), before);
          best.resize(std::min(k, best.size()));
          std::sort(got.begin(), got.end(), before);
          ASSERT_GE(got.size(), best.size()) << where;
          got.resize(best.size());
          ASSERT_EQ(got, best) << where;
        }
      }
    }
  }
}

// Every finite or -inf bf16 and fp16 bit pattern, shuffled, in one row: the scan's own
// scalar decoding (the tail, the buffer's ordering) agrees with the decoded row.
TEST_P(TopKKernelTest, DecodeTopKCandidatesOnEverySixteenBitPattern) {
  for (Dtype dtype : {Dtype::kFloat16, Dtype::kBFloat16}) {
    std::vector<uint16_t> bits;
    for (uint32_t b = 0; b < 0x10000; ++b) {
      const float f = dtype == Dtype::kFloat16 ? Float16ToFloat(static_cast<uint16_t>(b))
                                               : BFloat16ToFloat(static_cast<uint16_t>(b));
      if (!std::isnan(f) && f != kInf) bits.push_back(static_cast<uint16_t>(b));
    }
    std::shuffle(bits.begin(), bits.end(), std::mt19937(11));
    const size_t n = bits.size();
    const LogitsView view{bits.data(), n, dtype};
    std::vector<float> z(n);
    float max = 0;
    ASSERT_EQ(DecodeAndMaxScalar(view, z.data(), &max), -1);
    for (size_t k : {size_t{1}, size_t{50}, size_t{1000}, n / 2 - 1}) {
      const size_t cap = 2 * k + 64;
      std::vector<int32_t> want(cap), got(cap);
      float want_bar = 0, got_bar = 1;
      size_t got_count = 0;
      const size_t want_count = TopKCandidates(z.data(), n, k, want.data(), cap, &want_bar);
      ASSERT_EQ(DecodeTopKCandidates(view, k, got.data(), cap, &got_count, &got_bar), -1);
      ASSERT_EQ(got_count, want_count) << "k " << k;
      ASSERT_EQ(BitsOf(got_bar), BitsOf(want_bar)) << "k " << k;
      want.resize(want_count);
      got.resize(got_count);
      ASSERT_EQ(got, want) << "k " << k << " dtype " << static_cast<int>(dtype);
    }
  }
}

// A row of -inf has no candidates; a NaN or +inf anywhere is reported at its index, the
// first one if several, whether it would beat the bar or not (a floor above it, a large
// logit before it), as DecodeAndMax reports it.
TEST_P(TopKKernelTest, DecodeTopKCandidatesReportTheFirstBadElement) {
  const uint16_t bad_bf[] = {0x7F80, 0x7FC0, 0xFF81, 0x7F81};  // +inf, NaN, -NaN, sNaN
  const uint16_t bad16[] = {0x7C00, 0x7E01, 0xFE00, 0x7C01};
  for (size_t n : {1, 5, 16, 31, 32, 33, 64, 100, 1041}) {
    for (Dtype dtype : {Dtype::kBFloat16, Dtype::kFloat16}) {
      std::vector<uint16_t> masked(n, dtype == Dtype::kBFloat16 ? 0xFF80 : 0xFC00);
      std::vector<int32_t> buf(2 * 3 + 64);
      size_t count = 1;
      float bar = 0;
      ASSERT_EQ(DecodeTopKCandidates({masked.data(), n, dtype}, 3, buf.data(), buf.size(),
                                     &count, &bar),
                -1);
      EXPECT_EQ(count, 0u);
    }
    for (size_t pos = 0; pos < n; pos += (n > 40 ? 7 : 1)) {
      std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(pos), 1.0f);
      row[0] = 30.0f;  // the bar soon sits high
      const Rows16 clean(row);
      for (int b = 0; b < 4; ++b) {
        for (float floor : {-kInf, 0.5f, 1000.0f}) {
          Rows16 rows = clean;
          rows.bf16[pos] = bad_bf[b];
          rows.fp16[pos] = bad16[b];
          if (pos + 3 < n) {
            rows.bf16[pos + 3] = bad_bf[(b + 1) % 4];
            rows.fp16[pos + 3] = bad16[(b + 1) % 4];
          }
          for (const LogitsView& view : {LogitsView{rows.bf16.data(), n, Dtype::kBFloat16},
                                         LogitsView{rows.fp16.data(), n, Dtype::kFloat16}}) {
            std::vector<float> z(n);
            float max = 0;
            ASSERT_EQ(DecodeAndMax(view, z.data(), &max), static_cast<int64_t>(pos));
            std::vector<int32_t> buf(2 * 2 + 64);
            size_t count = 0;
            float bar = 0;
            ASSERT_EQ(DecodeTopKCandidates(view, 2, buf.data(), buf.size(), &count, &bar, floor),
                      static_cast<int64_t>(pos))
                << "n " << n << " bad " << b << " floor " << floor << " dtype "
                << static_cast<int>(view.dtype);
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryTarget, TopKKernelTest, ::testing::ValuesIn(Targets()),
                         TargetParamName);

}  // namespace
}  // namespace tokensampler::sampler::kernels
