// The llama.cpp samplers that need the whole Sampler state rather than one stage's
// workspace: dynamic temperature (over the row or the survivors) and mirostat's chain.
#include <algorithm>
#include <cstddef>
#include <limits>

#include "absl/types/span.h"
#include "sampler/kernels.h"
#include "sampler/sampler_impl.h"
#include "sampler/stages/dynatemp.h"
#include "sampler/stages/mirostat.h"
#include "sampler/stages/stages.h"

namespace tokensampler::sampler {

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();
}  // namespace

float Sampler::Impl::RowDynamicTemperature(const SamplingParams& params, float max) {
  const size_t vocab = ws.vocab;
  const double mass = kernels::ExpSum(ws.z, vocab, max, 1.0f, ws.w.data());
  size_t count = 0;
  for (size_t i = 0; i < vocab; ++i) count += ws.z[i] > -kInf ? 1 : 0;
  const double entropy = SoftmaxEntropy(absl::MakeConstSpan(ws.w.data(), vocab),
                                        absl::MakeConstSpan(ws.z, vocab), max, mass);
  return UseTemperature(DynamicTemperature(params.temperature, params.dynatemp_range,
                                            params.dynatemp_exponent, entropy, count));
}

float Sampler::Impl::SurvivorDynamicTemperature(const SamplingParams& params, float max) {
  const size_t n = ws.n;
  ws.gathered_w.resize(n);
  ws.gathered_z.resize(n);
  for (size_t i = 0; i < n; ++i) {
    ws.gathered_w[i] = ws.w[ws.ids[i]];
    ws.gathered_z[i] = ws.z[ws.ids[i]];
  }
  const double entropy = SoftmaxEntropy(ws.gathered_w, ws.gathered_z, max, CandidateMass(ws));
  return UseTemperature(DynamicTemperature(params.temperature, params.dynatemp_range,
                                            params.dynatemp_exponent, entropy, n));
}

// Mirostat v1 without a pass over every candidate: the top m by one top-k scan, and, when
// k exceeds m, the top k by a second one. Leaves the survivors in ids[0, n) (weights set)
// and returns true, or returns false when k keeps (nearly) everything.
bool Sampler::Impl::MirostatV1ByTopK(const SamplingParams& params, float max, float temperature,
                                     float mu) {
  const size_t vocab = ws.vocab;
  const size_t m = static_cast<size_t>(params.mirostat.m);
  if (2 * m >= vocab) return false;
  stages::TopKByLogits(ws, m, /*keep_ties=*/false, max, temperature);  // top m with w > 0
  std::sort(ws.ids.begin(), ws.ids.begin() + ws.n,
            [this](int32_t a, int32_t b) { return ws.Before(a, b); });
  const double k = MirostatV1K(absl::MakeConstSpan(ws.ids.data(), ws.n), ws.w.data(), vocab, mu);
  if (k < static_cast<double>(ws.n) || ws.n < m) {
    // Inside the top m (or fewer than m tokens have p > 0: they are all there).
    if (k < static_cast<double>(ws.n)) ws.n = std::max<size_t>(1, static_cast<size_t>(k));
    return true;
  }
  if (!(2 * k < static_cast<double>(vocab))) return false;
  stages::TopKByLogits(ws, static_cast<size_t>(k), /*keep_ties=*/false, max, temperature);
  return true;
}

void Sampler::Impl::RunMirostat(const SamplingParams& params, float max) {
  const size_t vocab = ws.vocab;
  float temperature = params.temperature;
  if (params.dynatemp_range > 0.0f) temperature = RowDynamicTemperature(params, max);
  if (temperature == 0.0f) {
    dist.SetOneHot(vocab, static_cast<int32_t>(kernels::Argmax(ws.z, vocab)));
    return;
  }
  const float mu = MirostatMu(params.mirostat);
  if (params.mirostat.version == 1 && MirostatV1ByTopK(params, max, temperature, mu)) {
    stages::Finalize(ws, &dist);
    return;
  }
  const double mass = kernels::ExpSum(ws.z, vocab, max, temperature, ws.w.data());
  if (temperature == 1.0f) ws.unit_sum = mass;
  if (params.mirostat.version == 2) {
    ws.ids.resize(vocab);
    ws.n = MirostatV2Collect(absl::MakeConstSpan(ws.w.data(), vocab), ws.z, mass, mu,
                             ws.ids.data());
  } else {
    Collect(ws, /*by_weight=*/true);
    ws.n = MirostatV1Cut(absl::MakeSpan(ws.ids.data(), ws.n), ws.w.data(), ws.z,
                         params.mirostat.m, vocab, mu, &ws.mirostat_top);
  }
  stages::Finalize(ws, &dist);
}

}  // namespace tokensampler::sampler
