#include "sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "hwy/targets.h"
#include "sampler/dist_sort.h"
#include "sampler/kernels.h"
#include "sampler/processed_distribution.h"
#include "sampler/stages/dry.h"
#include "sampler/stages/dynatemp.h"
#include "sampler/stages/mirostat.h"
#include "sampler/stages/bitmask.h"
#include "sampler/stages/stages.h"
#include "sampler/stages/top_n_sigma.h"
#include "sampler/stages/xtc.h"
#include "sampler/workspace.h"

namespace tokensampler::sampler {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

bool CutsBesidesXtc(const SamplingParams& p) {
  return p.top_k > 0 || p.top_p < 1.0f || p.min_p > 0.0f || p.typical_p < 1.0f;
}

bool AnyTruncation(const SamplingParams& p) {
  return CutsBesidesXtc(p) || p.xtc_probability > 0.0f;
}

size_t MinKeep(const SamplingParams& p) { return static_cast<size_t>(p.min_tokens_to_keep); }

// The k top-k keeps: top_k, raised to min_tokens_to_keep.
size_t TopKCount(const SamplingParams& p) {
  return std::max(static_cast<size_t>(p.top_k), MinKeep(p));
}

// The pipeline starts with STANDARD top-k on the logits as given (TopKByLogits): after
// its candidate scan, no stage reads a logit outside the candidates.
// The dynamic temperature reads every logit (its entropy) before top-k.
bool TopKFirst(const SamplingParams& p, size_t vocab) {
  return p.preset == Preset::kStandard && p.temperature > 0.0f && p.top_k > 0 &&
         2 * TopKCount(p) < vocab && !stages::ModifiesLogits(p) && p.dynatemp_range == 0.0f;
}

// total = ExpSum over the row into w, with block_sums filled in the same pass.
double ExpSumWithBlocks(Workspace& ws, float max, float temperature) {
  ws.block_sums.resize((ws.vocab + kernels::kDrawBlock - 1) / kernels::kDrawBlock);
  return kernels::ExpSumBlocks(ws.z, ws.vocab, max, temperature, ws.w.data(),
                               ws.block_sums.data());
}

}  // namespace

// The Sampler's state: the stages' workspace, the finished distribution, and what RAW
// logprobs need.
struct Sampler::Impl {
  Workspace ws;
  ProcessedDistribution dist;
  ProcessedDistribution::DrawTable draw_table;
  DistributionSorter dist_sorter;  // Distribution's final order
  std::vector<int32_t> tokens;     // Sample's draws

  // RAW logprobs (valid when Process was asked for them): the untouched logits are
  // raw_z, or, when it is null, the caller's row raw_row itself (read element by element;
  // Process decoded none of it, or only top-k candidates).
  std::vector<float> raw;  // decoded logits kept for RAW logprobs when a stage edits z
  const float* raw_z = nullptr;
  LogitsView raw_row;
  double raw_lse = 0.0;
  float RawLogit(int32_t id) const {
    return raw_z != nullptr ? raw_z[id] : kernels::ElementOf(raw_row, static_cast<size_t>(id));
  }

  uint64_t step = 0;  // the row's decoding step (XTC's coin), set before Process

  absl::Status Process(const LogitsView& logits, const SamplingParams& params, bool need_raw);
  // The stages after masks and penalties, on z with maximum `max`.
  void RunStages(const SamplingParams& params, float max);
  // Mirostat's chain after masks and penalties: temperature -> mirostat cut.
  void RunMirostat(const SamplingParams& params, float max);
  bool MirostatV1ByTopK(const SamplingParams& params, float max, float temperature, float mu);
  // The dynamic temperature's T becomes the distribution's (PROCESSED_LOGITS divide by it).
  float UseTemperature(float temperature) {
    if (temperature > 0.0f) processed_temperature = temperature;
    return temperature;
  }
  // Dynamic temperature over every token not masked (STANDARD: it is the temperature).
  float RowDynamicTemperature(const SamplingParams& params, float max);
  // Dynamic temperature over the survivors ids[0, n), weights at T = 1 (LLAMA_CPP).
  float SurvivorDynamicTemperature(const SamplingParams& params, float max);
  void RawTopLogprobs(int32_t count, std::vector<TokenLogprob>* out);

  // `params`, or for VLLM below kVllmGreedyTemperature a copy with temperature 0.
  SamplingParams vllm_greedy;
  const SamplingParams& Effective(const SamplingParams& params);
  float processed_temperature = 1.0f;  // the distribution's T (1 when greedy)
  // The caller's row decoded (into `raw` on first use).
  const float* RawRow();
  // Token `id`'s value under `mode`: what Sample.logprob and token_logprobs report.
  float ValueOf(int32_t id, LogprobsMode mode);
  // The `count` alternatives with their values under `mode`: Sample.top_logprobs.
  void TopValues(int32_t count, LogprobsMode mode, std::vector<TokenLogprob>* out);
  // The number of tokens whose value under `mode` is >= token's, itself included.
  int32_t Rank(int32_t token, LogprobsMode mode);
  // The support (p > 0) as a bitmask (stages/bitmask.h layout).
  void KeptSet(std::string* out) const;
};

const SamplingParams& Sampler::Impl::Effective(const SamplingParams& params) {
  if (params.preset != Preset::kVllm || params.temperature >= kVllmGreedyTemperature ||
      params.temperature == 0.0f) {
    return params;
  }
  vllm_greedy = params;
  vllm_greedy.temperature = 0.0f;
  return vllm_greedy;
}

absl::Status Sampler::Impl::Process(const LogitsView& logits, const SamplingParams& requested,
                                    bool need_raw) {
  absl::Status status = ValidateParams(requested, logits.size);
  if (!status.ok()) return status;
  const SamplingParams& params = Effective(requested);
  processed_temperature = params.temperature == 0.0f ? 1.0f : params.temperature;
  ws.z = nullptr;
  if (logits.data == nullptr) return Invalid("logits: data is null");
  if (logits.dtype != Dtype::kFloat32 && logits.dtype != Dtype::kBFloat16 &&
      logits.dtype != Dtype::kFloat16) {
    return Invalid(absl::StrCat("logits: unknown dtype ", static_cast<int>(logits.dtype)));
  }
  const size_t vocab = logits.size;
  ws.vocab = vocab;
  const bool modifies = stages::ModifiesLogits(params);
  if (params.temperature == 0.0f && !modifies && params.dynatemp_range == 0.0f &&
      (params.preset != Preset::kLlamaCpp || !AnyTruncation(params))) {
    // Greedy with nothing to apply first: one argmax pass over the caller's row, no
    // decoded copy; RAW logprobs add one exp pass over the row in place. A bad element
    // falls through to the regular path, which names it.
    size_t best = 0;
    float best_value = 0.0f;
    if (kernels::DecodeArgmax(logits, &best, &best_value) < 0) {
      if (best_value == -kInf) return Invalid("logits: every token is masked");
      dist.SetOneHot(vocab, static_cast<int32_t>(best));
      raw_z = nullptr;
      raw_row = logits;
      if (need_raw) {
        raw_lse = best_value + std::log(kernels::ExpSumTotal(logits, best_value, 1.0f));
      }
      return absl::OkStatus();
    }
  }
  ws.w.resize(vocab);
  float max = 0.0f;
  int64_t bad;
  ws.prescanned = 0;
  bool z_sparse = false;  // z_buf holds only the top-k candidates
  if (logits.dtype != Dtype::kFloat32 && TopKFirst(params, vocab)) {
    // A 16-bit row that top-k cuts first: its candidate scan reads the row in place and
    // checks it, and only the candidates are decoded, into z_buf at their ids; the row's
    // maximum is theirs. No stage reads another logit (TopKFirst); RAW logprobs read
    // the caller's row (raw_row).
    size_t count = 0;
    bad = stages::TopKScan(ws, TopKCount(params), &logits, &count);
    ws.z_buf.resize(vocab);
    ws.z = ws.z_buf.data();
    max = -kInf;
    for (size_t j = 0; bad < 0 && j < count; ++j) {
      const float v = kernels::ElementOf(logits, ws.ids[j]);
      ws.z_buf[ws.ids[j]] = v;
      max = v > max ? v : max;
    }
    ws.prescanned = count;
    z_sparse = true;
  } else if (logits.dtype == Dtype::kFloat32 && !modifies &&
             reinterpret_cast<uintptr_t>(logits.data) % alignof(float) == 0) {
    // Nothing will modify the logits: read the caller's row in place, no decoded copy.
    ws.z = static_cast<const float*>(logits.data);
    bad = kernels::MaxChecked(ws.z, vocab, &max);
  } else {
    ws.z_buf.resize(vocab);
    ws.z = ws.z_buf.data();
    bad = kernels::DecodeAndMax(logits, ws.z_buf.data(), &max);
  }
  if (bad >= 0) {
    // The decode pass stops at a bad element without storing it; read it here.
    const float value = kernels::ElementOf(logits, static_cast<size_t>(bad));
    return Invalid(
        absl::StrCat("logits[", bad, "]: must not be ", std::isnan(value) ? "NaN" : "+inf"));
  }
  if (max == -kInf) return Invalid("logits: every token is masked");
  raw_z = z_sparse ? nullptr : ws.z;
  raw_row = logits;
  if (need_raw && modifies) {
    raw_lse = max + std::log(kernels::ExpSumTotal(ws.z, vocab, max, 1.0f));
    raw.resize(vocab);
    std::memcpy(raw.data(), ws.z, vocab * sizeof(float));
    raw_z = raw.data();
  }
  if (modifies) {
    status = stages::ApplyMasksAndPenalties(ws, params);
    if (!status.ok()) return status;
    // DRY with the penalties, then top-n-sigma on the logits (sampler/stages/).
    const absl::Span<float> row(ws.z_buf.data(), vocab);
    ApplyDry(params.context_token_ids, params.dry, row, &ws.dry);
    if (params.top_n_sigma > 0.0f) ApplyTopNSigma(row, params.top_n_sigma);
    max = kernels::Max(ws.z, vocab);
    if (max == -kInf) return Invalid("logits: every token is masked");
  }
  ws.unit_sum = -1.0;
  RunStages(params, max);
  if (need_raw && !modifies) {
    // The logits are untouched: a T = 1 pass of the pipeline already summed exp(z - max),
    // else sum it over the caller's row (the same values as z; a 16-bit row is half the
    // bytes).
    if (ws.unit_sum < 0.0) ws.unit_sum = kernels::ExpSumTotal(logits, max, 1.0f);
    raw_lse = max + std::log(ws.unit_sum);
  }
  return absl::OkStatus();
}

void Sampler::Impl::RunStages(const SamplingParams& params, float max) {
  const size_t vocab = ws.vocab;
  if (params.mirostat.version > 0) {
    RunMirostat(params, max);
    return;
  }
  ws.xtc_fires = params.xtc_probability > 0.0f &&
                 XtcCoin(params.seed, step) < static_cast<double>(params.xtc_probability);
  const bool truncates = CutsBesidesXtc(params) || ws.xtc_fires;
  const bool dynatemp = params.dynatemp_range > 0.0f;
  float temperature = params.temperature;
  const size_t k = TopKCount(params);
  ws.top_p_done = false;

  if (params.preset == Preset::kLlamaCpp) {
    // Truncations on softmax(z) (T = 1), temperature last.
    if (!truncates && !dynatemp) {
      if (temperature == 0.0f) {
        dist.SetOneHot(vocab, static_cast<int32_t>(kernels::Argmax(ws.z, vocab)));
        return;
      }
      const double total = ExpSumWithBlocks(ws, max, temperature);
      if (temperature == 1.0f) ws.unit_sum = total;
      dist.SetDense(vocab, &ws.w, total, &ws.block_sums);
      return;
    }
    ws.unit_sum = kernels::ExpSum(ws.z, vocab, max, 1.0f, ws.w.data());
    if (params.top_k > 0 && 2 * k < vocab) {
      stages::CollectTopK(ws, k, /*by_weight=*/false, /*keep_ties=*/false);
    } else {
      Collect(ws, /*by_weight=*/false);
      if (params.top_k > 0) KeepTop(ws, k);
    }
    stages::RunChain(ws, params);
    int32_t best = ws.ids[0];
    for (size_t i = 1; i < ws.n; ++i) {
      if (ws.Before(ws.ids[i], best)) best = ws.ids[i];
    }
    if (dynatemp) temperature = SurvivorDynamicTemperature(params, max);
    if (temperature == 0.0f) {
      dist.SetOneHot(vocab, best);
      return;
    }
    const float survivor_max = ws.z[best];
    for (size_t i = 0; i < ws.n; ++i) {
      // The kernels' exp, not libm's: the same bits on every machine.
      const int32_t id = ws.ids[i];
      ws.w[id] = kernels::ExpNonPositive((ws.z[id] - survivor_max) / temperature);
    }
    stages::Finalize(ws, &dist);
    return;
  }

  if (dynatemp) temperature = RowDynamicTemperature(params, max);
  if (temperature == 0.0f) {
    dist.SetOneHot(vocab, static_cast<int32_t>(kernels::Argmax(ws.z, vocab)));
    return;
  }
  const bool hf = params.preset == Preset::kHf;
  const bool vllm = params.preset == Preset::kVllm;
  // VLLM cuts min-p before top-k: then its chain runs top-k.
  const bool top_k_here = params.top_k > 0 && !(vllm && params.min_p > 0.0f);
  if (top_k_here && 2 * k < vocab) {
    // No exp over V: the later stages renormalise over the survivors anyway.
    stages::TopKByLogits(ws, k, /*keep_ties=*/hf || vllm, max, temperature);
  } else {
    // Block sums serve the dense draw and the exact mass of top-p by threshold.
    const bool by_threshold =
        params.preset == Preset::kStandard && params.top_k == 0 && params.top_p < 1.0f;
    // XTC alone cuts the dense row in place (a few tokens at most), no candidate list.
    const bool xtc_only = ws.xtc_fires && !CutsBesidesXtc(params);
    ws.total = !truncates || by_threshold || xtc_only
                   ? ExpSumWithBlocks(ws, max, temperature)
                   : kernels::ExpSum(ws.z, vocab, max, temperature, ws.w.data());
    if (temperature == 1.0f) ws.unit_sum = ws.total;
    if (!truncates) {
      dist.SetDense(vocab, &ws.w, ws.total, &ws.block_sums);
      return;
    }
    if (xtc_only) {
      if (XtcDense(absl::MakeSpan(ws.w.data(), vocab), ws.z, ws.total, params.xtc_threshold,
                   MinKeep(params), &ws.xtc_above) == 0) {
        dist.SetDense(vocab, &ws.w, ws.total, &ws.block_sums);
      } else {
        dist.SetDense(vocab, &ws.w, kernels::Sum(ws.w.data(), vocab), nullptr);
      }
      return;
    }
    if (by_threshold &&
        stages::TopPByThreshold(ws, params.top_p, MinKeep(params), max, temperature)) {
      ws.top_p_done = true;
    } else {
      Collect(ws, /*by_weight=*/true);
    }
    if (top_k_here) {
      if (hf || vllm) {
        stages::TopKHf(ws, k);
      } else {
        KeepTop(ws, k);
      }
    }
  }
  stages::RunChain(ws, params);
  stages::Finalize(ws, &dist);
}

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

void Sampler::Impl::RawTopLogprobs(int32_t count, std::vector<TokenLogprob>* out) {
  out->clear();
  if (count <= 0) return;
  const size_t vocab = ws.vocab;
  const size_t want = std::min(static_cast<size_t>(count), vocab);
  RawRow();
  // (logit, id) in out's fields, best first; scanning ids in ascending order and
  // inserting only strictly better values breaks ties by id.
  for (size_t i = 0; i < vocab; ++i) {
    const float value = raw_z[i];
    if (out->size() == want && !(value > out->back().logprob)) continue;
    auto pos = out->end();
    while (pos != out->begin() && value > (pos - 1)->logprob) --pos;
    if (out->size() == want) out->pop_back();
    out->insert(pos, TokenLogprob{static_cast<int32_t>(i), value});
  }
  for (TokenLogprob& t : *out) {
    t.logprob = static_cast<float>(static_cast<double>(t.logprob) - raw_lse);
  }
}

const float* Sampler::Impl::RawRow() {
  if (raw_z == nullptr) {
    // Scan a decoded copy of the caller's row rather than decode element by element.
    raw.resize(ws.vocab);
    float ignored;
    kernels::DecodeAndMax(raw_row, raw.data(), &ignored);
    raw_z = raw.data();
  }
  return raw_z;
}

float Sampler::Impl::ValueOf(int32_t id, LogprobsMode mode) {
  switch (mode) {
    case LogprobsMode::kRaw:
      return static_cast<float>(static_cast<double>(RawLogit(id)) - raw_lse);
    case LogprobsMode::kRawLogits:
      return RawLogit(id);
    case LogprobsMode::kProcessed:
      if (dist.one_hot()) return id == dist.token() ? 0.0f : -kInf;
      return static_cast<float>(std::log(static_cast<double>(dist.Prob(id))));
    case LogprobsMode::kProcessedLogits:
    default: {
      if (dist.Prob(id) == 0.0f) return -kInf;
      // Greedy's fast path reads the caller's row and sets no z: the logit is the raw one.
      const float logit = ws.z != nullptr ? ws.z[id] : RawLogit(id);
      return dist.one_hot() ? logit : logit / processed_temperature;
    }
  }
}

void Sampler::Impl::TopValues(int32_t count, LogprobsMode mode, std::vector<TokenLogprob>* out) {
  if (mode == LogprobsMode::kRaw || mode == LogprobsMode::kRawLogits) {
    RawTopLogprobs(count, out);
  } else {
    dist.TopLogprobs(count, out);
  }
  if (mode == LogprobsMode::kRawLogits || mode == LogprobsMode::kProcessedLogits) {
    for (TokenLogprob& t : *out) t.logprob = ValueOf(t.token_id, mode);
  }
}

int32_t Sampler::Impl::Rank(int32_t id, LogprobsMode mode) {
  int32_t count = 0;
  if (mode == LogprobsMode::kRaw || mode == LogprobsMode::kRawLogits) {
    // The raw logprob order is the raw logit order: one counting pass over the row.
    const float* row = RawRow();
    const float v = row[id];
    for (size_t i = 0; i < ws.vocab; ++i) count += row[i] >= v;
    return count;
  }
  if (dist.one_hot()) return 1;
  // Processed: only the support can tie or beat a drawn token (p > 0).
  const bool by_logit = mode == LogprobsMode::kProcessedLogits;
  const float v = by_logit ? ValueOf(id, mode) : dist.Prob(id);
  const absl::Span<const float> weights = dist.weights();
  const double total = dist.total();  // a local: the loop keeps 1 / total in a register
  for (size_t i = 0; i < weights.size(); ++i) {
    const float p = kernels::ProbOf(weights[i], total);
    if (p > 0.0f) {
      count += (by_logit ? ws.z[dist.id_at(i)] / processed_temperature : p) >= v;
    }
  }
  return count;
}

void Sampler::Impl::KeptSet(std::string* out) const {
  out->assign(stages::BitmaskBytes(ws.vocab), '\0');
  uint8_t* bits = reinterpret_cast<uint8_t*>(&(*out)[0]);
  if (dist.one_hot()) {
    stages::BitmaskSet(bits, static_cast<size_t>(dist.token()));
    return;
  }
  // Entry by entry with the probability inline (ProbOf, the bits Prob gives): one pass.
  const absl::Span<const float> weights = dist.weights();
  const double total = dist.total();
  for (size_t i = 0; i < weights.size(); ++i) {
    if (kernels::ProbOf(weights[i], total) > 0.0f) {
      stages::BitmaskSet(bits, static_cast<size_t>(dist.id_at(i)));
    }
  }
}

Sampler::Sampler() : impl_(std::make_unique<Impl>()) {}
Sampler::~Sampler() = default;

absl::Status Sampler::Sample(LogitsView logits, const SamplingParams& params, uint64_t step,
                             SampleResult* out) {
  Impl& s = *impl_;
  const LogprobsMode mode = params.logprobs_mode;
  const bool raw_mode = mode == LogprobsMode::kRaw || mode == LogprobsMode::kRawLogits;
  s.step = step;
  absl::Status status = s.Process(logits, params, raw_mode);
  if (!status.ok()) return status;
  const size_t count = static_cast<size_t>(params.num_samples);
  out->samples.resize(count);
  s.tokens.resize(count);
  s.dist.Draws(params.seed, step, absl::MakeSpan(s.tokens), &s.draw_table);
  std::vector<TokenLogprob>& top = out->samples[0].top_logprobs;
  s.TopValues(params.top_logprobs, mode, &top);
  std::vector<TokenLogprob>& asked = out->samples[0].token_logprobs;
  asked.clear();
  for (int32_t id : params.logprob_token_ids) asked.push_back({id, s.ValueOf(id, mode)});
  // The rank comes with the logprobs (vLLM's rule): it costs a counting pass.
  const bool ranks = params.top_logprobs > 0 || !params.logprob_token_ids.empty();
  for (size_t i = 0; i < count; ++i) {
    ::tokensampler::sampler::Sample& sample = out->samples[i];
    if (i > 0) {
      sample.top_logprobs = top;
      sample.token_logprobs = asked;
    }
    const int32_t id = s.tokens[i];
    sample.token_id = id;
    sample.logprob = s.ValueOf(id, mode);
    // Draws of one row often repeat a token: its rank is counted once.
    const bool repeat = i > 0 && id == s.tokens[i - 1];
    sample.rank = !ranks ? 0 : repeat ? out->samples[i - 1].rank : s.Rank(id, mode);
  }
  if (params.return_kept_set) {
    s.KeptSet(&out->kept_set);
  } else {
    out->kept_set.clear();
  }
  out->mirostat_mu.reset();
  if (params.mirostat.version > 0) {
    // The state moves with sample index 0's token, by its final probability.
    const double p = s.dist.one_hot() ? 1.0 : s.dist.Prob(s.tokens[0]);
    out->mirostat_mu = MirostatUpdate(params.mirostat, MirostatMu(params.mirostat), p);
  }
  return absl::OkStatus();
}

absl::Status Sampler::Distribution(LogitsView logits, const SamplingParams& params,
                                   DistributionResult* out) {
  return Distribution(logits, params, /*step=*/0, out);
}

absl::Status Sampler::Distribution(LogitsView logits, const SamplingParams& params,
                                   uint64_t step, DistributionResult* out) {
  Impl& s = *impl_;
  s.step = step;
  absl::Status status = s.Process(logits, params, /*need_raw=*/false);
  if (!status.ok()) return status;
  if (s.dist.one_hot()) {
    out->token_ids.assign(1, s.dist.token());
    out->probs.assign(1, 1.0f);
    return absl::OkStatus();
  }
  // In place: the weights become the probabilities (nothing else reads them, and the
  // row stays in cache). The sort resizes the answer's vectors and writes every entry:
  // not clearing them first saves zero-filling a reused result's V entries.
  s.dist.NormaliseInPlace();
  const absl::Span<const float> probs = s.dist.weights();
  s.dist_sorter.Sort(probs.data(), s.dist.dense() ? nullptr : s.dist.ids().data(),
                     probs.size(), &out->token_ids, &out->probs);
  return absl::OkStatus();
}

absl::StatusOr<const ProcessedDistribution*> Sampler::Process(LogitsView logits,
                                                              const SamplingParams& params,
                                                              uint64_t step,
                                                              bool raw_logprobs) {
  impl_->step = step;
  absl::Status status = impl_->Process(logits, params, raw_logprobs);
  if (!status.ok()) return status;
  return &impl_->dist;
}

float Sampler::ValueOf(int32_t id, LogprobsMode mode) { return impl_->ValueOf(id, mode); }

void Sampler::TopValues(int32_t count, LogprobsMode mode, std::vector<TokenLogprob>* out) {
  impl_->TopValues(count, mode, out);
}

const char* SimdTargetName() { return hwy::TargetName(kernels::DispatchedTarget()); }

}  // namespace tokensampler::sampler
