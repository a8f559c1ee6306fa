// SIMD versions of the kernels (Highway dynamic dispatch: AVX-512, AVX2, SSE4, EMU128),
// and the one exp every kernel, scalar or SIMD, uses.
//
// Contract: every function here returns bits identical to its scalar reference in
// kernels.h on every compiled target. That holds because each is built only from
// operations IEEE 754 rounds exactly (add, sub, mul, div, max, compare, integer ops),
// in the same order on every target, and never from fused multiply-add or a library
// exp: see ExpNonPositive. kernels.cc compiles with -ffp-contract=off for the same
// reason. tests/sampler/kernels_simd_test.cc forces each target and checks it.
#ifndef TOKENSAMPLER_SAMPLER_KERNELS_HWY_H_
#define TOKENSAMPLER_SAMPLER_KERNELS_HWY_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "sampler/kernels.h"
#include "sampler/params.h"

namespace tokensampler::sampler::kernels {

// Constants of ExpNonPositive. The polynomial is Cephes' expf (S. L. Moshier, Cephes
// Math Library, expf.c): exp(r) ~ 1 + r + r^2 P(r) on |r| <= ln2/2, about 1 ulp.
namespace exp_constants {
inline constexpr float kMinArg = -104.0f;      // below this exp(x) rounds to 0 in float
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23: x + magic rounds x
inline constexpr int32_t kRoundMagicBits = 0x4B400000;
inline constexpr float kLn2Hi = 0.693359375f;  // 9 significant bits: n * kLn2Hi is exact
inline constexpr float kLn2Lo = -2.12194440e-4f;
inline constexpr float kP5 = 1.9875691500e-4f;
inline constexpr float kP4 = 1.3981999507e-3f;
inline constexpr float kP3 = 8.3334519073e-3f;
inline constexpr float kP2 = 4.1665795894e-2f;
inline constexpr float kP1 = 1.6666665459e-1f;
inline constexpr float kP0 = 5.0000001201e-1f;
}  // namespace exp_constants

inline float FloatFromBits(int32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// exp(x) for x <= 0 (and -inf), to about 1 ulp, subnormal results included; exactly
// 1 for x == 0 and exactly 0 for x < -104 or -inf. Each step is one IEEE operation,
// so the SIMD version (kernels_hwy.cc) gives the same bits on every target. Steps:
// n = round(x log2 e) by the add-magic trick, r = x - n ln2 in two exact-ish parts,
// exp(r) by the polynomial, then 2^n applied as two power-of-two factors 2^(n>>1) and
// 2^(n - (n>>1)) so that results below 2^-126 round once into the subnormals.
inline float ExpNonPositive(float x) {
  namespace c = exp_constants;
  const float xc = x > c::kMinArg ? x : c::kMinArg;
  float t = xc * c::kLog2e;
  t = t + c::kRoundMagic;
  const float nf = t - c::kRoundMagic;
  int32_t t_bits;
  std::memcpy(&t_bits, &t, sizeof(t_bits));
  const int32_t n = t_bits - c::kRoundMagicBits;
  float r = xc - nf * c::kLn2Hi;
  r = r - nf * c::kLn2Lo;
  float p = c::kP5;
  p = p * r + c::kP4;
  p = p * r + c::kP3;
  p = p * r + c::kP2;
  p = p * r + c::kP1;
  p = p * r + c::kP0;
  float y = p * (r * r);
  y = y + r;
  y = y + 1.0f;
  const int32_t n1 = n >> 1;
  const int32_t n2 = n - n1;
  y = y * FloatFromBits((n1 + 127) << 23);
  y = y * FloatFromBits((n2 + 127) << 23);
  return x < c::kMinArg ? 0.0f : y;
}

// The dispatched SIMD bodies behind the public kernels of kernels.h; same contracts.
int64_t DecodeAndMaxSimd(const LogitsView& in, float* out, float* max);
float MaxSimd(const float* z, size_t n);
double ExpSumSimd(const float* z, size_t n, float max, float temperature, float* w);

// ExpSum (same w, same total) that also writes block_sums[b], the double sum (any order)
// of w over block b of kDrawBlock elements, in the same pass, for PickDense and for
// exact masses. REQUIRES: block_sums has room for ceil(n / kDrawBlock) entries.
double ExpSumBlocks(const float* z, size_t n, float max, float temperature, float* w,
                    double* block_sums);
// The total ExpSum returns, bit for bit (the same fixed reduction order), without
// writing any weights: the log-sum-exp of RAW logprobs needs only the sum. The view
// form reads a bf16 / fp16 / fp32 row in place (its exact float values; no copy).
// Same REQUIRES as ExpSum (so no NaN or +inf in the row).
double ExpSumTotal(const float* z, size_t n, float max, float temperature);
double ExpSumTotal(const LogitsView& in, float max, float temperature);
size_t ArgmaxSimd(const float* z, size_t n);

// Greedy without a copy: the index of the largest element of `in` (lowest on ties) and
// its value, with DecodeAndMax's error rule (returns the first NaN/+inf index, else -1).
// *argmax is 0 and *max -inf if every element is -inf. REQUIRES: in.size > 0.
int64_t DecodeArgmaxSimd(const LogitsView& in, size_t* argmax, float* max);
int64_t DecodeArgmaxScalar(const LogitsView& in, size_t* argmax, float* max);

// The final probability of a token with weight w when the kept weights sum to total:
// p = min(1, w * s) in float, s = float(1 / total) (computed in double, rounded once),
// the multiply by the reciprocal a SIMD softmax does. It is within 2^-23 relative of
// w / total and never above 1. A total below kMinScaledTotal (only a set of tiny
// survivors could have one, and s would leave float's range) divides instead:
// p = float(double(w) / total). Every kernel and the scalar code use this function or
// its vector form, so the bits are the same everywhere.
inline constexpr double kMinScaledTotal = 0x1p-64;
inline float ProbOf(float w, double total) {
  if (total < kMinScaledTotal) return static_cast<float>(static_cast<double>(w) / total);
  const float p = w * static_cast<float>(1.0 / total);
  return p < 1.0f ? p : 1.0f;
}

// The draw of DRAW.md over a dense row: with p_i = ProbOf(w[i], total), the
// index of the first i with p_i > 0 whose running double sum (token-id order) exceeds
// u * (the sum of all positive p_i); the last positive index if rounding leaves none;
// -1 if none is positive. PickDense returns exactly PickDenseScalar's answer, usually
// after one SIMD pass of block sums and a walk of one block instead of two full
// sequential walks. REQUIRES: u in [0, 1), total > 0, w finite and >= 0.
// block_sums, if given, are ExpSumBlocks' sums of these w (else PickDense computes them).
inline constexpr size_t kDrawBlock = 1024;
static_assert(kDrawBlock == kSumBlock, "ExpSumBlocks reads a block back while in L1");
int64_t PickDense(const float* w, size_t n, double total, double u,
                  const double* block_sums = nullptr);
int64_t PickDenseScalar(const float* w, size_t n, double total, double u);

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
// REQUIRES: k >= 1, cap >= 2 * k + 64, no NaN in z. buf holds cap entries (the last
// kCompressSlack of them are scratch for full-vector stores).
size_t TopKCandidates(const float* z, size_t n, size_t k, int32_t* buf, size_t cap, float* bar,
                      float floor = -std::numeric_limits<float>::infinity());

// TopKCandidates straight from a bf16 or fp16 row, decoding lanes as it goes (no
// decoded copy), with DecodeAndMax's check: returns the index of the first NaN/+inf
// element (buf, *count and *bar then unspecified), else -1 with buf[0, *count) and *bar
// exactly what TopKCandidates leaves on the decoded row on the same target: the same ids
// in the same order. REQUIRES: in.dtype is kBFloat16 or kFloat16, floor < +inf, and
// TopKCandidates' requirements on k and cap.
int64_t DecodeTopKCandidates(const LogitsView& in, size_t k, int32_t* buf, size_t cap,
                             size_t* count, float* bar,
                             float floor = -std::numeric_limits<float>::infinity());

// Writes the ids i with z[i] >= threshold to ids (ascending) and the sum of their w[i]
// to *mass, in ExpSum's fixed reduction order (bit-identical on every target); returns
// the count. With zs and ws (both or neither), also zs[j] = z[ids[j]] and
// ws[j] = w[ids[j]], so that later passes over the set read it sequentially.
// REQUIRES: ids (and zs, ws) have room for n; no NaN in z.
size_t CollectAtLeast(const float* z, const float* w, size_t n, float threshold, int32_t* ids,
                      double* mass, float* zs = nullptr, float* ws = nullptr);
size_t CollectAtLeastScalar(const float* z, const float* w, size_t n, float threshold,
                            int32_t* ids, double* mass, float* zs = nullptr,
                            float* ws = nullptr);

// The set kernels of top-p by threshold (sampler.cc), over a listed set of n tokens
// with compact logits z (descending logit = ascending bucket).
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

// DecodeAndMax for a float32 row read in place (no copy): the first NaN/+inf index, or
// -1 with *max the maximum (-inf if every element is -inf). REQUIRES: z 4-byte aligned.
int64_t MaxChecked(const float* z, size_t n, float* max);
int64_t MaxCheckedScalar(const float* z, size_t n, float* max);

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

// The Highway target (HWY_AVX3, HWY_AVX2, ...) the SIMD kernels currently dispatch to.
int64_t DispatchedTarget();

}  // namespace tokensampler::sampler::kernels

#endif  // TOKENSAMPLER_SAMPLER_KERNELS_HWY_H_
