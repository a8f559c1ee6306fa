// sampler/stages/mirostat.h.
#include "sampler/stages/mirostat.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace tokensampler::sampler {
namespace {

TEST(Mirostat, StateStartsAtTwiceTauAndMovesTowardsTau) {
  MirostatParams m;
  m.tau = 3.0f;
  m.eta = 0.5f;
  EXPECT_EQ(MirostatMu(m), 6.0f);
  m.mu = 4.5f;
  EXPECT_EQ(MirostatMu(m), 4.5f);
  // Surprise 1 bit (p = 1/2) under tau 3: mu rises by eta * 2.
  EXPECT_FLOAT_EQ(MirostatUpdate(m, 4.5f, 0.5), 5.5f);
  // Surprise 5 bits: mu falls by eta * 2.
  EXPECT_FLOAT_EQ(MirostatUpdate(m, 4.5f, 1.0 / 32), 3.5f);
}

TEST(MirostatV2Collect, KeepsSurpriseAtMostMuAndAtLeastTheBest) {
  // p = 1/8, 1/2, 1/8, 1/4, 0: surprises 3, 1, 3, 2 bits, and a masked token.
  const std::vector<float> w = {1.0f, 4.0f, 1.0f, 2.0f, 0.0f};
  const std::vector<float> z = {0.0f, 2.0f, 0.0f, 1.0f, -1e30f};
  std::vector<int32_t> ids(w.size());
  ASSERT_EQ(MirostatV2Collect(w, z.data(), 8.0, 2.0f, ids.data()), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 3);
  EXPECT_EQ(MirostatV2Collect(w, z.data(), 8.0, 3.0f, ids.data()), 4u);
  EXPECT_EQ(MirostatV2Collect(w, z.data(), 8.0, 100.0f, ids.data()), 4u);  // never p = 0
  ASSERT_EQ(MirostatV2Collect(w, z.data(), 8.0, 0.5f, ids.data()), 1u);
  EXPECT_EQ(ids[0], 1);  // nothing passes: the best alone
}

TEST(MirostatV1Cut, ZipfRowGivesTheClosedFormK) {
  // p_i proportional to 1/(i+1)^s: every b_i = s * t_i, so the estimate is exactly s,
  // and k = (eps 2^mu / (1 - V^-eps))^(1/s).
  const size_t v = 1000;
  const double s = 1.2;
  std::vector<float> w(v), z(v);
  for (size_t i = 0; i < v; ++i) {
    w[i] = static_cast<float>(std::pow(i + 1.0, -s));
    z[i] = static_cast<float>(-s * std::log(i + 1.0));
  }
  std::vector<int32_t> ids(v);
  for (size_t i = 0; i < v; ++i) ids[i] = static_cast<int32_t>(v - 1 - i);
  const float mu = 6.0f;
  const double eps = s - 1.0;
  const double k = std::pow(eps * std::exp2(mu) / (1.0 - std::pow(v, -eps)), 1.0 / s);
  std::vector<int32_t> scratch;
  const size_t kept = MirostatV1Cut(absl::MakeSpan(ids), w.data(), z.data(), 100, v, mu, &scratch);
  EXPECT_EQ(kept, static_cast<size_t>(k));
  std::sort(ids.begin(), ids.begin() + kept);
  for (size_t i = 0; i < kept; ++i) EXPECT_EQ(ids[i], static_cast<int32_t>(i));
}

TEST(MirostatV1Cut, DegenerateRowsKeepEverything) {
  std::vector<float> w = {1.0f, 1.0f, 1.0f};  // flat head: s = 0, k is not finite
  std::vector<float> z = {0.0f, 0.0f, 0.0f};
  std::vector<int32_t> ids = {0, 1, 2};
  std::vector<int32_t> scratch;
  EXPECT_EQ(MirostatV1Cut(absl::MakeSpan(ids), w.data(), z.data(), 100, 3, 10.0f, &scratch), 3u);
  ids = {1};
  EXPECT_EQ(MirostatV1Cut(absl::MakeSpan(ids), w.data(), z.data(), 100, 3, 10.0f, &scratch), 1u);
}

}  // namespace
}  // namespace tokensampler::sampler
