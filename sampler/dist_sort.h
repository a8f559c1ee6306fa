// The order of GetDistribution's answer: probability descending, ties by ascending id.
#ifndef TOKENSAMPLER_SAMPLER_DIST_SORT_H_
#define TOKENSAMPLER_SAMPLER_DIST_SORT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace hwy {
class Sorter;
}  // namespace hwy

namespace tokensampler::sampler {

// Sorts distributions for the report. Owns its scratch memory, which only grows, so a
// steady stream of rows allocates nothing here but the result vectors: two buffers of
// 64-bit words of about 2.5 x count each for rows of 16384 entries or more (5.3 MB at
// count = 128256, of which about 3.3 MB are ever touched), else 1 x count.
// Thread-compatible, not thread-safe.
class DistributionSorter {
 public:
  DistributionSorter();
  ~DistributionSorter();
  DistributionSorter(const DistributionSorter&) = delete;
  DistributionSorter& operator=(const DistributionSorter&) = delete;

  // Entry i has probability probs[i] and token id ids[i], or i when `ids` is null.
  // Writes the entries with probs[i] != +0 to out_ids / out_probs (resized to their
  // number) by descending probability, ties (equal floats) by ascending id.
  // REQUIRES: probs[i] is +0 or a positive float, not NaN; ids, when given, strictly
  // ascending and >= 0 (the sort is stable on the probabilities alone).
  void Sort(const float* probs, const int32_t* ids, size_t count, std::vector<int32_t>* out_ids,
            std::vector<float>* out_probs);

  // Below kRadixMinCount entries Sort() uses a comparison sort; from kSpreadMinCount on
  // it tries the radix sort without counts first (exposed for tests).
  static constexpr size_t kRadixMinCount = 2048;
  static constexpr size_t kSpreadMinCount = 16384;

 private:
  void SortShort(const float* probs, const int32_t* ids, size_t count,
                 std::vector<int32_t>* out_ids, std::vector<float>* out_probs);
  // `halves`: pass 2 as two interleaved halves (rows with ties).
  void SortCounted(const float* probs, const int32_t* ids, size_t count, bool halves,
                   std::vector<int32_t>* out_ids, std::vector<float>* out_probs);
  // False (outputs unspecified) when a bucket overflows or a value is outside [0, 2).
  // `zero_bucket`: set the zeros aside in the first pass (when there are many).
  bool SortSpread(const float* probs, const int32_t* ids, size_t count, bool zero_bucket,
                  std::vector<int32_t>* out_ids, std::vector<float>* out_probs);

  // Words (~probability bits) << 32 | id. Grows only, contents are scratch; the
  // spread buckets' slack is only written when a bucket overflows, so its pages stay
  // untouched.
  class WordBuffer {
   public:
    uint64_t* Reserve(size_t n);  // at least n words, contents unspecified

   private:
    std::unique_ptr<uint64_t[]> words_;
    size_t size_ = 0;
  };
  WordBuffer words_;
  WordBuffer words_tmp_;
  std::array<std::array<uint32_t, 1024>, 3> hist_;  // per 10-bit digit: counts, then offsets
  std::array<uint32_t, 4096> top_;                  // counts, then offsets, of the top 12 key bits
  std::array<uint32_t, 1025> spread_fill_;          // bucket ends of the uncounted first pass
  std::unique_ptr<hwy::Sorter> sorter_;
  std::array<uint32_t, 2048> halves_;  // digit 1 counts, then offsets, per half
};

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_DIST_SORT_H_
