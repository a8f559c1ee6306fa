#include "sampler/verify.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sampler/draw.h"
#include "sampler/kernels.h"
#include "sampler/kernels_hwy.h"

namespace tokensampler::sampler {
namespace {

// Entry j of a row of draft probabilities, exactly (16-bit values widen without rounding).
float DraftProbAt(const LogitsView& q, size_t j) {
  const unsigned char* bytes = static_cast<const unsigned char*>(q.data);
  if (q.dtype == Dtype::kFloat32) {
    float v;
    std::memcpy(&v, bytes + 4 * j, sizeof(v));
    return v;
  }
  uint16_t bits;
  std::memcpy(&bits, bytes + 2 * j, sizeof(bits));
  return q.dtype == Dtype::kBFloat16 ? kernels::BFloat16ToFloat(bits)
                                     : kernels::Float16ToFloat(bits);
}

// q[j] of a draft position in double: one-hot at the draft token when no probs are given.
double DraftQ(const DraftPosition& draft, size_t j) {
  if (draft.probs.data == nullptr) return j == static_cast<size_t>(draft.token) ? 1.0 : 0.0;
  return DraftProbAt(draft.probs, j);
}

// The recovered token: the inverse-CDF walk, in ascending id, over the residual
// r_j = max(p_j - q_j, 0) (double) with uniform u; p's own draw if every r_j is 0 (only
// through rounding). One pass over p's support stores the running sums (the same doubles
// the walk adds up, in the same order), then a binary search finds the first one above
// u * R: the walk's answer, since the running sum only rises at entries with r_j > 0.
int32_t Recover(TargetDistribution& target, const DraftPosition& draft, double u,
                std::vector<double>* cum) {
  absl::Span<const int32_t> ids;
  absl::Span<const float> weights;
  double total = 0.0;
  target.Support(&ids, &weights, &total);
  const bool dense = ids.empty();
  auto id_at = [&](size_t i) { return dense ? static_cast<int32_t>(i) : ids[i]; };
  const size_t n = weights.size();
  cum->resize(n);
  double sum = 0.0;
  size_t last = n;
  for (size_t i = 0; i < n; ++i) {
    const double p = kernels::ProbOf(weights[i], total);
    const double r = std::max(p - DraftQ(draft, id_at(i)), 0.0);
    if (r > 0.0) {
      sum += r;
      last = i;
    }
    (*cum)[i] = sum;
  }
  if (!(sum > 0.0)) return target.Pick(u);
  const auto it = std::upper_bound(cum->begin(), cum->begin() + n, u * sum);
  return id_at(it == cum->begin() + n ? last : static_cast<size_t>(it - cum->begin()));
}

}  // namespace

VerifyUniforms VerifyUniformsAt(uint64_t seed, uint64_t step) {
  const std::array<uint32_t, 4> w = Philox4x32_10(
      {static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32), 0u, kVerifyPurpose},
      {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  return {UniformFromWords(w[0], w[1]), UniformFromWords(w[2], w[3])};
}

absl::Status SamplerTarget::Load(LogitsView logits, const SamplingParams& params) {
  logits_ = logits;
  params_ = params;
  params_.num_samples = 1;
  absl::Status status = sampler_->Distribution(logits, params_, &sorted_);
  if (!status.ok()) return status;
  // The public Distribution sorts; verification wants p by id.
  dense_.assign(logits.size, 0.0f);
  for (size_t i = 0; i < sorted_.token_ids.size(); ++i) {
    dense_[sorted_.token_ids[i]] = sorted_.probs[i];
  }
  greedy_token_ = params.temperature == 0.0f ? sorted_.token_ids[0] : -1;
  return absl::OkStatus();
}

void SamplerTarget::Support(absl::Span<const int32_t>* ids, absl::Span<const float>* weights,
                            double* total) {
  *ids = {};
  *weights = dense_;
  *total = 1.0;  // ProbOf(p, 1) == p
}

int32_t SamplerTarget::Pick(double u) {
  if (greedy_token_ >= 0) return greedy_token_;
  return static_cast<int32_t>(PickInverseCdf(dense_, u));
}

absl::Status SamplerTarget::Describe(int32_t token, Sample* out) {
  out->token_id = token;
  out->top_logprobs.clear();
  const size_t want = std::min(static_cast<size_t>(params_.top_logprobs), logits_.size);
  if (params_.logprobs_mode == LogprobsMode::kProcessed) {
    out->logprob = greedy_token_ >= 0
                       ? 0.0f
                       : static_cast<float>(std::log(static_cast<double>(dense_[token])));
    // Sample's alternatives: the most likely first, ties by id, then p = 0 tokens by id.
    for (size_t i = 0; i < sorted_.token_ids.size() && out->top_logprobs.size() < want; ++i) {
      out->top_logprobs.push_back(
          {sorted_.token_ids[i],
           static_cast<float>(std::log(static_cast<double>(sorted_.probs[i])))});
    }
    for (size_t i = 0; i < logits_.size && out->top_logprobs.size() < want; ++i) {
      if (dense_[i] > 0.0f) continue;
      out->top_logprobs.push_back(
          {static_cast<int32_t>(i), -std::numeric_limits<float>::infinity()});
    }
    return absl::OkStatus();
  }
  // RAW: the log-softmax of the logits as sent does not depend on the pipeline; a Sample
  // that may only draw `token` reports it.
  SamplingParams raw;
  raw.temperature = 0.0f;
  raw.allowed_token_ids = absl::MakeConstSpan(&token, 1);
  raw.top_logprobs = params_.top_logprobs;
  raw.logprobs_mode = LogprobsMode::kRaw;
  absl::Status status = sampler_->Sample(logits_, raw, 0, &raw_sample_);
  if (!status.ok()) return status;
  out->logprob = raw_sample_.samples[0].logprob;
  out->top_logprobs = raw_sample_.samples[0].top_logprobs;
  return absl::OkStatus();
}

absl::Status VerifyPosition(TargetDistribution& target, const DraftPosition& draft, uint64_t seed,
                            uint64_t step, VerifyScratch* scratch, PositionOutcome* out) {
  const int32_t d = draft.token;
  const int32_t greedy = target.greedy_token();
  if (greedy >= 0) {
    out->accepted = d == greedy;
    return target.Describe(greedy, &out->emitted);
  }
  const VerifyUniforms u = VerifyUniformsAt(seed, step);
  const double p_d = target.Prob(d);
  out->accepted = u.accept * DraftQ(draft, static_cast<size_t>(d)) < p_d;
  return target.Describe(out->accepted ? d : Recover(target, draft, u.recover, &scratch->cum),
                         &out->emitted);
}

absl::Status BonusPosition(TargetDistribution& target, uint64_t seed, uint64_t step,
                           PositionOutcome* out) {
  out->accepted = false;
  const int32_t greedy = target.greedy_token();
  const int32_t token = greedy >= 0 ? greedy : target.Pick(DrawUniform(seed, step, 0));
  return target.Describe(token, &out->emitted);
}

absl::Status ValidateDraftProbs(absl::string_view field, const LogitsView& probs, int32_t token) {
  double sum = 0.0;
  for (size_t j = 0; j < probs.size; ++j) {
    const float q = DraftProbAt(probs, j);
    if (!(std::isfinite(q) && q >= 0.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", j, "]: must be finite and >= 0, got ", q));
    }
    sum += q;
  }
  if (!(std::fabs(sum - 1.0) <= kDraftProbSumTolerance)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must sum to 1 within ", kDraftProbSumTolerance, ", got ", sum));
  }
  if (DraftProbAt(probs, static_cast<size_t>(token)) == 0.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, "[", token, "]: the draft proposed token ", token, " but gave it probability 0"));
  }
  return absl::OkStatus();
}

SamplingParams ParamsAtPosition(const SamplingParams& params,
                                absl::Span<const int32_t> context_and_drafts, size_t context_size,
                                size_t position) {
  SamplingParams at = params;
  at.context_token_ids = context_and_drafts.subspan(0, context_size + position);
  return at;
}

absl::Status PositionError(size_t position, const absl::Status& status) {
  if (status.ok()) return status;
  absl::string_view message = status.message();
  const std::string field = absl::StrCat("target_logits[", position, "]");
  if (absl::ConsumePrefix(&message, "logits")) {
    return absl::Status(status.code(), absl::StrCat(field, message));
  }
  return absl::Status(status.code(), absl::StrCat(field, ": ", message));
}

void AssembleVerifyResult(absl::Span<const PositionOutcome> outcomes, VerifyResult* out) {
  out->tokens.clear();
  out->num_accepted = 0;
  for (const PositionOutcome& outcome : outcomes) {
    out->tokens.push_back(outcome.emitted);
    if (!outcome.accepted) return;
    ++out->num_accepted;
  }
}

absl::Status VerifyRow(SamplerTarget& target, const VerifyInputs& in, VerifyResult* out) {
  const size_t k = in.draft_token_ids.size();
  std::vector<int32_t> context(in.params.context_token_ids.begin(),
                               in.params.context_token_ids.end());
  const size_t context_size = context.size();
  context.insert(context.end(), in.draft_token_ids.begin(), in.draft_token_ids.end());
  std::vector<PositionOutcome> outcomes(k + 1);
  VerifyScratch scratch;
  for (size_t i = 0; i <= k; ++i) {
    absl::Status status =
        target.Load(in.target_logits[i], ParamsAtPosition(in.params, context, context_size, i));
    if (status.ok()) {
      if (i < k) {
        DraftPosition draft;
        draft.token = in.draft_token_ids[i];
        if (!in.draft_probs.empty()) draft.probs = in.draft_probs[i];
        status = VerifyPosition(target, draft, in.params.seed, in.step + i, &scratch, &outcomes[i]);
      } else {
        status = BonusPosition(target, in.params.seed, in.step + k, &outcomes[i]);
      }
    }
    if (!status.ok()) return PositionError(i, status);
    if (!outcomes[i].accepted) {
      AssembleVerifyResult(absl::MakeConstSpan(outcomes.data(), i + 1), out);
      return absl::OkStatus();
    }
  }
  return absl::InternalError("verification ended without a rejection or a bonus token");
}

}  // namespace tokensampler::sampler
