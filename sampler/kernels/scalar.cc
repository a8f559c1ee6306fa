// The scalar references of every kernel in sampler/kernels.h: plain loops that state each
// contract; the SIMD kernels are tested against them bit for bit on every target.
#include <cstddef>
#include <cstdint>
#include <limits>

#include "sampler/draw.h"
#include "sampler/kernels.h"
#include "sampler/stages/bitmask.h"

namespace tokensampler::sampler::kernels {

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();

// Token i's logit v as the kernels read it under `bitmask` (null: every token allowed).
float Masked(const uint8_t* bitmask, size_t i, float v) {
  return bitmask == nullptr || stages::BitmaskAllows(bitmask, i) ? v : -kInf;
}

}  // namespace

int64_t DecodeAndMaxScalar(const LogitsView& in, float* out, float* max, const uint8_t* bitmask,
                           float* raw_max) {
  float m = -kInf;
  float raw = -kInf;
  for (size_t i = 0; i < in.size; ++i) {
    const float v = ElementOf(in, i);
    // NaN fails `v < inf`; +inf fails it too: one compare catches both.
    if (!(v < kInf)) return static_cast<int64_t>(i);
    raw = v > raw ? v : raw;
    const float masked = Masked(bitmask, i, v);
    if (out != nullptr) out[i] = masked;
    m = masked > m ? masked : m;
  }
  *max = m;
  if (raw_max != nullptr) *raw_max = raw;
  return -1;
}

int64_t MaxCheckedScalar(const float* z, size_t n, float* max, const uint8_t* bitmask,
                         float* raw_max) {
  return DecodeAndMaxScalar(LogitsView{z, n, Dtype::kFloat32}, nullptr, max, bitmask, raw_max);
}

float MaxScalar(const float* z, size_t n) {
  float m = -kInf;
  for (size_t i = 0; i < n; ++i) m = z[i] > m ? z[i] : m;
  return m;
}

double ExpSumScalar(const float* z, size_t n, float max, float temperature, float* w,
                    const uint8_t* bitmask) {
  double total = 0.0;
  for (size_t block = 0; block < n; block += kSumBlock) {
    const size_t end = block + kSumBlock < n ? block + kSumBlock : n;
    float partial[kSumLanes] = {};
    for (size_t i = block; i < end; ++i) {
      // Division, not multiplication by 1/T: exact 0 for z == max at any T > 0.
      const float e = ExpNonPositive((Masked(bitmask, i, z[i]) - max) / temperature);
      w[i] = e;
      partial[(i - block) % kSumLanes] += e;
    }
    for (size_t j = 0; j < kSumLanes; ++j) total += partial[j];
  }
  return total;
}

size_t ArgmaxScalar(const float* z, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (z[i] > z[best]) best = i;
  }
  return best;
}

int64_t DecodeArgmaxScalar(const LogitsView& in, size_t* argmax, float* max,
                           const uint8_t* bitmask) {
  float m = -kInf;
  size_t best = 0;
  for (size_t i = 0; i < in.size; ++i) {
    const float raw = ElementOf(in, i);
    if (!(raw < kInf)) return static_cast<int64_t>(i);
    const float v = Masked(bitmask, i, raw);
    if (v > m) {
      m = v;
      best = i;
    }
  }
  *argmax = best;
  *max = m;
  return -1;
}

size_t CollectAtLeastScalar(const float* z, const float* w, size_t n, float threshold,
                            int32_t* ids, double* mass, float* zs, float* ws) {
  size_t count = 0;
  double total = 0.0;
  for (size_t block = 0; block < n; block += kSumBlock) {
    const size_t end = block + kSumBlock < n ? block + kSumBlock : n;
    float partial[kSumLanes] = {};
    for (size_t i = block; i < end; ++i) {
      if (z[i] >= threshold) {
        if (zs != nullptr) {
          zs[count] = z[i];
          ws[count] = w[i];
        }
        ids[count++] = static_cast<int32_t>(i);
        if (w != nullptr) partial[(i - block) % kSumLanes] += w[i];
      }
    }
    for (size_t j = 0; j < kSumLanes; ++j) total += partial[j];
  }
  *mass = total;
  return count;
}

double SumScalar(const float* w, size_t n) {
  double lanes[kSumDoubleLanes] = {};
  for (size_t i = 0; i < n; ++i) lanes[i % kSumDoubleLanes] += w[i];
  double total = 0.0;
  for (double lane : lanes) total += lane;
  return total;
}

void PositiveBitsScalar(const float* w, size_t n, double total, uint8_t* bits) {
  for (size_t i = 0; i < n; ++i) {
    if (ProbOf(w[i], total) > 0.0f) stages::BitmaskSet(bits, i);
  }
}

void ProbsScalar(const float* w, size_t n, double total, float* p) {
  for (size_t i = 0; i < n; ++i) p[i] = ProbOf(w[i], total);
}

int64_t PickDenseScalar(const float* w, size_t n, double total, double u) {
  return InverseCdf(n, [w, total](size_t i) { return ProbOf(w[i], total); }, u);
}

}  // namespace tokensampler::sampler::kernels
