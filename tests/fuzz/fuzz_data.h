// The fuzzer's bytes as a stream of choices, for the targets that build their messages
// from it (fuzz_stream, fuzz_verify, fuzz_shared_memory), and the row encodings they share.
// Own and small, so that the gcc build's corpus replay needs nothing from clang.
#ifndef TOKENSAMPLER_TESTS_FUZZ_FUZZ_DATA_H_
#define TOKENSAMPLER_TESTS_FUZZ_FUZZ_DATA_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "absl/types/span.h"
#include "sampler/half.h"
#include "sampler/params.h"

namespace tokensampler::fuzz {

// Choices read from the front of the input; zeros once it runs out.
class FuzzedDataProvider {
 public:
  FuzzedDataProvider(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t remaining_bytes() const { return size_ - pos_; }

  template <typename T>
  T ConsumeIntegral() {
    T value = 0;
    for (size_t i = 0; i < sizeof(T) && pos_ < size_; ++i) {
      value = static_cast<T>((static_cast<uint64_t>(value) << 8) | data_[pos_++]);
    }
    return value;
  }

  // A value in [lo, hi] from as few bytes as the range needs.
  template <typename T>
  T ConsumeIntegralInRange(T lo, T hi) {
    const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
    uint64_t raw = 0;
    for (uint64_t seen = 0; seen < range && pos_ < size_; seen = (seen << 8) | 0xff) {
      raw = (raw << 8) | data_[pos_++];
    }
    return static_cast<T>(static_cast<uint64_t>(lo) +
                          (range == UINT64_MAX ? raw : raw % (range + 1)));
  }

  bool ConsumeBool() { return (ConsumeIntegral<uint8_t>() & 1) != 0; }

  template <typename T>
  T ConsumeFloatingPoint() {
    const uint32_t bits = ConsumeIntegral<uint32_t>();
    float value;
    std::memcpy(&value, &bits, sizeof(value));
    return static_cast<T>(value);
  }

  std::string ConsumeRandomLengthString(size_t max_length) {
    // Two statements: the length's own bytes are consumed before what is left is counted
    // (inside one call the order would be the compiler's choice).
    const size_t wanted = ConsumeIntegralInRange<size_t>(0, max_length);
    const size_t length = std::min(wanted, remaining_bytes());
    std::string out(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// A logit: mostly a quarter in [-10, 10] (exact in every dtype), sometimes -inf, now and
// then any float32 (NaN and +inf included).
inline float ConsumeLogit(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 15)) {
    case 0:
      return -std::numeric_limits<float>::infinity();
    case 1:
      return in.ConsumeFloatingPoint<float>();
    default:
      return static_cast<float>(in.ConsumeIntegralInRange<int>(-40, 40)) / 4;
  }
}

// The binary16 pattern nearest to `value` (ties to the larger magnitude), found by
// bisecting the positive finite patterns, which sampler::Float16ToFloat maps in
// increasing order. Beyond the largest finite half: infinity.
inline uint16_t Float16Bits(float value) {
  if (std::isnan(value)) return 0x7E00;
  const uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  const float magnitude = std::fabs(value);
  if (magnitude > 65504.0f) return sign | 0x7C00;
  uint16_t lo = 0;
  uint16_t hi = 0x7BFF;
  while (lo < hi) {
    const uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
    if (sampler::Float16ToFloat(mid) < magnitude) {
      lo = static_cast<uint16_t>(mid + 1);
    } else {
      hi = mid;
    }
  }
  if (lo > 0 && magnitude - sampler::Float16ToFloat(static_cast<uint16_t>(lo - 1)) <
                    sampler::Float16ToFloat(lo) - magnitude) {
    --lo;
  }
  return sign | lo;
}

// `values` as the raw bytes of `dtype` (little-endian; bfloat16 truncates the float32).
inline std::string EncodeRow(absl::Span<const float> values, sampler::Dtype dtype) {
  std::string out;
  for (const float value : values) {
    if (dtype == sampler::Dtype::kFloat32) {
      out.append(reinterpret_cast<const char*>(&value), sizeof(value));
      continue;
    }
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    const uint16_t half =
        dtype == sampler::Dtype::kBFloat16 ? static_cast<uint16_t>(bits >> 16) : Float16Bits(value);
    out.append(reinterpret_cast<const char*>(&half), sizeof(half));
  }
  return out;
}

}  // namespace tokensampler::fuzz

#endif  // TOKENSAMPLER_TESTS_FUZZ_FUZZ_DATA_H_
