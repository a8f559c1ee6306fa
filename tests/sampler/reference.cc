#include "tests/sampler/reference.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <numeric>
#include <string>

#include "absl/types/span.h"

namespace tokensampler::sampler::testing {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kTolerance = 1e-6;  // "reaches p" in STANDARD top-p and typical

// Tokens still kept, with their logits; probabilities are always recomputed from the
// logits over the kept set (every truncation renormalises).
struct Row {
  std::vector<double> z;
  std::vector<bool> kept;
};

std::vector<int32_t> KeptIds(const Row& row) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < row.z.size(); ++i) {
    if (row.kept[i]) ids.push_back(static_cast<int32_t>(i));
  }
  return ids;
}

// Kept ids by descending logit, ties by ascending id.
std::vector<int32_t> SortedDescending(const Row& row) {
  std::vector<int32_t> ids = KeptIds(row);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    if (row.z[a] != row.z[b]) return row.z[a] > row.z[b];
    return a < b;
  });
  return ids;
}

// softmax(z / t) over the kept tokens, 0 elsewhere.
std::vector<double> Softmax(const Row& row, double t) {
  double max = -kInf;
  for (size_t i = 0; i < row.z.size(); ++i) {
    if (row.kept[i]) max = std::max(max, row.z[i]);
  }
  std::vector<double> p(row.z.size(), 0.0);
  double sum = 0.0;
  for (size_t i = 0; i < row.z.size(); ++i) {
    if (row.kept[i]) {
      p[i] = std::exp((row.z[i] - max) / t);
      sum += p[i];
    }
  }
  for (double& v : p) v /= sum;
  return p;
}

void KeepOnly(Row* row, const std::vector<int32_t>& ids, size_t count) {
  std::fill(row->kept.begin(), row->kept.end(), false);
  for (size_t i = 0; i < count && i < ids.size(); ++i) row->kept[ids[i]] = true;
}

void TopK(Row* row, size_t k, bool keep_ties) {
  std::vector<int32_t> ids = SortedDescending(*row);
  if (ids.size() <= k) return;
  size_t count = k;
  if (keep_ties) {
    while (count < ids.size() && row->z[ids[count]] == row->z[ids[k - 1]]) ++count;
  }
  KeepOnly(row, ids, count);
}

void TopP(Row* row, double top_p, double t, size_t min_keep, Preset preset) {
  const std::vector<double> p = Softmax(*row, t);
  std::vector<int32_t> ids = SortedDescending(*row);
  size_t count = ids.size();
  double cum = 0.0;
  if (preset == Preset::kVllm) {
    // vLLM: float32 cumulative from the least likely end, removed while <= 1 - p, with
    // 1 - p computed in float32 (p is a float32 tensor there).
    const float threshold = 1.0f - static_cast<float>(top_p);
    float cum32 = 0.0f;
    size_t removed = 0;
    for (size_t i = ids.size(); i-- > 0;) {
      cum32 += static_cast<float>(p[ids[i]]);
      if (!(cum32 <= threshold)) break;
      ++removed;
    }
    count = ids.size() - removed;
  } else if (preset == Preset::kHf) {
    // Remove from the least likely end while the ascending cumulative is <= 1 - p.
    // transformers' rule is defined in float32: cumsum of float32 probabilities,
    // compared with float32(1 - p).
    size_t removed = 0;
    float cum32 = 0.0f;
    // top_p as the decimal the caller wrote (0.8f -> 0.8), as Python would see it.
    char text[32];
    const auto end = std::to_chars(text, text + sizeof(text), static_cast<float>(top_p)).ptr;
    const float threshold = static_cast<float>(1.0 - std::strtod(std::string(text, end).c_str(), nullptr));
    for (size_t i = ids.size(); i-- > 0;) {
      cum32 += static_cast<float>(p[ids[i]]);
      if (cum32 <= threshold) {
        ++removed;
      } else {
        break;
      }
    }
    count = ids.size() - removed;
  } else {
    // STANDARD sums in double with a tolerance; llama.cpp's rule is a float sum.
    float cum32 = 0.0f;
    for (size_t i = 0; i < ids.size(); ++i) {
      cum += p[ids[i]];
      cum32 += static_cast<float>(p[ids[i]]);
      const bool reached = preset == Preset::kStandard ? cum >= top_p - kTolerance
                                                       : cum32 >= static_cast<float>(top_p);
      if (reached) {
        count = i + 1;
        break;
      }
    }
  }
  KeepOnly(row, ids, std::max(count, min_keep));
}

void MinP(Row* row, double min_p, double t, size_t min_keep, bool logit_space) {
  std::vector<int32_t> ids = SortedDescending(*row);
  const std::vector<double> p = Softmax(*row, t);
  size_t count = 0;
  for (int32_t id : ids) {
    const bool keep = logit_space ? row->z[id] >= row->z[ids[0]] + std::log(min_p)
                                  : p[id] >= min_p * p[ids[0]];
    if (keep) ++count;
  }
  KeepOnly(row, ids, std::max(count, min_keep));
}

void Typical(Row* row, double mass, double t, size_t min_keep, Preset preset) {
  const std::vector<double> p = Softmax(*row, t);
  std::vector<int32_t> ids = KeptIds(*row);
  double entropy = 0.0;
  for (int32_t id : ids) {
    if (p[id] > 0) entropy -= p[id] * std::log(p[id]);
  }
  std::vector<double> score(row->z.size(), kInf);
  for (int32_t id : ids) {
    if (p[id] > 0) score[id] = std::fabs(-std::log(p[id]) - entropy);
  }
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    if (score[a] != score[b]) return score[a] < score[b];
    return a < b;
  });
  size_t count = ids.size();
  double cum = 0.0;
  if (preset == Preset::kHf) {
    size_t last = 0;
    for (int32_t id : ids) {
      cum += p[id];
      if (cum < mass) ++last;
    }
    last = std::min(last, ids.size() - 1);
    count = last + 1;
    while (count < ids.size() && score[ids[count]] <= score[ids[last]]) ++count;
  } else {
    for (size_t i = 0; i < ids.size(); ++i) {
      cum += p[ids[i]];
      const bool reached = preset == Preset::kStandard ? cum >= mass - kTolerance : cum > mass;
      if (reached) {
        count = i + 1;
        break;
      }
    }
  }
  KeepOnly(row, ids, std::max(count, min_keep));
}

// The last n tokens of `tokens` (all of them for n = 0).
std::vector<int32_t> LastN(absl::Span<const int32_t> tokens, int32_t n) {
  size_t from = 0;
  if (n > 0 && tokens.size() > static_cast<size_t>(n)) from = tokens.size() - n;
  return std::vector<int32_t>(tokens.begin() + from, tokens.end());
}

void Dry(Row* row, const SamplingParams& params) {
  const DryParams& dry = params.dry;
  const std::vector<int32_t> w = LastN(params.context_token_ids, dry.penalty_last_n);
  const size_t n = w.size();
  if (!(dry.multiplier > 0.0f) || n <= static_cast<size_t>(dry.allowed_length)) return;
  // The repeat limit: tokens after the most recent whole breaker (the longest one there).
  int32_t limit = static_cast<int32_t>(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t at = n - 1 - i;
    int64_t longest_tail = -1;
    for (absl::Span<const int32_t> seq : dry.sequence_breakers) {
      if (at + seq.size() > n) continue;
      bool match = true;
      for (size_t j = 0; j < seq.size(); ++j) match = match && w[at + j] == seq[j];
      if (match) longest_tail = std::max<int64_t>(longest_tail, seq.size() - 1);
    }
    if (longest_tail >= 0) {
      limit = static_cast<int32_t>(i - longest_tail);
      break;
    }
  }
  if (limit < dry.allowed_length) return;
  const std::vector<int32_t> counts = ReferenceDryCounts(w, limit);
  std::map<int32_t, int32_t> longest;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (counts[i] >= dry.allowed_length) {
      longest[w[i + 1]] = std::max(longest[w[i + 1]], counts[i]);
    }
  }
  for (const auto& [t, len] : longest) {
    bool breaker = false;
    for (absl::Span<const int32_t> seq : dry.sequence_breakers) {
      breaker = breaker || (seq.size() == 1 && seq[0] == t);
    }
    if (breaker || row->z[t] == -kInf) continue;
    int32_t exponent = len - dry.allowed_length;
    if (dry.base > 1.000001f) {
      exponent = std::min(exponent, static_cast<int32_t>(88.7228391 / std::log(dry.base)));
    }
    // The penalty is computed in double and subtracted from the float logit in float.
    const float penalty =
        static_cast<float>(dry.multiplier * std::pow(static_cast<double>(dry.base), exponent));
    row->z[t] = static_cast<float>(row->z[t]) - penalty;
  }
}

void TopNSigma(Row* row, double n_sigma) {
  const std::vector<int32_t> ids = KeptIds(*row);
  if (ids.size() < 2) return;
  double max = -kInf, sum = 0.0;
  for (int32_t id : ids) {
    max = std::max(max, row->z[id]);
    sum += row->z[id];
  }
  const double mean = sum / ids.size();
  double var = 0.0;
  for (int32_t id : ids) var += (row->z[id] - mean) * (row->z[id] - mean);
  const double threshold = max - n_sigma * std::sqrt(var / ids.size());
  for (int32_t id : ids) {
    if (row->z[id] < threshold) row->kept[id] = false;
  }
}

void Xtc(Row* row, double threshold, double t, size_t min_keep) {
  const std::vector<double> p = Softmax(*row, t);
  const std::vector<int32_t> ids = SortedDescending(*row);
  size_t above = 0;
  while (above < ids.size() && p[ids[above]] >= threshold) ++above;
  if (above < 2 || ids.size() - (above - 1) < min_keep) return;
  for (size_t i = 0; i + 1 < above; ++i) row->kept[ids[i]] = false;
}

// H / ln N of softmax(z) over the kept tokens, mapped to [min_t, max_t].
double DynamicTemperature(const Row& row, const SamplingParams& params) {
  const std::vector<double> p = Softmax(row, 1.0);
  const size_t n = KeptIds(row).size();
  if (n <= 1) return params.temperature;
  double entropy = 0.0;
  for (double pi : p) {
    if (pi > 0) entropy -= pi * std::log(pi);
  }
  const double min_t =
      std::max(0.0, static_cast<double>(params.temperature) - params.dynatemp_range);
  const double max_t = static_cast<double>(params.temperature) + params.dynatemp_range;
  return min_t + (max_t - min_t) * std::pow(entropy / std::log(static_cast<double>(n)),
                                            static_cast<double>(params.dynatemp_exponent));
}

// Mirostat's cut at temperature t (v2: surprise <= mu; v1: the Zipf estimate of k).
void Mirostat(Row* row, const SamplingParams& params, double t) {
  const MirostatParams& m = params.mirostat;
  const double mu = m.mu.has_value() ? *m.mu : 2.0 * m.tau;
  const std::vector<double> p = Softmax(*row, t);
  std::vector<int32_t> ids;
  for (int32_t id : SortedDescending(*row)) {
    if (p[id] > 0) ids.push_back(id);
  }
  size_t keep = ids.size();
  if (m.version == 2) {
    keep = 0;
    while (keep < ids.size() && -std::log2(p[ids[keep]]) <= mu) ++keep;
    keep = std::max<size_t>(keep, 1);
  } else if (ids.size() > 1) {
    const size_t top = std::min<size_t>(m.m, ids.size());
    double tb = 0.0, tt = 0.0;
    for (size_t i = 0; i + 1 < top; ++i) {
      const double ti = std::log((i + 2.0) / (i + 1.0));
      tb += ti * std::log(p[ids[i]] / p[ids[i + 1]]);
      tt += ti * ti;
    }
    const double s = tb / tt;
    const double k = std::pow(
        (s - 1) * std::exp2(mu) / (1 - std::pow(static_cast<double>(row->z.size()), 1 - s)), 1 / s);
    if (k < static_cast<double>(ids.size())) keep = std::max<size_t>(1, static_cast<size_t>(k));
  }
  KeepOnly(row, ids, keep);
}

std::vector<double> OneHot(const Row& row) {
  std::vector<double> one_hot(row.z.size(), 0.0);
  one_hot[SortedDescending(row)[0]] = 1.0;
  return one_hot;
}

}  // namespace

std::vector<int32_t> ReferenceDryCounts(const std::vector<int32_t>& window, int32_t limit) {
  const size_t n = window.size();
  std::vector<int32_t> counts(n, 0);
  for (size_t i = 0; i + 1 < n; ++i) {
    // The longest m <= i + 1 with window[i - m + 1 .. i] == window[n - m .. n - 1].
    size_t m = 0;
    while (m < i + 1 && window[i - m] == window[n - 1 - m]) ++m;
    counts[i] = std::min(static_cast<int32_t>(m), limit);
  }
  return counts;
}

std::vector<double> ReferenceDistribution(const std::vector<float>& logits,
                                          const SamplingParams& params, double xtc_coin) {
  const size_t v = logits.size();
  Row row;
  row.z.assign(logits.begin(), logits.end());
  // Masks and bias.
  if (!params.allowed_token_ids.empty()) {
    std::vector<bool> allowed(v, false);
    for (int32_t id : params.allowed_token_ids) allowed[id] = true;
    for (size_t i = 0; i < v; ++i) {
      if (!allowed[i]) row.z[i] = -kInf;
    }
  }
  if (!params.allowed_token_bitmask.empty()) {
    for (size_t i = 0; i < v; ++i) {
      const uint8_t byte = params.allowed_token_bitmask.data[i / 8];
      if (((byte >> (i % 8)) & 1) == 0) row.z[i] = -kInf;
    }
  }
  for (int32_t id : params.banned_token_ids) row.z[id] = -kInf;
  // The output: the context after the prompt.
  const size_t prompt = std::min(params.num_prompt_tokens, params.context_token_ids.size());
  const std::vector<int32_t> output(params.context_token_ids.begin() + prompt,
                                    params.context_token_ids.end());
  // Bad words: each sequence's first L - 1 tokens against the output's last L - 1.
  for (const auto& word : params.bad_words) {
    const size_t l = word.size();
    bool match = l - 1 <= output.size();
    for (size_t j = 0; match && j + 1 < l; ++j) {
      match = word[j] == output[output.size() - (l - 1) + j];
    }
    if (match) row.z[word[l - 1]] = -kInf;
  }
  // no_repeat_ngram over the output: every n-gram as (first n - 1 tokens) -> last token.
  const size_t ngram = static_cast<size_t>(std::max(params.no_repeat_ngram_size, 0));
  if (ngram > 0 && output.size() + 1 >= ngram) {
    const std::vector<int32_t> tail(output.end() - (ngram - 1), output.end());
    for (size_t i = 0; i + ngram <= output.size(); ++i) {
      if (std::equal(tail.begin(), tail.end(), output.begin() + i)) {
        row.z[output[i + ngram - 1]] = -kInf;
      }
    }
  }
  if (params.min_tokens > 0 && output.size() < static_cast<size_t>(params.min_tokens)) {
    for (int32_t id : params.stop_token_ids) row.z[id] = -kInf;
  }
  const Preset preset = params.preset;
  const bool vllm = preset == Preset::kVllm;
  for (const LogitBias& b : params.logit_bias) {
    row.z[b.token_id] += vllm ? std::min(100.0, std::max(-100.0, static_cast<double>(b.bias)))
                              : b.bias;
  }
  // Penalties: repetition once per distinct token, then presence once and frequency
  // times the count; vLLM counts presence and frequency in the output only.
  std::map<int32_t, int> counts;
  for (int32_t id : LastN(params.context_token_ids, params.penalty_last_n)) ++counts[id];
  std::map<int32_t, int> output_counts;
  for (int32_t id : output) ++output_counts[id];
  const double rep = params.repetition_penalty;
  for (const auto& [id, count] : counts) {
    double& z = row.z[id];
    if (z == -kInf) continue;
    if (rep != 1.0 && rep != 0.0) z = z < 0 ? z * rep : z / rep;
    if (!vllm) {
      z -= params.presence_penalty + static_cast<double>(params.frequency_penalty) * count;
    } else if (output_counts.count(id) > 0) {
      z -= params.presence_penalty +
           static_cast<double>(params.frequency_penalty) * output_counts[id];
    }
    z = static_cast<float>(z);  // the penalised logit is stored as a float
  }
  Dry(&row, params);
  row.kept.assign(v, false);
  for (size_t i = 0; i < v; ++i) row.kept[i] = row.z[i] > -kInf;
  if (params.top_n_sigma > 0.0f) TopNSigma(&row, params.top_n_sigma);

  const size_t min_keep = static_cast<size_t>(params.min_tokens_to_keep);
  double t = vllm && params.temperature < 1e-5f ? 0.0 : params.temperature;
  const bool dynatemp = params.dynatemp_range > 0.0f;
  const bool xtc = params.xtc_probability > 0.0f && xtc_coin < params.xtc_probability;
  if (params.mirostat.version > 0) {
    if (dynatemp) t = DynamicTemperature(row, params);
    if (t == 0.0) return OneHot(row);
    Mirostat(&row, params, t);
    return Softmax(row, t);
  }
  if (preset != Preset::kLlamaCpp) {
    if (dynatemp) t = DynamicTemperature(row, params);
    if (t == 0.0) return OneHot(row);
  }
  const size_t k = std::max(static_cast<size_t>(params.top_k), min_keep);
  if (preset == Preset::kLlamaCpp) {
    if (params.top_k > 0) TopK(&row, k, false);
    if (params.typical_p < 1.0f) Typical(&row, params.typical_p, 1.0, min_keep, preset);
    if (params.top_p < 1.0f) TopP(&row, params.top_p, 1.0, min_keep, preset);
    if (params.min_p > 0.0f) MinP(&row, params.min_p, 1.0, min_keep, true);
    if (xtc) Xtc(&row, params.xtc_threshold, 1.0, min_keep);
    if (dynatemp) t = DynamicTemperature(row, params);
    if (t == 0.0) return OneHot(row);
  } else if (vllm) {
    if (params.min_p > 0.0f) MinP(&row, params.min_p, t, min_keep, false);
    if (params.top_k > 0) TopK(&row, k, true);
    if (params.top_p < 1.0f) TopP(&row, params.top_p, t, min_keep, preset);
  } else {
    const bool hf = preset == Preset::kHf;
    if (params.top_k > 0) TopK(&row, k, hf);
    if (params.top_p < 1.0f) TopP(&row, params.top_p, t, min_keep, preset);
    if (params.min_p > 0.0f) MinP(&row, params.min_p, t, min_keep, false);
    if (params.typical_p < 1.0f) Typical(&row, params.typical_p, t, min_keep, preset);
    if (xtc) Xtc(&row, params.xtc_threshold, t, min_keep);
  }
  return Softmax(row, t);
}

std::vector<double> ReferenceLogSoftmax(const std::vector<float>& logits) {
  double max = -kInf;
  for (float z : logits) max = std::max(max, static_cast<double>(z));
  double sum = 0.0;
  for (float z : logits) sum += std::exp(z - max);
  std::vector<double> out;
  for (float z : logits) out.push_back(z - max - std::log(sum));
  return out;
}

int32_t ReferencePick(const std::vector<double>& probs, double u) {
  double total = 0.0;
  for (double p : probs) total += p;
  double cum = 0.0;
  int32_t last = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] > 0) {
      cum += probs[i];
      last = static_cast<int32_t>(i);
      if (cum > u * total) return last;
    }
  }
  return last;
}

}  // namespace tokensampler::sampler::testing
