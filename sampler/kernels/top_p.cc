// SIMD kernels of top-p by threshold: list the tokens above a logit with their mass,
// bucket them by logit, split and compact at the cut bucket. Contracts in
// sampler/kernels.h.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "sampler/kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "sampler/kernels/top_p.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "sampler/kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tokensampler::sampler::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ids of every z[i] >= threshold (ascending), and the sum of their w in ExpSum's fixed
// order (16 float partials per block of kSumBlock, then double): the same bits on every
// target.
size_t CollectAtLeastImpl(const float* z, const float* w, size_t n, float threshold,
                          int32_t* ids, double* mass, float* zs, float* ws) {
  const DF d;
  const DI di;
  constexpr size_t kN = hn::MaxLanes(DF());
  if constexpr (kN > kSumLanes) {
    return CollectAtLeastScalar(z, w, n, threshold, ids, mass, zs, ws);
  } else {
    constexpr size_t kAcc = kSumLanes / kN;
    const VF t = hn::Set(d, threshold);
    const auto iota = hn::Iota(di, 0);  // Iota is a memory round trip: once
    const bool values = zs != nullptr;
    size_t count = 0;
    double total = 0.0;
    HWY_ALIGN float partial[kSumLanes];
    for (size_t block = 0; block < n; block += kSumBlock) {
      const size_t end = block + kSumBlock < n ? block + kSumBlock : n;
      VF acc[kAcc];
      for (size_t k = 0; k < kAcc; ++k) acc[k] = hn::Zero(d);
      size_t i = block;
      for (; i + kSumLanes <= end; i += kSumLanes) {
        for (size_t k = 0; k < kAcc; ++k) {
          const size_t at = i + k * kN;
          const VF zv = hn::LoadU(d, z + at);
          const auto keep = hn::Ge(zv, t);
          if (hn::AllFalse(d, keep)) continue;
          const auto keep_i = hn::RebindMask(di, keep);
          // Register compress + full store (memory-destination compress is slow on
          // some CPUs): at most `at` ids precede, so the store stays below at + N <= n.
          const auto lane_ids = hn::Add(iota, hn::Set(di, static_cast<int32_t>(at)));
          hn::StoreU(hn::Compress(lane_ids, keep_i), di, ids + count);
          if (w != nullptr) {
            const VF wv = hn::LoadU(d, w + at);
            acc[k] = hn::Add(acc[k], hn::IfThenElseZero(keep, wv));
            if (values) {
              hn::StoreU(hn::Compress(zv, keep), d, zs + count);
              hn::StoreU(hn::Compress(wv, keep), d, ws + count);
            }
          }
          count += hn::CountTrue(di, keep_i);
        }
      }
      for (size_t k = 0; k < kAcc; ++k) hn::StoreU(acc[k], d, partial + k * kN);
      for (; i < end; ++i) {
        if (z[i] >= threshold) {
          if (values) {
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
}

// LogitBuckets: bucket[i] = trunc(min((z_max - z[i]) * scale, last)).
void LogitBucketsImpl(const float* z, size_t n, float z_max, float scale, uint16_t last,
                      uint16_t* bucket) {
  const DF d;
  const DI di;
  const hn::Rebind<uint16_t, DF> d16;
  const size_t N = hn::Lanes(d);
  const VF vmax = hn::Set(d, z_max);
  const VF vscale = hn::Set(d, scale);
  const VF vlast = hn::Set(d, static_cast<float>(last));
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const VF b = hn::Min(hn::Mul(hn::Sub(vmax, hn::LoadU(d, z + i)), vscale), vlast);
    hn::StoreU(hn::DemoteTo(d16, hn::ConvertTo(di, b)), d16, bucket + i);
  }
  for (; i < n; ++i) bucket[i] = LogitBucket(z[i], z_max, scale, last);
}

// SplitAtBucket: counts bucket[i] < cut; lists the positions i with bucket[i] == cut.
size_t SplitAtBucketImpl(const uint16_t* bucket, size_t n, uint16_t cut, uint32_t* at_cut,
                         size_t* n_at_cut) {
  const hn::ScalableTag<int32_t> di;
  const hn::Rebind<uint16_t, decltype(di)> d16;
  const size_t N = hn::Lanes(di);
  const auto vcut = hn::Set(di, cut);
  const auto iota = hn::Iota(di, 0);
  auto below = hn::Zero(di);
  size_t found = 0;
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto b = hn::PromoteTo(di, hn::LoadU(d16, bucket + i));
    below = hn::Sub(below, hn::VecFromMask(di, hn::Lt(b, vcut)));  // true lanes are -1
    const auto eq = hn::Eq(b, vcut);
    if (HWY_UNLIKELY(!hn::AllFalse(di, eq))) {
      const auto pos = hn::Add(iota, hn::Set(di, static_cast<int32_t>(i)));
      hn::StoreU(hn::Compress(pos, eq), di, reinterpret_cast<int32_t*>(at_cut) + found);
      found += hn::CountTrue(di, eq);
    }
  }
  size_t count = static_cast<size_t>(hn::GetLane(hn::SumOfLanes(di, below)));
  for (; i < n; ++i) {
    count += bucket[i] < cut;
    if (bucket[i] == cut) at_cut[found++] = static_cast<uint32_t>(i);
  }
  *n_at_cut = found;
  return count;
}

// KeepAboveCut: compacts ids (and z) in place, keeping position i if bucket[i] < cut, or
// bucket[i] == cut and (z[i], -ids[i]) >= (z_worst, -id_worst).
size_t KeepAboveCutImpl(int32_t* ids, float* z, const uint16_t* bucket, size_t n,
                        uint16_t cut, float z_worst, int32_t id_worst) {
  const DF d;
  const DI di;
  const hn::Rebind<uint16_t, DF> d16;
  const size_t N = hn::Lanes(d);
  const auto vcut = hn::Set(di, cut);
  const auto zw = hn::Set(di, OrderedBits(z_worst + 0.0f));
  const auto idw = hn::Set(di, id_worst);
  const auto magnitude = hn::Set(di, 0x7FFFFFFF);
  size_t out = 0;
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto b = hn::PromoteTo(di, hn::LoadU(d16, bucket + i));
    const auto id = hn::LoadU(di, ids + i);
    const VF zv = hn::LoadU(d, z + i);
    const auto bits = hn::BitCast(di, hn::Add(zv, hn::Zero(d)));  // -0 + 0 = +0
    const auto zo = hn::Xor(bits, hn::And(hn::ShiftRight<31>(bits), magnitude));
    const auto better =
        hn::Or(hn::Gt(zo, zw), hn::And(hn::Eq(zo, zw), hn::Not(hn::Gt(id, idw))));
    const auto keep = hn::Or(hn::Lt(b, vcut), hn::And(hn::Eq(b, vcut), better));
    // Full-vector stores at out <= i only overwrite lanes already loaded.
    hn::StoreU(hn::Compress(id, keep), di, ids + out);
    hn::StoreU(hn::Compress(zv, hn::RebindMask(d, keep)), d, z + out);
    out += hn::CountTrue(di, keep);
  }
  for (; i < n; ++i) {
    const int32_t zo = OrderedBits(z[i] + 0.0f);
    const int32_t zwo = OrderedBits(z_worst + 0.0f);
    const bool keep = bucket[i] < cut ||
                      (bucket[i] == cut && (zo > zwo || (zo == zwo && ids[i] <= id_worst)));
    ids[out] = ids[i];
    z[out] = z[i];
    out += keep;
  }
  return out;
}
}  // namespace HWY_NAMESPACE
}  // namespace tokensampler::sampler::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tokensampler::sampler::kernels {

HWY_EXPORT(CollectAtLeastImpl);
HWY_EXPORT(LogitBucketsImpl);
HWY_EXPORT(SplitAtBucketImpl);
HWY_EXPORT(KeepAboveCutImpl);

size_t CollectAtLeast(const float* z, const float* w, size_t n, float threshold, int32_t* ids,
                      double* mass, float* zs, float* ws) {
  return HWY_DYNAMIC_DISPATCH(CollectAtLeastImpl)(z, w, n, threshold, ids, mass, zs, ws);
}

void LogitBuckets(const float* z, size_t n, float z_max, float scale, uint16_t last,
                  uint16_t* bucket) {
  HWY_DYNAMIC_DISPATCH(LogitBucketsImpl)(z, n, z_max, scale, last, bucket);
}

size_t SplitAtBucket(const uint16_t* bucket, size_t n, uint16_t cut, uint32_t* at_cut,
                     size_t* n_at_cut) {
  return HWY_DYNAMIC_DISPATCH(SplitAtBucketImpl)(bucket, n, cut, at_cut, n_at_cut);
}

size_t KeepAboveCut(int32_t* ids, float* z, const uint16_t* bucket, size_t n, uint16_t cut,
                    float z_worst, int32_t id_worst) {
  return HWY_DYNAMIC_DISPATCH(KeepAboveCutImpl)(ids, z, bucket, n, cut, z_worst, id_worst);
}

}  // namespace tokensampler::sampler::kernels
#endif  // HWY_ONCE
