#include "sampler/dist_sort.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "hwy/base.h"
#include "hwy/contrib/sort/vqsort.h"

namespace tokensampler::sampler {

// The order is that of the 64-bit words (~bits(p) << 32 | id), ascending: positive
// floats order like their bits, so the complement orders like p descending, and the id
// below breaks ties. Every word is distinct, so any correct sort of the words gives the
// same answer.
//
// The long paths are LSD radix sorts. A probability below 2 has its top two bits 0, so
// its complemented key has them 1 and 30 bits carry the order: three 10-bit digits
// (1024 buckets; the offsets stay in L1). p == +0 has the complemented key 0xFFFFFFFF,
// above every positive p, so zeros can go through the passes with the others (no
// branch on them), end up last, and be cut.
//
// Counting every digit costs about as much as a scatter pass, so when the two low
// digits look uniform (a strided sample of the nonzero entries says so; true of real
// rows, whose low mantissa bits are noise) the first two passes write into
// fixed-capacity buckets, mean + 6 standard deviations each, and only the top digit is
// counted, during the second pass; if the sample met zeros, the first pass sets them
// aside. A bucket that overflows anyway sends the row to the counted sort (the buffers
// have slack, so an overflow never writes out of bounds). Otherwise (ties, quantized
// values, a narrow range) one pass counts all three digits, a pass whose digit is the
// same for every entry is skipped, and the first scatter reads the probabilities
// themselves; on long rows (those the sample turned down) the second scatter runs two
// halves of its input interleaved, as ties would serialise it. Both end with a
// sequential pass that splits the words into the outputs.
namespace {

constexpr int kDigitBits = 10;
constexpr uint32_t kDigitMask = (1u << kDigitBits) - 1;
constexpr size_t kBuckets = size_t{1} << kDigitBits;
constexpr uint32_t kTopBits = 0xC0000000u;  // 0 for every p in [0, 2)

uint32_t BitsOf(float p) {
  uint32_t bits;
  std::memcpy(&bits, &p, sizeof(bits));
  return bits;
}

// The words' order written out as the result, the first `kept` of them.
void Split(const uint64_t* words, size_t kept, int32_t* out_ids, float* out_probs) {
  for (size_t i = 0; i < kept; ++i) {
    out_ids[i] = static_cast<int32_t>(static_cast<uint32_t>(words[i]));
    const uint32_t bits = ~static_cast<uint32_t>(words[i] >> 32);
    std::memcpy(&out_probs[i], &bits, sizeof(bits));
  }
}

// Stable scatter of src[0, n) by digit `kDigit` of each word's key: dst[offset[d]++].
// Four loads ahead of the four dependent stores.
template <int kDigit>
void Scatter(const uint64_t* HWY_RESTRICT src, size_t n, uint32_t* HWY_RESTRICT offset,
             uint64_t* HWY_RESTRICT dst) {
  constexpr int kShift = 32 + kDigit * kDigitBits;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint64_t w0 = src[i], w1 = src[i + 1], w2 = src[i + 2], w3 = src[i + 3];
    dst[offset[(w0 >> kShift) & kDigitMask]++] = w0;
    dst[offset[(w1 >> kShift) & kDigitMask]++] = w1;
    dst[offset[(w2 >> kShift) & kDigitMask]++] = w2;
    dst[offset[(w3 >> kShift) & kDigitMask]++] = w3;
  }
  for (; i < n; ++i) dst[offset[(src[i] >> kShift) & kDigitMask]++] = src[i];
}

// Scatter<1> in two interleaved halves: src[0, split) and src[split, n) move through
// their own offsets, offset[2 * d] and offset[2 * d + 1] (the second half's start after
// the first half's count of d). Ties put a few equal digits close together in the
// first pass's output, and one chain of offset increments would serialise on them.
void ScatterHalves(const uint64_t* HWY_RESTRICT src, size_t n, size_t split,
                   uint32_t* HWY_RESTRICT offset, uint64_t* HWY_RESTRICT dst) {
  constexpr int kShift = 32 + kDigitBits;
  const uint64_t* const second = src + split;
  const size_t both = std::min(split, n - split);
  for (size_t i = 0; i < both; ++i) {
    const uint64_t w0 = src[i], w1 = second[i];
    dst[offset[((w0 >> kShift) & kDigitMask) << 1]++] = w0;
    dst[offset[(((w1 >> kShift) & kDigitMask) << 1) | 1]++] = w1;
  }
  for (size_t i = both; i < split; ++i) {
    dst[offset[((src[i] >> kShift) & kDigitMask) << 1]++] = src[i];
  }
  for (size_t i = both; i < n - split; ++i) {
    dst[offset[(((second[i] >> kShift) & kDigitMask) << 1) | 1]++] = second[i];
  }
}

// The counting pass: digit d of every complemented key in h_d; with kHalves, digit 1 at
// h1[2 * d1 + (d0 >= 512)] (the half of pass 1's output it comes from, for
// ScatterHalves). Adds the zeros to *zeros; returns the OR of all bits.
template <bool kHalves>
uint32_t CountDigits(const float* probs, size_t count, uint32_t* HWY_RESTRICT h0,
                     uint32_t* HWY_RESTRICT h1, uint32_t* HWY_RESTRICT h2, size_t* zeros) {
  uint32_t any = 0;
  size_t zero_count = 0;
  const auto count_one = [&](uint32_t bits) {
    const uint32_t key = ~bits;
    zero_count += bits == 0;
    any |= bits;
    const uint32_t d0 = key & kDigitMask;
    const uint32_t d1 = (key >> kDigitBits) & kDigitMask;
    ++h0[d0];
    ++h1[kHalves ? (d1 << 1) | (d0 >> (kDigitBits - 1)) : d1];
    ++h2[(key >> (2 * kDigitBits)) & kDigitMask];
  };
  size_t i = 0;
  for (; i + 2 <= count; i += 2) {
    count_one(BitsOf(probs[i]));
    count_one(BitsOf(probs[i + 1]));
  }
  for (; i < count; ++i) count_one(BitsOf(probs[i]));
  *zeros = zero_count;
  return any;
}

// The first pass: words built from the probabilities and ids, scattered by digit 0
// (or written in input order when `by_digit` is false: digit 0 is constant).
void FirstPass(const float* probs, const int32_t* ids, size_t n, bool by_digit,
               uint32_t* HWY_RESTRICT offset, uint64_t* HWY_RESTRICT dst) {
  const auto word = [probs, ids](size_t i) {
    const uint32_t id = ids == nullptr ? static_cast<uint32_t>(i) : static_cast<uint32_t>(ids[i]);
    return (static_cast<uint64_t>(~BitsOf(probs[i])) << 32) | id;
  };
  if (!by_digit) {
    for (size_t i = 0; i < n; ++i) dst[i] = word(i);
  } else if (ids == nullptr) {  // the dense row: ids are positions
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
      const uint32_t k0 = ~BitsOf(probs[i]), k1 = ~BitsOf(probs[i + 1]);
      dst[offset[k0 & kDigitMask]++] = (static_cast<uint64_t>(k0) << 32) | i;
      dst[offset[k1 & kDigitMask]++] = (static_cast<uint64_t>(k1) << 32) | (i + 1);
    }
    for (; i < n; ++i) dst[offset[~BitsOf(probs[i]) & kDigitMask]++] = word(i);
  } else {
    for (size_t i = 0; i < n; ++i) dst[offset[~BitsOf(probs[i]) & kDigitMask]++] = word(i);
  }
}

// floor(sqrt(n)) for the bucket capacities.
size_t FloorSqrt(size_t n) {
  size_t r = 0;
  while ((r + 1) * (r + 1) <= n) ++r;
  return r;
}

// True when digits 0 and 1 of the complemented keys of a strided sample (zeros left
// out) both spread like uniform ones: the sum of squared bucket counts is within 6
// standard deviations of its Poisson mean. Ties, quantized values or a narrow range
// fail it. *saw_zeros: the sample met a +0.
bool LowDigitsLookUniform(const float* probs, size_t count, uint32_t* counts0, uint32_t* counts1,
                          bool* saw_zeros) {
  constexpr size_t kStride = 16;
  std::fill(counts0, counts0 + kBuckets, 0u);
  std::fill(counts1, counts1 + kBuckets, 0u);
  size_t samples = 0;
  for (size_t i = 0; i < count; i += kStride) {
    const uint32_t bits = BitsOf(probs[i]);
    if (bits == 0) continue;  // removed: not sorted
    ++counts0[~bits & kDigitMask];
    ++counts1[(~bits >> kDigitBits) & kDigitMask];
    ++samples;
  }
  *saw_zeros = samples < (count + kStride - 1) / kStride;
  uint64_t squares0 = 0, squares1 = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    squares0 += uint64_t{counts0[b]} * counts0[b];
    squares1 += uint64_t{counts1[b]} * counts1[b];
  }
  const double m = static_cast<double>(samples) / kBuckets;  // per-bucket mean
  const double bound =
      kBuckets * (m * m + m) + 6 * std::sqrt(kBuckets * (4 * m * m * m + 6 * m * m + m));
  return static_cast<double>(std::max(squares0, squares1)) <= bound;
}

// Spread pass 1: words built from the probabilities and ids, appended to bucket
// d0 = key & mask at dst[fill[d0]++] (fill starts at d0 * capacity). With kZeroBucket
// the zeros go to an extra bucket kBuckets that no later pass reads (a select per
// entry, worth it only when there are zeros); else they stay in bucket 1023 of every
// digit and end up last.
template <bool kDense, bool kZeroBucket>
void SpreadFirst(const float* probs, const int32_t* ids, size_t n, uint32_t* HWY_RESTRICT fill,
                 uint64_t* HWY_RESTRICT dst) {
  const auto append = [ids, fill, dst](size_t i, uint32_t bits) {
    const uint32_t key = ~bits;
    const uint32_t id = kDense ? static_cast<uint32_t>(i) : static_cast<uint32_t>(ids[i]);
    const uint32_t bucket =
        kZeroBucket && bits == 0 ? static_cast<uint32_t>(kBuckets) : key & kDigitMask;
    dst[fill[bucket]++] = (static_cast<uint64_t>(key) << 32) | id;
  };
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32_t b0 = BitsOf(probs[i]), b1 = BitsOf(probs[i + 1]);
    const uint32_t b2 = BitsOf(probs[i + 2]), b3 = BitsOf(probs[i + 3]);
    append(i, b0);
    append(i + 1, b1);
    append(i + 2, b2);
    append(i + 3, b3);
  }
  for (; i < n; ++i) append(i, BitsOf(probs[i]));
}

// Spread pass 2: the buckets of pass 1 in order, appended to bucket d1 of dst; counts
// the top 12 key bits (digit 2 and the two constant bits) in top[4096].
void SpreadSecond(const uint64_t* src, const uint32_t* src_fill, size_t capacity,
                  uint32_t* HWY_RESTRICT fill, uint32_t* HWY_RESTRICT top,
                  uint64_t* HWY_RESTRICT dst) {
  for (size_t b = 0; b < kBuckets; ++b) {
    const uint64_t* const words = src + b * capacity;
    const size_t n = src_fill[b] - b * capacity;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
      const uint64_t w0 = words[i], w1 = words[i + 1];
      dst[fill[(w0 >> (32 + kDigitBits)) & kDigitMask]++] = w0;
      ++top[w0 >> 52];
      dst[fill[(w1 >> (32 + kDigitBits)) & kDigitMask]++] = w1;
      ++top[w1 >> 52];
    }
    for (; i < n; ++i) {
      dst[fill[(words[i] >> (32 + kDigitBits)) & kDigitMask]++] = words[i];
      ++top[words[i] >> 52];
    }
  }
}

// Spread pass 3: the buckets of pass 2 in order, scattered by the top 12 key bits at
// the exact offsets offset[w >> 52]++.
void SpreadLast(const uint64_t* src, const uint32_t* src_fill, size_t capacity,
                uint32_t* HWY_RESTRICT offset, uint64_t* HWY_RESTRICT dst) {
  for (size_t b = 0; b < kBuckets; ++b) {
    const uint64_t* const words = src + b * capacity;
    const size_t n = src_fill[b] - b * capacity;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const uint64_t w0 = words[i], w1 = words[i + 1], w2 = words[i + 2], w3 = words[i + 3];
      dst[offset[w0 >> 52]++] = w0;
      dst[offset[w1 >> 52]++] = w1;
      dst[offset[w2 >> 52]++] = w2;
      dst[offset[w3 >> 52]++] = w3;
    }
    for (; i < n; ++i) dst[offset[words[i] >> 52]++] = words[i];
  }
}

}  // namespace

uint64_t* DistributionSorter::WordBuffer::Reserve(size_t n) {
  if (n > size_) {
    words_.reset(new uint64_t[n]);  // uninitialised: pages never written stay untouched
    size_ = n;
  }
  return words_.get();
}

DistributionSorter::DistributionSorter() : sorter_(std::make_unique<hwy::Sorter>()) {}
DistributionSorter::~DistributionSorter() = default;

void DistributionSorter::SortShort(const float* probs, const int32_t* ids, size_t count,
                                   std::vector<int32_t>* out_ids, std::vector<float>* out_probs) {
  uint64_t* const words = words_.Reserve(count);
  size_t kept = 0;
  for (size_t i = 0; i < count; ++i) {
    const uint32_t bits = BitsOf(probs[i]);
    if (bits == 0) continue;
    const uint32_t id = ids == nullptr ? static_cast<uint32_t>(i) : static_cast<uint32_t>(ids[i]);
    words[kept++] = (static_cast<uint64_t>(~bits) << 32) | id;
  }
  (*sorter_)(words, kept, hwy::SortAscending());
  out_ids->resize(kept);
  out_probs->resize(kept);
  Split(words, kept, out_ids->data(), out_probs->data());
}

bool DistributionSorter::SortSpread(const float* probs, const int32_t* ids, size_t count,
                                    bool zero_bucket, std::vector<int32_t>* out_ids,
                                    std::vector<float>* out_probs) {
  const size_t mean = count / kBuckets;
  const size_t capacity = mean + 6 * FloorSqrt(mean) + 8;
  // A bucket that overflows runs into the next ones, at most `count` past the last;
  // the zeros' bucket starts after the last (its words are never read).
  const size_t size = kBuckets * capacity + count;
  uint64_t* const a = words_.Reserve(size);
  uint64_t* const b = words_tmp_.Reserve(size);
  uint32_t* const fill0 = spread_fill_.data();  // kBuckets + 1: the zeros' bucket last
  uint32_t* const fill1 = hist_[1].data();
  uint32_t* const top = top_.data();
  for (size_t d = 0; d <= kBuckets; ++d) fill0[d] = static_cast<uint32_t>(d * capacity);
  for (size_t d = 0; d < kBuckets; ++d) fill1[d] = static_cast<uint32_t>(d * capacity);
  top_.fill(0);
  const auto overflowed = [capacity](const uint32_t* fill) {
    uint32_t over = 0;
    for (size_t d = 0; d < kBuckets; ++d) over |= fill[d] > (d + 1) * capacity;
    return over != 0;
  };
  if (zero_bucket) {
    if (ids == nullptr) {
      SpreadFirst<true, true>(probs, ids, count, fill0, a);
    } else {
      SpreadFirst<false, true>(probs, ids, count, fill0, a);
    }
  } else if (ids == nullptr) {
    SpreadFirst<true, false>(probs, ids, count, fill0, a);
  } else {
    SpreadFirst<false, false>(probs, ids, count, fill0, a);
  }
  if (overflowed(fill0)) return false;
  SpreadSecond(a, fill0, capacity, fill1, top, b);
  if (overflowed(fill1)) return false;
  // Complemented keys of p in [0, 2) have the top two bits set: top[0, 3072) empty.
  constexpr size_t kLive = size_t{3} << kDigitBits;
  uint32_t outside = 0;
  for (size_t t = 0; t < kLive; ++t) outside |= top[t];
  if (outside != 0) return false;
  uint32_t sum = 0;
  for (size_t t = kLive; t < top_.size(); ++t) {
    const uint32_t c = top[t];
    top[t] = sum;
    sum += c;
  }
  SpreadLast(b, fill1, capacity, top, a);
  size_t kept = fill0[kBuckets] - kBuckets * capacity;  // the zeros' bucket
  kept = count - kept;
  while (kept > 0 && (a[kept - 1] >> 32) == 0xFFFFFFFFu) --kept;  // zeros sorted in, last
  out_ids->resize(kept);
  out_probs->resize(kept);
  Split(a, kept, out_ids->data(), out_probs->data());
  return true;
}

void DistributionSorter::Sort(const float* probs, const int32_t* ids, size_t count,
                              std::vector<int32_t>* out_ids, std::vector<float>* out_probs) {
  if (count < kRadixMinCount) return SortShort(probs, ids, count, out_ids, out_probs);
  // The spread buffers' positions (about 2.5 x count) must fit the 32-bit fills.
  if (count >= kSpreadMinCount && count <= (size_t{1} << 30)) {
    bool saw_zeros = false;
    if (LowDigitsLookUniform(probs, count, hist_[0].data(), hist_[1].data(), &saw_zeros) &&
        SortSpread(probs, ids, count, saw_zeros, out_ids, out_probs)) {
      return;
    }
  }
  // Past the sample the row is not uniform (ties, most often): pass 2 in two halves.
  SortCounted(probs, ids, count, /*halves=*/count >= kSpreadMinCount, out_ids, out_probs);
}

void DistributionSorter::SortCounted(const float* probs, const int32_t* ids, size_t count,
                                     bool halves, std::vector<int32_t>* out_ids,
                                     std::vector<float>* out_probs) {
  for (auto& h : hist_) h.fill(0);
  if (halves) halves_.fill(0);
  uint32_t* const h0 = hist_[0].data();
  uint32_t* const h1 = halves ? halves_.data() : hist_[1].data();
  uint32_t* const h2 = hist_[2].data();
  size_t zeros = 0;
  // OR of all bits: p >= 2, negative or NaN entries take the short path.
  const uint32_t any = halves ? CountDigits<true>(probs, count, h0, h1, h2, &zeros)
                              : CountDigits<false>(probs, count, h0, h1, h2, &zeros);
  if ((any & kTopBits) != 0) return SortShort(probs, ids, count, out_ids, out_probs);
  const size_t kept = count - zeros;
  out_ids->resize(kept);
  out_probs->resize(kept);
  if (kept == 0) return;

  // A digit shared by every entry (count == all) orders nothing: skip its pass.
  const uint32_t first_key = ~BitsOf(probs[0]);
  bool varies[3];
  for (int d = 0; d < 3; ++d) {
    if (d == 1 && halves) continue;
    uint32_t* const h = hist_[d].data();
    varies[d] = h[(first_key >> (d * kDigitBits)) & kDigitMask] != count;
    uint32_t sum = 0;  // counts -> exclusive prefix sums (the scatter offsets)
    for (uint32_t b = 0; b <= kDigitMask; ++b) {
      const uint32_t c = h[b];
      h[b] = sum;
      sum += c;
    }
  }
  // Pass 1 writes the entries with digit 0 < 512 first: pass 2's first half.
  const size_t split = h0[kBuckets / 2];
  if (halves) {
    const uint32_t first = (first_key >> kDigitBits) & kDigitMask;
    varies[1] = h1[2 * first] + h1[2 * first + 1] != count;
    uint32_t sum = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      const uint32_t n0 = h1[2 * b], n1 = h1[2 * b + 1];
      h1[2 * b] = sum;
      h1[2 * b + 1] = sum + n0;
      sum += n0 + n1;
    }
  }
  uint64_t* src = words_.Reserve(count);
  uint64_t* dst = words_tmp_.Reserve(count);
  FirstPass(probs, ids, count, varies[0], h0, src);
  if (varies[1]) {
    if (halves) {
      ScatterHalves(src, count, split, h1, dst);
    } else {
      Scatter<1>(src, count, h1, dst);
    }
    std::swap(src, dst);
  }
  if (varies[2]) {
    Scatter<2>(src, count, h2, dst);
    std::swap(src, dst);
  }
  Split(src, kept, out_ids->data(), out_probs->data());
}

}  // namespace tokensampler::sampler
