// Per-element passes over one row, the hot loops of the pipeline.
//
// Each kernel has a plain signature; the public entry points may dispatch to SIMD code
// (issue 4), and the `*Scalar` versions are the reference every fast path is tested
// against. All results are bit-identical to the scalar reference by contract: in
// particular sums use the fixed reduction order described at ExpSum.
#ifndef TOKENSAMPLER_SAMPLER_KERNELS_H_
#define TOKENSAMPLER_SAMPLER_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "sampler/params.h"

namespace tokensampler::sampler::kernels {

// Scalar conversions of one 16-bit element (little-endian bits) to float. Exact.
float BFloat16ToFloat(uint16_t bits);
float Float16ToFloat(uint16_t bits);

// Decodes `in` (in.size elements of in.dtype) into `out` as float, and computes the
// maximum in the same pass. Returns the index of the first element that is NaN or
// +inf (and leaves *max unspecified), or -1 if every element is finite or -inf.
// -inf is a legal logit (probability 0). *max is -inf if every element is -inf.
// REQUIRES: out has room for in.size floats; in.size > 0.
int64_t DecodeAndMax(const LogitsView& in, float* out, float* max);
int64_t DecodeAndMaxScalar(const LogitsView& in, float* out, float* max);

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
// REQUIRES: max >= every z[i], max finite, temperature > 0 and finite.
inline constexpr size_t kSumBlock = 1024;
inline constexpr size_t kSumLanes = 16;
double ExpSum(const float* z, size_t n, float max, float temperature, float* w);
double ExpSumScalar(const float* z, size_t n, float max, float temperature, float* w);

// The index of the largest element of z[0, n), the lowest index among equals.
// REQUIRES: n > 0, no NaN.
size_t Argmax(const float* z, size_t n);
size_t ArgmaxScalar(const float* z, size_t n);

}  // namespace tokensampler::sampler::kernels

#endif  // TOKENSAMPLER_SAMPLER_KERNELS_H_
