// Guards the build rule that keeps the bits the same on every target: the sampler and
// every unit that inlines its exp compile with -ffp-contract=off (sampler/CMakeLists.txt).
// This unit is compiled with FMA enabled (-mfma on x86): without the flag the compiler
// fuses ExpNonPositive's `p * r + c` steps here, and its results stop matching the
// library's scalar reference, which is built for the baseline ISA (no FMA to fuse into).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/exp.h"
#include "sampler/kernels.h"

namespace tokensampler::sampler {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

TEST(FpContract, InlinedExpMatchesTheLibrarysScalarReferenceBitForBit) {
  // 2^20 arguments spread over [-104, 0]: enough that a fused polynomial differs in some.
  constexpr size_t kCount = size_t{1} << 20;
  std::vector<float> z(kCount);
  for (size_t i = 0; i < kCount; ++i) z[i] = -104.0f * static_cast<float>(i) / kCount;
  std::vector<float> w(kCount);
  kernels::ExpSumScalar(z.data(), kCount, 0.0f, 1.0f, w.data());
  size_t differ = 0;
  for (size_t i = 0; i < kCount; ++i) {
    // volatile: the argument is not known at compile time, so the inlined code runs.
    volatile float x = z[i];
    differ += Bits(kernels::ExpNonPositive(x)) != Bits(w[i]);
  }
  EXPECT_EQ(differ, 0u) << "ExpNonPositive compiled here differs from the library's: is "
                           "-ffp-contract=off still on tokensampler::sampler (PUBLIC)?";
}

}  // namespace
}  // namespace tokensampler::sampler
