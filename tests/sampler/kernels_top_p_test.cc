// The top-p-by-threshold kernels on every compiled SIMD target
// (sampler/kernels/top_p.cc).
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


class TopPKernelTest : public SimdTargetTest {};

TEST_P(TopPKernelTest, CollectAtLeastMatchesScalarBitForBit) {
  for (size_t n : kSizes) {
    const std::vector<float> row = AwkwardRow(n, static_cast<uint32_t>(n) + 11);
    double total = 0;
    const std::vector<float> w = Weights(row, 1.0f, &total);
    for (float t : {-kInf, -3.0f, 0.0f, 4.0f, 1e9f}) {
      std::vector<int32_t> fast(n), slow(n), ids_only(n);
      std::vector<float> zs(n, -1.0f), ws(n, -1.0f);
      double fast_mass = -1, slow_mass = -2, ids_only_mass = -3;
      const size_t fc = CollectAtLeast(row.data(), w.data(), n, t, fast.data(), &fast_mass,
                                       zs.data(), ws.data());
      const size_t sc = CollectAtLeastScalar(row.data(), w.data(), n, t, slow.data(), &slow_mass);
      ASSERT_EQ(CollectAtLeast(row.data(), w.data(), n, t, ids_only.data(), &ids_only_mass), fc);
      ASSERT_EQ(fc, sc);
      fast.resize(fc);
      slow.resize(sc);
      ids_only.resize(fc);
      ASSERT_EQ(fast, slow);
      ASSERT_EQ(fast, ids_only);
      ASSERT_EQ(fast_mass, slow_mass);
      ASSERT_EQ(ids_only_mass, slow_mass);
      for (size_t j = 0; j < fc; ++j) {
        ASSERT_EQ(BitsOf(zs[j]), BitsOf(row[fast[j]])) << j;
        ASSERT_EQ(BitsOf(ws[j]), BitsOf(w[fast[j]])) << j;
      }
      size_t expected = 0;
      for (size_t i = 0; i < n; ++i) expected += row[i] >= t;
      ASSERT_EQ(fc, expected);
    }
  }
}

TEST_P(TopPKernelTest, TopPSetKernelsMatchPlainLoops) {
  std::mt19937 gen(5);
  for (size_t n : kSizes) {
    // Logits with many ties, both zeros, and values at the bucket edges.
    std::vector<float> z(n);
    std::uniform_int_distribution<int> pick(0, 40);
    for (float& v : z) {
      const int k = pick(gen);
      v = k == 0 ? -0.0f : k == 1 ? 0.0f : static_cast<float>(k % 13) * 0.25f - 1.5f;
    }
    const float z_max = 1.5f;
    const float scale = 2048.0f / 3.0f;
    std::vector<uint16_t> bucket(n);
    LogitBuckets(z.data(), n, z_max, scale, 2047, bucket.data());
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(bucket[i], LogitBucket(z[i], z_max, scale, 2047)) << i;
      const float b = (z_max - z[i]) * scale;
      ASSERT_EQ(bucket[i], static_cast<uint16_t>(std::min(b, 2047.0f))) << i;
    }
    for (uint16_t cut : {uint16_t{0}, bucket[n / 2], uint16_t{2047}, uint16_t{3000}}) {
      std::vector<uint32_t> at(n);
      size_t n_at = 0;
      const size_t below = SplitAtBucket(bucket.data(), n, cut, at.data(), &n_at);
      size_t want_below = 0;
      std::vector<uint32_t> want_at;
      for (size_t i = 0; i < n; ++i) {
        want_below += bucket[i] < cut;
        if (bucket[i] == cut) want_at.push_back(static_cast<uint32_t>(i));
      }
      ASSERT_EQ(below, want_below);
      at.resize(n_at);
      ASSERT_EQ(at, want_at);
      // The worst kept token of the cut bucket: each member in turn (ties on z, -0
      // equal to +0, decided by id), and none.
      std::vector<std::pair<float, int32_t>> worsts = {
          {-kInf, std::numeric_limits<int32_t>::max()}};
      for (size_t j = 0; j < want_at.size() && j < 6; ++j) {
        const uint32_t p = want_at[(j * 7919) % want_at.size()];
        worsts.push_back({z[p], static_cast<int32_t>(10 * p)});
      }
      for (const auto& [zw, idw] : worsts) {
        std::vector<int32_t> ids(n);
        for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(10 * i);
        std::vector<float> zs = z;
        const size_t kept = KeepAboveCut(ids.data(), zs.data(), bucket.data(), n, cut, zw, idw);
        std::vector<int32_t> want_ids;
        std::vector<float> want_z;
        for (size_t i = 0; i < n; ++i) {
          const int32_t id = static_cast<int32_t>(10 * i);
          const bool better = z[i] > zw || (z[i] == zw && id <= idw);
          if (bucket[i] < cut || (bucket[i] == cut && better)) {
            want_ids.push_back(id);
            want_z.push_back(z[i]);
          }
        }
        ASSERT_EQ(kept, want_ids.size());
        ids.resize(kept);
        zs.resize(kept);
        ASSERT_EQ(ids, want_ids);
        for (size_t j = 0; j < kept; ++j) ASSERT_EQ(BitsOf(zs[j]), BitsOf(want_z[j]));
      }
    }
  }
  EXPECT_LT(OrderedBits(-0.0f), OrderedBits(0.0f));
  EXPECT_LT(OrderedBits(-kInf), OrderedBits(-1.0f));
  EXPECT_LT(OrderedBits(-1.0f), OrderedBits(-0.5f));
  EXPECT_LT(OrderedBits(0.5f), OrderedBits(kInf));
}

INSTANTIATE_TEST_SUITE_P(EveryTarget, TopPKernelTest, ::testing::ValuesIn(Targets()),
                         TargetParamName);

}  // namespace
}  // namespace tokensampler::sampler::kernels
