// Shared by the every-target kernel tests: forces the SIMD kernels onto one compiled
// target (hwy::DisableTargets + GetChosenTarget().Update) for a test, and the awkward
// rows and sizes those tests use.
#ifndef TOKENSAMPLER_TESTS_SAMPLER_SIMD_TARGETS_H_
#define TOKENSAMPLER_TESTS_SAMPLER_SIMD_TARGETS_H_

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "sampler/kernels.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler::kernels {

inline constexpr float kInf = std::numeric_limits<float>::infinity();
inline const size_t kSizes[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 1023, 1024, 1025, 1041, 32000,
                         128256, 262144};

// Forces the SIMD kernels onto one target for the lifetime of the object.
class ForceTarget {
 public:
  explicit ForceTarget(int64_t target) {
    // Targets are bits, better targets lower: disable every better one.
    hwy::DisableTargets(target - 1);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
  ~ForceTarget() {
    hwy::DisableTargets(0);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
  ForceTarget(const ForceTarget&) = delete;
  ForceTarget& operator=(const ForceTarget&) = delete;
};

inline std::vector<int64_t> Targets() { return hwy::SupportedAndGeneratedTargets(); }

class SimdTargetTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { force_ = std::make_unique<ForceTarget>(GetParam()); }
  void TearDown() override { force_.reset(); }
  std::unique_ptr<ForceTarget> force_;
};

inline std::string TargetParamName(const ::testing::TestParamInfo<int64_t>& info) {
  return hwy::TargetName(info.param);
}

inline uint32_t BitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// A row with the values the kernels treat specially: -inf, ties, +-0, tiny and huge.
inline std::vector<float> AwkwardRow(size_t n, uint32_t seed) {
  std::vector<float> row = testing::NormalRow(n, seed, 5.0f);
  for (size_t i = 0; i < n; i += 13) row[i] = -kInf;
  for (size_t i = 5; i < n; i += 29) row[i] = -0.0f;
  for (size_t i = 11; i < n; i += 31) row[i] = 1e-40f;
  for (size_t i = 3; i < n; i += 37) row[i] = -1e30f;
  return row;
}

// Weights of a row at temperature t: what the pipeline hands to the draw.
inline std::vector<float> Weights(const std::vector<float>& row, float t, double* total) {
  std::vector<float> w(row.size());
  *total = ExpSumScalar(row.data(), row.size(), MaxScalar(row.data(), row.size()), t, w.data());
  return w;
}

// The 16-bit encodings of a float row: bf16 by truncation, fp16 by rounding.
struct Rows16 {
  std::vector<uint16_t> bf16, fp16;
  explicit Rows16(const std::vector<float>& row) : bf16(row.size()), fp16(row.size()) {
    for (size_t i = 0; i < row.size(); ++i) {
      bf16[i] = static_cast<uint16_t>(BitsOf(row[i]) >> 16);
      const _Float16 h = static_cast<_Float16>(row[i]);
      std::memcpy(&fp16[i], &h, sizeof(uint16_t));
    }
  }
};

}  // namespace tokensampler::sampler::kernels

#endif  // TOKENSAMPLER_TESTS_SAMPLER_SIMD_TARGETS_H_
