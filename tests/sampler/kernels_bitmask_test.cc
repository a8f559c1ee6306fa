// The structured-output bitmask kernel (sampler/stages/bitmask.h) on every compiled SIMD
// target, forced in turn, against its scalar reference and the allowed-ids path.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/stages/bitmask.h"
#include "tests/sampler/simd_targets.h"

namespace tokensampler::sampler::kernels {
namespace {

// The structured-output bitmask (stages/bitmask.h): the SIMD pass against its scalar
// reference and against masking the same tokens by id, bit for bit, with the mask's words
// random, full, empty and with bits set past V.
TEST_P(SimdTargetTest, BitmaskMatchesScalarAndTheAllowedIdsPath) {
  for (size_t v : {size_t{1}, size_t{2}, size_t{7}, size_t{31}, size_t{32}, size_t{33},
                   size_t{1025}, size_t{32000}, size_t{128256}}) {
    const std::vector<float> row = AwkwardRow(v, static_cast<uint32_t>(v));
    std::mt19937 gen(static_cast<uint32_t>(v) + 1);
    for (int pattern = 0; pattern < 4; ++pattern) {
      std::vector<uint8_t> mask(stages::BitmaskBytes(v), 0);
      for (uint8_t& byte : mask) {
        byte = pattern == 0 ? static_cast<uint8_t>(gen())
               : pattern == 1 ? 0xff
               : pattern == 2 ? 0x00
                              : static_cast<uint8_t>(gen() & gen());  // sparse
      }
      std::vector<float> by_ids(row);
      float max_ids = -kInf;
      for (size_t i = 0; i < v; ++i) {
        if (((mask[i / 8] >> (i % 8)) & 1) == 0) by_ids[i] = -kInf;
        max_ids = std::max(max_ids, by_ids[i]);
      }
      std::vector<float> simd(v), scalar(v), in_place(row);
      const float max_simd = stages::ApplyBitmask(mask.data(), row.data(), v, simd.data());
      const float max_scalar =
          stages::ApplyBitmaskScalar(mask.data(), row.data(), v, scalar.data());
      stages::ApplyBitmask(mask.data(), in_place.data(), v, in_place.data());
      ASSERT_EQ(BitsOf(max_simd), BitsOf(max_scalar)) << "V " << v << " pattern " << pattern;
      ASSERT_EQ(max_simd, max_ids) << "V " << v << " pattern " << pattern;
      size_t mismatches = 0;
      for (size_t i = 0; i < v; ++i) {
        mismatches += BitsOf(simd[i]) != BitsOf(scalar[i]);
        mismatches += BitsOf(simd[i]) != BitsOf(by_ids[i]);
        mismatches += BitsOf(in_place[i]) != BitsOf(simd[i]);
      }
      ASSERT_EQ(mismatches, 0u) << "V " << v << " pattern " << pattern;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryTarget, SimdTargetTest, ::testing::ValuesIn(Targets()),
                         TargetParamName);

}  // namespace
}  // namespace tokensampler::sampler::kernels
