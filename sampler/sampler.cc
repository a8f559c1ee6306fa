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
#include "sampler/sampler_impl.h"
#include "sampler/stages/bitmask.h"
#include "sampler/stages/dry.h"
#include "sampler/stages/dynatemp.h"
#include "sampler/stages/mirostat.h"
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
         2 * TopKCount(p) < vocab && !stages::EditsLogits(p) && p.dynatemp_range == 0.0f;
}

// RunStages cuts top-k first, from the logits (TopKByLogits), for a sampled row.
bool TopKByLogitsFirst(const SamplingParams& p, size_t vocab) {
  return p.preset != Preset::kLlamaCpp && p.mirostat.version == 0 && p.top_k > 0 &&
         2 * TopKCount(p) < vocab && !(p.preset == Preset::kVllm && p.min_p > 0.0f);
}

// The sampled chains that read the whole row only through kernels taking a bitmask
// (kernels.h): top-k first from the logits (its scan; HF's and VLLM's ties with the k-th
// test the mask), or the whole row at T with no cut (the exp-sum pass). A float32 row
// with a bitmask and no other edit is read in place on these chains, the mask applied as
// the row is read; the other chains read the masked row that the decode pass writes.
bool ReadsBitmaskInPlace(const SamplingParams& p, size_t vocab) {
  if (p.temperature == 0.0f || p.dynatemp_range != 0.0f) return false;
  return TopKByLogitsFirst(p, vocab) ||
         (p.preset != Preset::kLlamaCpp && p.mirostat.version == 0 && !AnyTruncation(p));
}

// total = ExpSum over the row (masked by ws.bitmask, if any) into w, with block_sums
// filled in the same pass.
double ExpSumWithBlocks(Workspace& ws, float max, float temperature) {
  ws.block_sums.resize((ws.vocab + kernels::kDrawBlock - 1) / kernels::kDrawBlock);
  return kernels::ExpSumBlocks(ws.z, ws.vocab, max, temperature, ws.w.data(), ws.block_sums.data(),
                               ws.bitmask);
}

// The maximum logit of the candidates ids[0, count) (-inf if none).
float CandidateMax(const Workspace& ws, size_t count) {
  float max = -kInf;
  for (size_t j = 0; j < count; ++j) max = std::max(max, ws.z[ws.ids[j]]);
  return max;
}

// The rank comes with the logprobs (vLLM's rule): it costs a counting pass.
bool WantsRank(const SamplingParams& params) {
  return params.top_logprobs > 0 || !params.logprob_token_ids.empty();
}

}  // namespace

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
  ws.bitmask = nullptr;
  // The token bitmask is applied by the first pass over the row, whichever it is (the
  // argmax, the check, the decode or the top-k scan): never a pass of its own.
  const uint8_t* bitmask =
      params.allowed_token_bitmask.empty() ? nullptr : params.allowed_token_bitmask.data;
  const bool edits = stages::EditsLogits(params);
  if (params.temperature == 0.0f && !edits && params.dynatemp_range == 0.0f &&
      (params.preset != Preset::kLlamaCpp || !AnyTruncation(params))) {
    // Greedy with nothing to apply first: one argmax pass over the caller's row, no
    // decoded copy; RAW logprobs add one exp pass over the row in place (and, with a
    // bitmask, a max pass: the exp is over the row as given). A bad element falls
    // through to the regular path, which names it.
    size_t best = 0;
    float best_value = 0.0f;
    if (kernels::DecodeArgmax(logits, &best, &best_value, bitmask) < 0) {
      if (best_value == -kInf) return Invalid("logits: every token is masked");
      dist.SetOneHot(vocab, static_cast<int32_t>(best));
      raw_z = nullptr;
      raw_row = logits;
      if (need_raw) {
        float top = best_value;
        if (bitmask != nullptr) kernels::DecodeAndMax(logits, nullptr, &top);
        raw_lse = top + std::log(kernels::ExpSumTotal(logits, top, 1.0f));
      }
      return absl::OkStatus();
    }
  }
  ws.w.resize(vocab);
  float max = 0.0f;
  float raw_max = 0.0f;  // need_raw: the maximum of the row as given, when raw_max_known
  float* const raw_max_out = need_raw ? &raw_max : nullptr;
  bool raw_max_known = true;
  int64_t bad;
  ws.prescanned = 0;
  bool z_sparse = false;  // z_buf holds only the top-k candidates
  if (logits.dtype != Dtype::kFloat32 && TopKFirst(params, vocab)) {
    // A 16-bit row that top-k cuts first: its candidate scan reads the row in place and
    // checks it (the bitmask applied to the lanes that beat its bar), and only the
    // candidates are decoded, into z_buf at their ids; the row's maximum is theirs. No
    // stage reads another logit (TopKFirst); RAW logprobs read the caller's row (raw_row).
    ws.bitmask = bitmask;
    size_t count = 0;
    bad = stages::TopKScan(ws, TopKCount(params), &logits, &count);
    ws.z_buf.resize(vocab);
    ws.z = ws.z_buf.data();
    for (size_t j = 0; bad < 0 && j < count; ++j) {
      ws.z_buf[ws.ids[j]] = kernels::ElementOf(logits, ws.ids[j]);
    }
    max = bad < 0 ? CandidateMax(ws, count) : -kInf;
    raw_max = max;
    raw_max_known = bitmask == nullptr;
    ws.prescanned = count;
    z_sparse = true;
  } else if (logits.dtype == Dtype::kFloat32 && !edits &&
             reinterpret_cast<uintptr_t>(logits.data) % alignof(float) == 0 &&
             (bitmask == nullptr || ReadsBitmaskInPlace(params, vocab))) {
    // Nothing will edit the logits: read the caller's row in place, no decoded copy; a
    // bitmask is applied by the kernels that read it (ws.bitmask).
    ws.z = static_cast<const float*>(logits.data);
    ws.bitmask = bitmask;
    if (bitmask != nullptr && TopKByLogitsFirst(params, vocab)) {
      // The check of every logit, then the masked candidate scan (RunStages' own, done
      // here): the maximum of the allowed tokens is the candidates'.
      bad = kernels::MaxChecked(ws.z, vocab, &raw_max);
      size_t count = 0;
      if (bad < 0) stages::TopKScan(ws, TopKCount(params), nullptr, &count);
      max = CandidateMax(ws, count);
      ws.prescanned = count;
    } else {
      bad = kernels::MaxChecked(ws.z, vocab, &max, bitmask, raw_max_out);
    }
  } else {
    // Decoded into z_buf, the bitmask applied in the same pass.
    ws.z_buf.resize(vocab);
    ws.z = ws.z_buf.data();
    bad = kernels::DecodeAndMax(logits, ws.z_buf.data(), &max, bitmask, raw_max_out);
  }
  if (bad >= 0) {
    // The decode pass stops at a bad element without storing it; read it here.
    const float value = kernels::ElementOf(logits, static_cast<size_t>(bad));
    return Invalid(
        absl::StrCat("logits[", bad, "]: must not be ", std::isnan(value) ? "NaN" : "+inf"));
  }
  if (max == -kInf) return Invalid("logits: every token is masked");
  // RAW logprobs are over the row as given: z itself when it is that row (in place or
  // decoded, not masked in z_buf, not edited), else the caller's row (raw_row).
  const bool z_is_row = !z_sparse && ws.bitmask == bitmask && !edits;
  raw_z = z_is_row ? ws.z : nullptr;
  raw_row = logits;
  if (need_raw && (bitmask != nullptr || edits)) {
    if (!raw_max_known) kernels::DecodeAndMax(logits, nullptr, &raw_max);  // checked above
    raw_lse = raw_max + std::log(kernels::ExpSumTotal(logits, raw_max, 1.0f));
  }
  if (edits) {
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
  if (need_raw && bitmask == nullptr && !edits) {
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
  ws.min_p_done = false;

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
  } else if (vllm && params.min_p > 0.0f &&
             stages::MinPByLogits(ws, params.min_p, MinKeep(params), max, temperature)) {
    ws.min_p_done = true;  // VLLM's min-p from the logits: no exp over V either
  } else {
    // Block sums serve the dense draw and the exact mass of top-p by threshold.
    const bool by_threshold =
        params.preset == Preset::kStandard && params.top_k == 0 && params.top_p < 1.0f;
    // XTC alone cuts the dense row in place (a few tokens at most), no candidate list.
    const bool xtc_only = ws.xtc_fires && !CutsBesidesXtc(params);
    ws.total = !truncates || by_threshold || xtc_only
                   ? ExpSumWithBlocks(ws, max, temperature)
                   : kernels::ExpSum(ws.z, vocab, max, temperature, ws.w.data(), ws.bitmask);
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

Sampler::Sampler() : impl_(std::make_unique<Impl>()) {}
Sampler::~Sampler() = default;

absl::Status Sampler::Sample(LogitsView logits, const SamplingParams& params, uint64_t step,
                             SampleResult* out) {
  Impl& s = *impl_;
  const LogprobsMode mode = params.logprobs_mode;
  s.step = step;
  absl::Status status = s.Process(logits, params, ReadsRawLogits(mode));
  if (!status.ok()) return status;
  const size_t count = static_cast<size_t>(params.num_samples);
  out->samples.resize(count);
  s.tokens.resize(count);
  s.dist.Draws(params.seed, step, absl::MakeSpan(s.tokens), &s.draw_table);
  // Every draw is described as Describe does; the alternatives are the same for all.
  const ::tokensampler::sampler::Sample& first = out->samples[0];
  s.Alternatives(params, &out->samples[0]);
  const bool ranks = WantsRank(params);
  for (size_t i = 0; i < count; ++i) {
    ::tokensampler::sampler::Sample& sample = out->samples[i];
    if (i > 0) {
      sample.top_logprobs = first.top_logprobs;
      sample.token_logprobs = first.token_logprobs;
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

void Sampler::Describe(int32_t token, const SamplingParams& params,
                       ::tokensampler::sampler::Sample* out) {
  Impl& s = *impl_;
  s.Alternatives(params, out);
  out->token_id = token;
  out->logprob = s.ValueOf(token, params.logprobs_mode);
  out->rank = WantsRank(params) ? s.Rank(token, params.logprobs_mode) : 0;
}

const char* SimdTargetName() { return hwy::TargetName(kernels::DispatchedTarget()); }

}  // namespace tokensampler::sampler
