// DistributionSorter against a plain comparison sort: exact order (p descending, ties by
// ascending id), +0 dropped, on every size around the radix threshold and on rows whose
// digits tie, repeat or stay constant.
#include "sampler/dist_sort.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tokensampler::sampler {
namespace {

constexpr size_t kThreshold = DistributionSorter::kRadixMinCount;

struct Sorted {
  std::vector<int32_t> ids;
  std::vector<float> probs;
};

uint32_t BitsOf(float p) {
  uint32_t bits;
  std::memcpy(&bits, &p, sizeof(bits));
  return bits;
}

float FromBits(uint32_t bits) {
  float p;
  std::memcpy(&p, &bits, sizeof(p));
  return p;
}

// The contract spelled out: keep p != +0, stable sort by p descending then id ascending.
Sorted Reference(const std::vector<float>& probs, const std::vector<int32_t>* ids) {
  std::vector<size_t> order;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (BitsOf(probs[i]) != 0) order.push_back(i);
  }
  const auto id_of = [&](size_t i) { return ids == nullptr ? static_cast<int32_t>(i) : (*ids)[i]; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (probs[a] != probs[b]) return probs[a] > probs[b];
    return id_of(a) < id_of(b);
  });
  Sorted out;
  for (size_t i : order) {
    out.ids.push_back(id_of(i));
    out.probs.push_back(probs[i]);
  }
  return out;
}

// Sorts with `sorter` (reused across calls on purpose) and compares with the reference,
// bit for bit. Output vectors start dirty and larger, as a reused response would.
void ExpectSorted(DistributionSorter& sorter, const std::vector<float>& probs,
                  const std::vector<int32_t>* ids, const std::string& what) {
  Sorted got;
  got.ids.assign(probs.size() + 3, -7);
  got.probs.assign(probs.size() + 3, -7.0f);
  sorter.Sort(probs.data(), ids == nullptr ? nullptr : ids->data(), probs.size(), &got.ids,
              &got.probs);
  const Sorted want = Reference(probs, ids);
  ASSERT_EQ(got.ids.size(), want.ids.size()) << what;
  ASSERT_EQ(got.probs.size(), want.probs.size()) << what;
  for (size_t i = 0; i < want.ids.size(); ++i) {
    ASSERT_EQ(got.ids[i], want.ids[i]) << what << " at " << i;
    ASSERT_EQ(BitsOf(got.probs[i]), BitsOf(want.probs[i])) << what << " at " << i;
  }
}

TEST(DistributionSorter, HandCheckedTable) {
  struct Case {
    std::vector<float> probs;
    std::vector<int32_t> ids;  // empty: ids are positions
    std::vector<int32_t> want_ids;
    std::vector<float> want_probs;
  };
  const float kMin = std::numeric_limits<float>::denorm_min();
  const std::vector<Case> cases = {
      {{}, {}, {}, {}},
      {{0.0f}, {}, {}, {}},
      {{1.0f}, {}, {0}, {1.0f}},
      {{0.25f, 0.0f, 0.5f, 0.25f}, {}, {2, 0, 3}, {0.5f, 0.25f, 0.25f}},
      {{0.1f, 0.1f, 0.8f}, {7, 3, 9}, {9, 3, 7}, {0.8f, 0.1f, 0.1f}},
      {{kMin, 0.0f, 2 * kMin, kMin}, {}, {2, 0, 3}, {2 * kMin, kMin, kMin}},
      {{0.0f, 0.0f, 0.0f}, {4, 5, 6}, {}, {}},
  };
  DistributionSorter sorter;
  for (const Case& c : cases) {
    std::vector<int32_t> ids;
    std::vector<float> probs;
    sorter.Sort(c.probs.data(), c.ids.empty() ? nullptr : c.ids.data(), c.probs.size(), &ids,
                &probs);
    EXPECT_EQ(ids, c.want_ids);
    EXPECT_EQ(probs, c.want_probs);
  }
}

// Rows of `n` entries in several shapes, each a fixed function of (shape, n).
std::vector<float> Row(int shape, size_t n, std::mt19937& gen) {
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> row(n);
  for (size_t i = 0; i < n; ++i) {
    float& p = row[i];
    switch (shape) {
      case 0:  // softmax-like: exp of normal logits, tiny to large
        p = std::exp(normal(gen) - 16.0f);
        break;
      case 1:  // few distinct values: many ties, every digit repeats
        p = static_cast<float>(gen() % 5 + 1) / 8.0f;
        break;
      case 2:  // half the tokens removed (+0) at random places
        p = gen() % 2 ? 0.0f : unit(gen);
        break;
      case 3:  // all the same: every digit constant, only the ids order
        p = 0.03125f;
        break;
      case 4:  // low 16 bits zero (bfloat16 values): the low digit is constant
        p = FromBits(BitsOf(unit(gen)) & 0xFFFF0000u);
        break;
      case 5:  // one binade: the top digit takes one or two values
        p = 0.5f + unit(gen) * 0x1p-10f;
        break;
      case 6:  // subnormals, zeros and the smallest normals mixed
        p = FromBits(static_cast<uint32_t>(gen() % 0x00A00000u));
        break;
      case 7:  // everything removed but one
        p = i == n / 3 ? 0.5f : 0.0f;
        break;
      case 8:  // 1 and values in [1, 2) (still below 2: the radix path)
        p = 1.0f + unit(gen);
        if (gen() % 4 == 0) p = 1.0f;
        break;
      case 9:  // values >= 2 and +inf: outside [0, 2), the comparison-sort path
        p = gen() % 7 == 0 ? std::numeric_limits<float>::infinity() : unit(gen) * 4.0f;
        break;
      case 10:  // uniform but for one crowded digit-0 bucket (the sample misses it,
                // the capacity does not hold it: the uncounted sort must give up)
        p = unit(gen);
        if (i % 509 == 3) p = FromBits((BitsOf(p) & ~0x3FFu) | 5u);
        break;
      case 11:  // the same in digit 1
        p = unit(gen);
        if (i % 509 == 3) p = FromBits((BitsOf(p) & ~(0x3FFu << 10)) | (7u << 10));
        break;
      case 12:  // uniform low digits but values up to 4 (the range check gives up)
        p = unit(gen) * 4.0f;
        break;
      default:
        p = unit(gen);
    }
  }
  return row;
}

constexpr int kShapes = 13;

TEST(DistributionSorter, MatchesTheReferenceAroundTheThreshold) {
  DistributionSorter sorter;
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{8}, size_t{9},
                   size_t{31}, size_t{33}, kThreshold - 1, kThreshold, kThreshold + 1,
                   kThreshold + 2, kThreshold + 3, kThreshold + 5, size_t{4099}, size_t{10007}}) {
    for (int shape = 0; shape < kShapes; ++shape) {
      std::mt19937 gen(static_cast<uint32_t>(n * 31 + shape));
      const std::vector<float> row = Row(shape, n, gen);
      ExpectSorted(sorter, row, nullptr,
                   "n=" + std::to_string(n) + " shape=" + std::to_string(shape));
    }
  }
}

TEST(DistributionSorter, MatchesTheReferenceOnVocabularySizes) {
  DistributionSorter sorter;
  for (size_t n : {size_t{32000}, size_t{128256}, size_t{262144}}) {
    for (int shape = 0; shape < kShapes; ++shape) {
      std::mt19937 gen(static_cast<uint32_t>(n + shape));
      const std::vector<float> row = Row(shape, n, gen);
      ExpectSorted(sorter, row, nullptr,
                   "n=" + std::to_string(n) + " shape=" + std::to_string(shape));
    }
  }
}

// Sparse input: explicit ascending ids with gaps, as the pipeline's candidate lists.
TEST(DistributionSorter, ExplicitAscendingIds) {
  DistributionSorter sorter;
  for (size_t n : {size_t{5}, kThreshold - 1, kThreshold, size_t{50000}}) {
    for (int shape = 0; shape < kShapes; ++shape) {
      std::mt19937 gen(static_cast<uint32_t>(n * 7 + shape));
      const std::vector<float> row = Row(shape, n, gen);
      std::vector<int32_t> ids(n);
      for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(3 * i + gen() % 3);
      ExpectSorted(sorter, row, &ids, "n=" + std::to_string(n) + " shape=" + std::to_string(shape));
    }
  }
}

}  // namespace
}  // namespace tokensampler::sampler
