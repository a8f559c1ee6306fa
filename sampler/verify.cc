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

namespace tokensampler::sampler {
namespace {

// q[j] of a draft position in double: one-hot at the draft token when no probs are given.
double DraftQ(const DraftPosition& draft, size_t j) {
  if (draft.probs.data == nullptr) return j == static_cast<size_t>(draft.token) ? 1.0 : 0.0;
  return kernels::ElementOf(draft.probs, j);
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

absl::Status SamplerTarget::Load(LogitsView logits, const SamplingParams& params,
                                 uint64_t step) {
  mode_ = params.logprobs_mode;
  top_logprobs_ = params.top_logprobs;
  absl::StatusOr<const ProcessedDistribution*> dist = sampler_->Process(
      logits, params, step,
      /*raw_logprobs=*/mode_ == LogprobsMode::kRaw || mode_ == LogprobsMode::kRawLogits);
  if (!dist.ok()) return dist.status();
  dist_ = *dist;
  return absl::OkStatus();
}

void SamplerTarget::Support(absl::Span<const int32_t>* ids, absl::Span<const float>* weights,
                            double* total) {
  *ids = dist_->ids();
  *weights = dist_->weights();
  *total = dist_->total();
}

int32_t SamplerTarget::Pick(double u) {
  if (dist_->one_hot()) return dist_->token();
  const absl::Span<const float> w = dist_->weights();
  const int64_t picked = kernels::PickDense(w.data(), w.size(), dist_->total(), u);
  return dist_->id_at(picked >= 0 ? static_cast<size_t>(picked) : 0);
}

absl::Status SamplerTarget::Describe(int32_t token, Sample* out) {
  // Exactly Sample's value and alternatives under every logprobs_mode (the *_LOGITS
  // modes report logit values, not logprobs).
  out->token_id = token;
  out->logprob = sampler_->ValueOf(token, mode_);
  sampler_->TopValues(top_logprobs_, mode_, &out->top_logprobs);
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
  const int32_t token = greedy >= 0 ? greedy : target.Draw(seed, step);
  return target.Describe(token, &out->emitted);
}

absl::Status ValidateDraftProbs(absl::string_view field, const LogitsView& probs, int32_t token) {
  double sum = 0.0;
  for (size_t j = 0; j < probs.size; ++j) {
    const float q = kernels::ElementOf(probs, j);
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
  if (kernels::ElementOf(probs, static_cast<size_t>(token)) == 0.0f) {
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
        target.Load(in.target_logits[i], ParamsAtPosition(in.params, context, context_size, i),
                    in.step + i);
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
