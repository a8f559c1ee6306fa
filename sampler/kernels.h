// Per-element passes over one row, the hot loops of the pipeline: every kernel and its
// scalar reference.
//
// Each kernel has a plain signature; the SIMD dispatch (Highway: AVX-512, AVX2, SSE4,
// EMU128, picked at run time) is hidden in sampler/kernels/*.cc, one file per family:
// row.cc (decode, max, exp-sum, argmax), top_k.cc, top_p.cc, draw.cc. The `*Scalar`
// functions (sampler/kernels/scalar.cc) are the references every fast path is tested
// against on every compiled target (tests/sampler/kernels_*_test.cc).
//
// Contract: every kernel returns bits identical to its scalar reference on every target.
// That holds because each is built only from operations IEEE 754 rounds exactly, in the
// same order on every target, and never from fused multiply-add or a library exp (see
// sampler/exp.h); sums use the fixed reduction orders written at ExpSum and Sum.
#ifndef TOKENSAMPLER_SAMPLER_KERNELS_H_
#define TOKENSAMPLER_SAMPLER_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "sampler/exp.h"
#include "sampler/half.h"
#include "sampler/params.h"

namespace tokensampler::sampler::kernels {

// Element i of `row` as float (exact), read one at a time: the scalar paths' reader.
inline float ElementOf(const LogitsView& row, size_t i) {
  const unsigned char* bytes = static_cast<const unsigned char*>(row.data);
  if (row.dtype == Dtype::kFloat32) {
    float v;
    std::memcpy(&v, bytes + 4 * i, sizeof(v));
    return v;
  }
  uint16_t bits;
  std::memcpy(&bits, bytes + 2 * i, sizeof(bits));
  return row.dtype == Dtype::kBFloat16 ? BFloat16ToFloat(bits) : Float16ToFloat(bits);
}

// ---- Decode, max, exp-sum, argmax (sampler/kernels/row.cc) ----

// Decodes `in` (in.size elements of in.dtype) into `out` as float, and computes the
// maximum in the same pass. Returns the index of the first element that is NaN or
// +inf (and leaves *max unspecified), or -1 if every element is finite or -inf.
// -inf is a legal logit (probability 0). *max is -inf if every element is -inf.
// With a token `bitmask` (sampler/stages/bitmask.h layout, BitmaskBytes(size) bytes;
// null: every token allowed), every element is still checked, but the masked ones are
// stored and maximised as -inf; *raw_max (if not null) receives the maximum of the row
// as given. The mask costs no extra pass: it is applied to the lanes as they are read.
// REQUIRES: out has room for in.size floats; in.size > 0.
int64_t DecodeAndMax(const LogitsView& in, float* out, float* max, const uint8_t* bitmask = nullptr,
                     float* raw_max = nullptr);
int64_t DecodeAndMaxScalar(const LogitsView& in, float* out, float* max,
                           const uint8_t* bitmask = nullptr, float* raw_max = nullptr);

// DecodeAndMax for a float32 row read in place (no copy, nothing stored): the first
// NaN/+inf index, or -1 with *max the maximum (-inf if every element is -inf); the
// bitmask and raw_max as in DecodeAndMax. REQUIRES: z 4-byte aligned.
int64_t MaxChecked(const float* z, size_t n, float* max, const uint8_t* bitmask = nullptr,
                   float* raw_max = nullptr);
int64_t MaxCheckedScalar(const float* z, size_t n, float* max, const uint8_t* bitmask = nullptr,
                         float* raw_max = nullptr);

// The largest element of z[0, n), -inf if none is larger. REQUIRES: no NaN.
float Max(const float* z, size_t n);
float MaxScalar(const float* z, size_t n);

// w[i] = exp((z[i] - max) / temperature) for i in [0, n), and returns the sum of the
// w[i]. Subtracting the max first is an exact identity that keeps exp in (0, 1]: no
// overflow for any finite logits; -inf gives exactly 0.
// Fixed reduction order (independent of SIMD width, thread count and batch): the row
// is cut into blocks of kSumBlock elements; within a block, 16 float partial sums
// accumulate the elements whose index is j mod 16; at the end of each block the 16
// partials are added, j = 0..15, to a double total.
// With a token `bitmask` (DecodeAndMax's), the masked tokens weigh exactly 0, as -inf
// logits would: the w and total of the masked row, read unmasked in place.
// REQUIRES: max >= every z[i] (every allowed z[i] with a bitmask), max finite,
// temperature > 0 and finite.
inline constexpr size_t kSumBlock = 1024;
inline constexpr size_t kSumLanes = 16;
double ExpSum(const float* z, size_t n, float max, float temperature, float* w,
              const uint8_t* bitmask = nullptr);
double ExpSumScalar(const float* z, size_t n, float max, float temperature, float* w,
                    const uint8_t* bitmask = nullptr);

// ExpSum (same w, same total) that also writes block_sums[b], the double sum (any order)
// of w over block b of kDrawBlock elements, in the same pass, for PickDense and for
// exact masses. REQUIRES: block_sums has room for ceil(n / kDrawBlock) entries.
double ExpSumBlocks(const float* z, size_t n, float max, float temperature, float* w,
                    double* block_sums, const uint8_t* bitmask = nullptr);

// The total ExpSum returns, bit for bit (the same fixed reduction order), without
// writing any weights: the log-sum-exp of RAW logprobs needs only the sum. The view
// form reads a bf16 / fp16 / fp32 row in place (its exact float values; no copy).
// Same REQUIRES as ExpSum (so no NaN or +inf in the row).
double ExpSumTotal(const float* z, size_t n, float max, float temperature);
double ExpSumTotal(const LogitsView& in, float max, float temperature);

// The index of the largest element of z[0, n), the lowest index among equals.
// REQUIRES: n > 0, no NaN.
size_t Argmax(const float* z, size_t n);
size_t ArgmaxScalar(const float* z, size_t n);

// Greedy without a copy: the index of the largest element of `in` (lowest on ties) and
// its value, with DecodeAndMax's error rule (returns the first NaN/+inf index, else -1).
// *argmax is 0 and *max -inf if every element is -inf. With a token `bitmask`
// (DecodeAndMax's), the argmax of the allowed tokens; every element is still checked.
// REQUIRES: in.size > 0.
int64_t DecodeArgmax(const LogitsView& in, size_t* argmax, float* max,
                     const uint8_t* bitmask = nullptr);
int64_t DecodeArgmaxScalar(const LogitsView& in, size_t* argmax, float* max,
                           const uint8_t* bitmask = nullptr);

// The Highway target (HWY_AVX3, HWY_AVX2, ...) the SIMD kernels currently dispatch to.
int64_t DispatchedTarget();

// ---- Top-k (sampler/kernels/top_k.cc) ----

// Spare entries the id-writing kernels need past their last result: they store whole
// vectors (of up to 16 ids) and count only the valid ones.
inline constexpr size_t kCompressSlack = 64;

// Top-k candidates in one pass over z: appends to buf the ids whose logit beats a
// rising bar (strictly: a later id that only ties the bar is worse than it); whenever
// buf is full, its best k (z descending, id ascending) stay and the k-th's logit becomes
// the bar. Returns the count: the best k tokens with z > -inf are among buf[0, count),
// in no particular order. *bar receives the final bar.
// The bar starts at `floor`: only ids with z > floor are considered, so the guarantee
// is about the best k of those (the caller checks that count >= k, which makes them the
// best k of the row).
// With a token `bitmask` (DecodeAndMax's), the masked tokens read as -inf: never
// candidates. The mask is read only for the vectors that beat the bar.
// REQUIRES: k >= 1, cap >= 2 * k + 64, no NaN in z. buf holds cap entries (the last
// kCompressSlack of them are scratch for full-vector stores).
size_t TopKCandidates(const float* z, size_t n, size_t k, int32_t* buf, size_t cap, float* bar,
                      float floor = -std::numeric_limits<float>::infinity(),
                      const uint8_t* bitmask = nullptr);

// TopKCandidates straight from a bf16 or fp16 row, decoding lanes as it goes (no
// decoded copy), with DecodeAndMax's check: returns the index of the first NaN/+inf
// element (buf, *count and *bar then unspecified), else -1 with buf[0, *count) and *bar
// exactly what TopKCandidates leaves on the decoded row on the same target: the same ids
// in the same order; the bitmask as in TopKCandidates (every element still checked).
// REQUIRES: in.dtype is kBFloat16 or kFloat16, floor < +inf, and TopKCandidates'
// requirements on k and cap.
int64_t DecodeTopKCandidates(const LogitsView& in, size_t k, int32_t* buf, size_t cap,
                             size_t* count, float* bar,
                             float floor = -std::numeric_limits<float>::infinity(),
                             const uint8_t* bitmask = nullptr);

// ---- Top-p by threshold (sampler/kernels/top_p.cc) ----

// Writes the ids i with z[i] >= threshold to ids (ascending) and the sum of their w[i]
// to *mass, in ExpSum's fixed reduction order (bit-identical on every target); returns
// the count. With zs and ws (both or neither), also zs[j] = z[ids[j]] and
// ws[j] = w[ids[j]], so that later passes over the set read it sequentially. With w null
// (and zs, ws null), only the ids: *mass is 0.
// REQUIRES: ids (and zs, ws) have room for n; no NaN in z.
size_t CollectAtLeast(const float* z, const float* w, size_t n, float threshold, int32_t* ids,
                      double* mass, float* zs = nullptr, float* ws = nullptr);
size_t CollectAtLeastScalar(const float* z, const float* w, size_t n, float threshold,
                            int32_t* ids, double* mass, float* zs = nullptr,
                            float* ws = nullptr);

// The set kernels of top-p by threshold (sampler/stages/top_p.cc), over a listed set of
// n tokens with compact logits z (descending logit = ascending bucket).
// The logit bucket of one token: trunc(min((z_max - z) * scale, last)), in float.
// REQUIRES: z <= z_max, scale >= 0, last <= 65535.
inline uint16_t LogitBucket(float z, float z_max, float scale, uint16_t last) {
  const float b = (z_max - z) * scale;
  return static_cast<uint16_t>(b < static_cast<float>(last) ? b : static_cast<float>(last));
}
// The bits of a float as an int32 that orders like the float, with -0 below +0.
inline int32_t OrderedBits(float z) {
  int32_t bits;
  std::memcpy(&bits, &z, sizeof(bits));
  return bits ^ ((bits >> 31) & 0x7FFFFFFF);
}
// bucket[i] = LogitBucket(z[i], ...) for i in [0, n).
void LogitBuckets(const float* z, size_t n, float z_max, float scale, uint16_t last,
                  uint16_t* bucket);
// Returns the count of i with bucket[i] < cut; writes the positions i with
// bucket[i] == cut (ascending) to at_cut and their count to *n_at_cut.
// REQUIRES: at_cut has room for n.
size_t SplitAtBucket(const uint16_t* bucket, size_t n, uint16_t cut, uint32_t* at_cut,
                     size_t* n_at_cut);
// Compacts ids and z in place, in order, to the positions i with bucket[i] < cut, or
// bucket[i] == cut and token i no worse than (z_worst, id_worst) (a larger logit, or
// an equal one, -0 equal to +0, and an id <= id_worst); returns their count.
size_t KeepAboveCut(int32_t* ids, float* z, const uint16_t* bucket, size_t n, uint16_t cut,
                    float z_worst, int32_t id_worst);

// ---- The dense distribution and its draw (sampler/kernels/draw.cc) ----

// The sum of w[0, n) in double, in a fixed order (kSumDoubleLanes interleaved lanes,
// then added in lane order): bit-identical to SumScalar on every target, and accurate
// to double rounding, unlike ExpSum's total whose block partials are float.
inline constexpr size_t kSumDoubleLanes = 32;
double Sum(const float* w, size_t n);
double SumScalar(const float* w, size_t n);

// p[i] = ProbOf(w[i], total) for i in [0, n): the probabilities the draw and the
// distribution report, bit-identical to ProbsScalar. p may be w (in place).
// REQUIRES: total > 0 and finite, w finite and >= 0.
void Probs(const float* w, size_t n, double total, float* p);
void ProbsScalar(const float* w, size_t n, double total, float* p);

// The support of those probabilities as a token bitmask (sampler/stages/bitmask.h): bit
// i set when ProbOf(w[i], total) > 0, written 8 or 16 bits at a time on AVX2 / AVX-512,
// bit-identical to PositiveBitsScalar. REQUIRES: bits holds BitmaskBytes(n) zero bytes;
// Probs' requirements.
void PositiveBits(const float* w, size_t n, double total, uint8_t* bits);
void PositiveBitsScalar(const float* w, size_t n, double total, uint8_t* bits);

// The draw (README "The draw") over weights in token-id order: with
// p_i = ProbOf(w[i], total), the index of the first i with p_i > 0 whose running double
// sum exceeds u * (the sum of all positive p_i); the last positive index if rounding
// leaves none; -1 if none is positive. PickDenseScalar is that walk, written once:
// every other walk of the library (ProcessedDistribution's draws) is it or PickDense.
// PickDense returns exactly PickDenseScalar's answer, usually after one SIMD pass of
// block sums and a walk of one block instead of two full sequential walks.
// REQUIRES: u in [0, 1), total > 0, w finite and >= 0.
// block_sums, if given, are ExpSumBlocks' sums of these w (else PickDense computes them).
inline constexpr size_t kDrawBlock = 1024;
static_assert(kDrawBlock == kSumBlock, "ExpSumBlocks reads a block back while in L1");
int64_t PickDense(const float* w, size_t n, double total, double u,
                  const double* block_sums = nullptr);
int64_t PickDenseScalar(const float* w, size_t n, double total, double u);

}  // namespace tokensampler::sampler::kernels

#endif  // TOKENSAMPLER_SAMPLER_KERNELS_H_
