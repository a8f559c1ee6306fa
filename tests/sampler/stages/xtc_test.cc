// sampler/stages/xtc.h.
#include "sampler/stages/xtc.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/draw.h"

namespace tokensampler::sampler {
namespace {

// Logits log(w): the cut orders by logit.
std::vector<int32_t> Cut(std::vector<int32_t> ids, const std::vector<float>& w, float threshold,
                         size_t min_keep) {
  double mass = 0.0;
  std::vector<float> z;
  for (float wi : w) z.push_back(std::log(wi));
  for (int32_t id : ids) mass += w[id];
  ids.resize(XtcCut(absl::MakeSpan(ids), w.data(), z.data(), mass, threshold, min_keep));
  return ids;
}

TEST(XtcCoin, IsPurposeTwoOfTheDraw) {
  // README "The draw": (seed 42, step 0, index 0, purpose 2) -> 0.32716336240875254.
  EXPECT_EQ(XtcCoin(42, 0), 0.32716336240875254);
  EXPECT_EQ(XtcCoin(42, 7), DrawUniformForPurpose(42, 7, 0, 2));
  EXPECT_NE(XtcCoin(42, 0), DrawUniform(42, 0, 0));
}

TEST(XtcCut, KeepsTheLeastLikelyOfTheTopChoices) {
  const std::vector<float> w = {0.1f, 0.4f, 0.2f, 0.3f};  // weights by id, unnormalised ok
  const std::vector<int32_t> all = {0, 1, 2, 3};
  EXPECT_EQ(Cut(all, w, 0.09f, 1), (std::vector<int32_t>{0}));
  EXPECT_EQ(Cut(all, w, 0.19f, 1), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(Cut(all, w, 0.29f, 1), (std::vector<int32_t>{0, 2, 3}));
  EXPECT_EQ(Cut(all, w, 0.39f, 1), all);  // one token above: nothing
  // min_keep: removing 3 would leave 1 < 2.
  EXPECT_EQ(Cut(all, w, 0.09f, 2), all);
  EXPECT_EQ(Cut(all, w, 0.19f, 2), (std::vector<int32_t>{0, 2}));
}

TEST(XtcCut, TiesGoByIdAndSmallSetsAreUntouched) {
  const std::vector<float> w = {0.25f, 0.25f, 0.25f, 0.25f};
  // All four tie above 0.2: the last in (p desc, id asc) order, id 3, stays.
  EXPECT_EQ(Cut({3, 1, 0, 2}, w, 0.2f, 1), (std::vector<int32_t>{3}));
  EXPECT_EQ(Cut({2}, w, 0.1f, 1), (std::vector<int32_t>{2}));
}

}  // namespace
}  // namespace tokensampler::sampler
