// SIMD top-k candidate scans (float32 and 16-bit rows). Contracts in sampler/kernels.h.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "sampler/kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "sampler/kernels/top_k.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "sampler/kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tokensampler::sampler::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Streams z once keeping a buffer of ids whose logit beats the bar; see TopKCandidates.
// With kMasked, a vector that beats the bar is masked (MaskLanes) and tested again.
template <bool kMasked>
size_t TopKCandidatesLoop(const float* z, size_t n, size_t k, int32_t* buf, size_t cap,
                          float* bar_out, float floor, const uint8_t* bitmask) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  float bar = floor;
  size_t count = 0;
  auto shrink = [&]() {
    // Keep the best k (z descending, id ascending); the k-th's logit becomes the bar:
    // a later token (higher id) must beat it strictly.
    std::nth_element(buf, buf + (k - 1), buf + count, [z](int32_t a, int32_t b) {
      return z[a] > z[b] || (z[a] == z[b] && a < b);
    });
    bar = z[buf[k - 1]];
    count = k;
  };
  size_t i = 0;
  auto idx = hn::Iota(di, 0);
  const auto stride = hn::Set(di, static_cast<int32_t>(N));
  for (; i + N <= n; i += N, idx = hn::Add(idx, stride)) {
    VF v = hn::LoadU(d, z + i);
    if (HWY_LIKELY(hn::AllFalse(d, hn::Gt(v, hn::Set(d, bar))))) continue;
    if constexpr (kMasked) {
      v = MaskLanes(d, bitmask, i, v);
      if (hn::AllFalse(d, hn::Gt(v, hn::Set(d, bar)))) continue;
    }
    if (count + 2 * N > cap) shrink();
    // The bar may have risen: compare again.
    const auto pass2 = hn::RebindMask(di, hn::Gt(v, hn::Set(d, bar)));
    hn::StoreU(hn::Compress(idx, pass2), di, buf + count);  // full vector: needs slack
    count += hn::CountTrue(di, pass2);
  }
  for (; i < n; ++i) {
    const bool allowed = !kMasked || stages::BitmaskAllows(bitmask, i);
    if (z[i] > bar && allowed) {
      if (count + 1 > cap) shrink();
      if (z[i] > bar) buf[count++] = static_cast<int32_t>(i);
    }
  }
  *bar_out = bar;
  return count;
}

size_t TopKCandidatesImpl(const float* z, size_t n, size_t k, int32_t* buf, size_t cap,
                          float* bar_out, float floor, const uint8_t* bitmask) {
  return bitmask == nullptr ? TopKCandidatesLoop<false>(z, n, k, buf, cap, bar_out, floor, nullptr)
                            : TopKCandidatesLoop<true>(z, n, k, buf, cap, bar_out, floor, bitmask);
}

// TopKCandidatesImpl's buffer and steps for a row whose logits are read through
// `value(id)`: the same comparisons in the same order, hence the same buffer.
template <class Value>
struct TopKBuffer {
  const Value& value;
  size_t k;
  int32_t* buf;
  size_t cap;
  float bar;
  size_t count = 0;

  // Keeps the best k (logit descending, id ascending); the k-th's logit becomes the
  // bar: a later token (higher id) must beat it strictly.
  void Shrink() {
    std::nth_element(buf, buf + (k - 1), buf + count, [this](int32_t a, int32_t b) {
      const float za = value(a);
      const float zb = value(b);
      return za > zb || (za == zb && a < b);
    });
    bar = value(buf[k - 1]);
    count = k;
  }

  // Appends the lanes of v (ids `ids`) that beat the bar, shrinking first if a full
  // vector might not fit.
  HWY_INLINE void Offer(VF v, hn::Vec<DI> ids) {
    const DF d;
    const DI di;
    if (count + 2 * hn::Lanes(d) > cap) Shrink();
    // The bar may have risen: compare again.
    const auto pass = hn::RebindMask(di, hn::Gt(v, hn::Set(d, bar)));
    hn::StoreU(hn::Compress(ids, pass), di, buf + count);  // full vector: needs slack
    count += hn::CountTrue(di, pass);
  }

  void OfferOne(size_t i, float v) {
    if (v > bar) {
      if (count + 1 > cap) Shrink();
      if (v > bar) buf[count++] = static_cast<int32_t>(i);
    }
  }
};

// TopKCandidatesImpl on a 16-bit row decoded as it goes, with DecodeAndMax's check.
// `pair(i, &a, &b)` decodes elements [i, i + 2N) into a and b in any lane order (only
// the all-below-the-bar test reads them); `load(i)` decodes [i, i + N) in order. Whole
// blocks of 2N whose lanes are all <= the bar are skipped: a lane that is not, NaN
// included, sends its block through the per-N steps of TopKCandidatesImpl, which
// therefore sees the same vectors at the same bars and leaves the same buffer, after
// checking the block for NaN/+inf. A +inf always fails the skip test: the bar is -inf,
// the floor (< +inf) or the logit of a buffered, hence checked, id. With a `bitmask`,
// the lanes it masks are offered as -inf (after the check, which reads them unmasked).
template <class Pair, class Load, class Value>
HWY_INLINE int64_t TopKLoop16(size_t n, const Pair& pair, const Load& load, const Value& value,
                              const uint8_t* bitmask, TopKBuffer<Value>& top) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  const VF inf = hn::Set(d, std::numeric_limits<float>::infinity());
  const auto iota = hn::Iota(di, 0);
  auto offer = [&](size_t at) HWY_ATTR __attribute__((always_inline)) {
    VF v = load(at);
    if (bitmask != nullptr) v = MaskLanes(d, bitmask, at, v);
    if (hn::AllFalse(d, hn::Gt(v, hn::Set(d, top.bar)))) return;
    top.Offer(v, hn::Add(iota, hn::Set(di, static_cast<int32_t>(at))));
  };
  size_t i = 0;
  bool stopped = false;  // at a block holding a NaN or +inf
  for (; i + 2 * N <= n; i += 2 * N) {
    VF a, b;
    pair(i, &a, &b);
    const VF bar = hn::Set(d, top.bar);
    if (HWY_LIKELY(hn::AllTrue(d, hn::And(hn::Le(a, bar), hn::Le(b, bar))))) continue;
    if (!hn::AllTrue(d, hn::And(hn::Lt(a, inf), hn::Lt(b, inf)))) {
      stopped = true;
      break;
    }
    offer(i);
    offer(i + N);
  }
  if (!stopped && i + N <= n) {
    if (hn::AllTrue(d, hn::Lt(load(i), inf))) {
      offer(i);
      i += N;
    } else {
      stopped = true;
    }
  }
  for (; i < n; ++i) {
    const float v = value(i);
    if (!(v < std::numeric_limits<float>::infinity())) return static_cast<int64_t>(i);
    const bool allowed = bitmask == nullptr || stages::BitmaskAllows(bitmask, i);
    if (!stopped && allowed) top.OfferOne(i, v);
  }
  return -1;
}

int64_t DecodeTopKCandidatesImpl(const LogitsView& in, size_t k, int32_t* buf, size_t cap,
                                 size_t* count, float* bar_out, float floor,
                                 const uint8_t* bitmask) {
  const DF d;
  const DU du;
  const size_t N = hn::Lanes(d);
  const unsigned char* bytes = static_cast<const unsigned char*>(in.data);
  int64_t bad;
  if (in.dtype == Dtype::kBFloat16) {
    auto value = [bytes](size_t i) { return BFloat16ToFloat(Bits16(bytes, i)); };
    TopKBuffer<decltype(value)> top{value, k, buf, cap, floor};
    // Two bf16 per 32-bit lane (element 2j low, 2j + 1 high): `lane << 16` and
    // `lane & 0xFFFF0000` are both exact floats.
    const auto high = hn::Set(du, 0xFFFF0000u);
    const auto pair = [&](size_t i, VF* a, VF* b) {
      const auto u = hn::LoadU(du, reinterpret_cast<const uint32_t*>(bytes + 2 * i));
      *a = hn::BitCast(d, hn::ShiftLeft<16>(u));
      *b = hn::BitCast(d, hn::And(u, high));
    };
    const auto load = [&](size_t i) { return DecodeBf16(d, bytes + 2 * i); };
    bad = TopKLoop16(in.size, pair, load, value, bitmask, top);
    *count = top.count;
    *bar_out = top.bar;
  } else {
    auto value = [bytes](size_t i) { return Float16ToFloat(Bits16(bytes, i)); };
    TopKBuffer<decltype(value)> top{value, k, buf, cap, floor};
    const auto load = [&](size_t i) { return DecodeFp16(d, bytes + 2 * i); };
#if HWY_ARCH_X86 && HWY_TARGET < HWY_SSE4 && !defined(HWY_DISABLE_F16C)
    // F16C's conversion (Highway's PromoteTo here), exact like DecodeFp16 and cheaper:
    // the skip test only compares the values. (Highway's fallback without F16C turns
    // inf and NaN into finite values, hence DecodeFp16 there.)
    const hn::Rebind<hwy::float16_t, DF> dh;
    const auto pair = [&](size_t i, VF* a, VF* b) {
      const auto* halves = reinterpret_cast<const hwy::float16_t*>(bytes) + i;
      *a = hn::PromoteTo(d, hn::LoadU(dh, halves));
      *b = hn::PromoteTo(d, hn::LoadU(dh, halves + N));
    };
#else
    const auto pair = [&](size_t i, VF* a, VF* b) {
      *a = load(i);
      *b = load(i + N);
    };
#endif
    bad = TopKLoop16(in.size, pair, load, value, bitmask, top);
    *count = top.count;
    *bar_out = top.bar;
  }
  return bad;
}
}  // namespace HWY_NAMESPACE
}  // namespace tokensampler::sampler::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tokensampler::sampler::kernels {

HWY_EXPORT(TopKCandidatesImpl);
HWY_EXPORT(DecodeTopKCandidatesImpl);

size_t TopKCandidates(const float* z, size_t n, size_t k, int32_t* buf, size_t cap, float* bar,
                      float floor, const uint8_t* bitmask) {
  return HWY_DYNAMIC_DISPATCH(TopKCandidatesImpl)(z, n, k, buf, cap, bar, floor, bitmask);
}

int64_t DecodeTopKCandidates(const LogitsView& in, size_t k, int32_t* buf, size_t cap,
                             size_t* count, float* bar, float floor, const uint8_t* bitmask) {
  return HWY_DYNAMIC_DISPATCH(DecodeTopKCandidatesImpl)(in, k, buf, cap, count, bar, floor,
                                                        bitmask);
}

}  // namespace tokensampler::sampler::kernels
#endif  // HWY_ONCE
