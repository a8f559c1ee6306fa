#include "sampler/stages/dry.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "sampler/stages/reversed_z.h"

namespace tokensampler::sampler {

namespace {

// The window DRY looks at: the last penalty_last_n tokens, or all of them.
absl::Span<const int32_t> DryWindow(absl::Span<const int32_t> history, const DryParams& dry) {
  if (dry.penalty_last_n > 0 && history.size() > static_cast<size_t>(dry.penalty_last_n)) {
    return history.subspan(history.size() - static_cast<size_t>(dry.penalty_last_n));
  }
  return history;
}

// ln(FLT_MAX) as llama.cpp writes it: the exponent clamp keeps base^e finite.
constexpr float kFloatMaxLog = 88.7228391f;

// Whether `token` is a whole breaker by itself. `heads` as DryRepeatLimit leaves it.
bool IsSingleTokenBreaker(int32_t token, const DryParams& dry,
                          const std::vector<std::pair<int32_t, uint32_t>>& heads) {
  if (dry.sequence_breakers.empty()) return false;
  auto it = std::lower_bound(heads.begin(), heads.end(), std::pair<int32_t, uint32_t>{token, 0});
  for (; it != heads.end() && it->first == token; ++it) {
    if (dry.sequence_breakers[it->second].size() == 1) return true;
  }
  return false;
}

}  // namespace

bool DryActive(const DryParams& dry, size_t history_size) {
  if (!(dry.multiplier > 0.0f)) return false;
  size_t window = history_size;
  if (dry.penalty_last_n > 0) {
    window = std::min(window, static_cast<size_t>(dry.penalty_last_n));
  }
  return window > static_cast<size_t>(dry.allowed_length);
}

void DryRepeatCounts(absl::Span<const int32_t> window, int32_t limit, DryWorkspace* ws,
                     std::vector<int32_t>* counts) {
  const size_t n = window.size();
  counts->assign(n, 0);
  if (n < 2) return;
  // z[k]: the longest suffix of window[0, n - k) that is a suffix of the window (linear).
  std::vector<int32_t>& z = ws->z;
  stages::ReversedZFunction(window, &z);
  for (size_t k = 1; k < n; ++k) (*counts)[n - 1 - k] = std::min(z[k], limit);
}

int32_t DryRepeatLimit(absl::Span<const int32_t> window, const DryParams& dry, DryWorkspace* ws) {
  const size_t n = window.size();
  if (dry.sequence_breakers.empty()) return static_cast<int32_t>(n);
  auto& heads = ws->heads;
  heads.clear();
  for (size_t b = 0; b < dry.sequence_breakers.size(); ++b) {
    heads.push_back({dry.sequence_breakers[b][0], static_cast<uint32_t>(b)});
  }
  std::sort(heads.begin(), heads.end());
  // From the end backwards (i tokens from the end), the first position that begins a
  // whole breaker (its head there, its tail in the i tokens after it).
  for (size_t i = 0; i < n; ++i) {
    const int32_t token = window[n - 1 - i];
    auto it = std::lower_bound(heads.begin(), heads.end(), std::pair<int32_t, uint32_t>{token, 0});
    int64_t longest_tail = -1;
    for (; it != heads.end() && it->first == token; ++it) {
      const absl::Span<const int32_t> seq = dry.sequence_breakers[it->second];
      const size_t tail = seq.size() - 1;
      if (static_cast<int64_t>(tail) <= longest_tail || tail > i) continue;
      bool match = true;
      for (size_t o = 0; o < tail && match; ++o) match = seq[1 + o] == window[n - i + o];
      if (match) longest_tail = static_cast<int64_t>(tail);
    }
    if (longest_tail >= 0) return static_cast<int32_t>(i - static_cast<size_t>(longest_tail));
  }
  return static_cast<int32_t>(n);
}

size_t ApplyDry(absl::Span<const int32_t> history, const DryParams& dry, absl::Span<float> z,
                DryWorkspace* ws) {
  if (!DryActive(dry, history.size())) return 0;
  const absl::Span<const int32_t> window = DryWindow(history, dry);
  const int32_t limit = DryRepeatLimit(window, dry, ws);
  if (limit < dry.allowed_length) return 0;
  DryRepeatCounts(window, limit, ws, &ws->counts);
  // L_t: the longest repeat each token would extend.
  if (ws->longest.size() != z.size()) ws->longest.assign(z.size(), -1);
  ws->touched.clear();
  for (size_t i = 0; i + 1 < window.size(); ++i) {
    const int32_t len = ws->counts[i];
    if (len < dry.allowed_length) continue;
    const int32_t t = window[i + 1];
    if (ws->longest[t] < 0) ws->touched.push_back(t);
    ws->longest[t] = std::max(ws->longest[t], len);
  }
  int32_t max_exponent = 0;  // 0 = no clamp (a base this close to 1 cannot overflow)
  if (dry.base > 1.000001f) {
    max_exponent = static_cast<int32_t>(kFloatMaxLog / std::log(dry.base));
  }
  size_t penalised = 0;
  for (int32_t t : ws->touched) {
    const int32_t len = ws->longest[t];
    ws->longest[t] = -1;  // reset for the next row
    if (IsSingleTokenBreaker(t, dry, ws->heads)) continue;
    int32_t exponent = len - dry.allowed_length;
    if (max_exponent > 0 && exponent > max_exponent) exponent = max_exponent;
    const float penalty = static_cast<float>(static_cast<double>(dry.multiplier) *
                                             std::pow(static_cast<double>(dry.base), exponent));
    z[t] -= penalty;
    ++penalised;
  }
  return penalised;
}

}  // namespace tokensampler::sampler
