// Helpers shared by the sampler suites.
#ifndef TOKENSAMPLER_TESTS_SAMPLER_TEST_UTIL_H_
#define TOKENSAMPLER_TESTS_SAMPLER_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/sampler.h"

namespace tokensampler::sampler::testing {

// Logits drawn from N(0, sigma), a fixed function of (size, seed).
inline std::vector<float> NormalRow(size_t size, uint32_t seed, float sigma = 3.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> row(size);
  for (float& z : row) z = normal(gen);
  return row;
}

// Logits drawn uniformly from [0, 1), a fixed function of (size, seed).
inline std::vector<float> UniformRow(size_t size, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> row(size);
  for (float& z : row) z = uniform(gen);
  return row;
}

// Logits on a coarse grid (steps of 0.5), so many tokens tie.
inline std::vector<float> TiedRow(size_t size, uint32_t seed) {
  std::vector<float> row = NormalRow(size, seed, 2.0f);
  for (float& z : row) z = std::round(z * 2.0f) / 2.0f;
  return row;
}

// log(p) of each probability: the peers' tests feed probabilities this way.
inline std::vector<float> LogOf(const std::vector<float>& probs) {
  std::vector<float> row;
  for (float p : probs) row.push_back(std::log(p));
  return row;
}

// The processed distribution as a dense vector indexed by token id.
inline std::vector<float> DenseDistribution(Sampler& sampler, const std::vector<float>& logits,
                                            const SamplingParams& params) {
  DistributionResult result;
  const absl::Status status = sampler.Distribution(LogitsView::Float32(logits), params, &result);
  EXPECT_TRUE(status.ok()) << status;
  std::vector<float> dense(logits.size(), 0.0f);
  for (size_t i = 0; i < result.token_ids.size(); ++i) {
    dense[result.token_ids[i]] = result.probs[i];
  }
  return dense;
}

}  // namespace tokensampler::sampler::testing

#endif  // TOKENSAMPLER_TESTS_SAMPLER_TEST_UTIL_H_
