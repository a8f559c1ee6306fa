// Speculative-decoding verification: given the target's k + 1 positions and a draft's
// k proposed tokens, decide how many drafts to keep and which token follows them, so that
// the emitted tokens are distributed exactly as one-at-a-time sampling from the target
// (rejection sampling: Leviathan et al. 2023, Chen et al. 2023).
//
// Like the token draw, the result is a pure function of (inputs, seed, step): the README
// ("Verification") states the algorithm as part of the public contract, and a client that
// holds each position's processed distribution (GetDistribution) replays it bit for bit.
// Never change the results without a new API version; tests pin them.
#ifndef TOKENSAMPLER_SAMPLER_VERIFY_H_
#define TOKENSAMPLER_SAMPLER_VERIFY_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sampler/params.h"
#include "sampler/processed_distribution.h"
#include "sampler/sampler.h"

namespace tokensampler::sampler {

// The fourth Philox counter word of verification's random numbers (README "The draw":
// the purpose word keeps streams apart; 0 is the token draw).
inline constexpr uint32_t kVerifyPurpose = 1;

// Draft probabilities must sum to 1 within this.
inline constexpr double kDraftProbSumTolerance = 1e-3;

// The two uniforms of one draft position: Philox key (seed lo, seed hi), counter
// (step lo, step hi, 0, kVerifyPurpose); `accept` from output words (w0, w1), `recover`
// from (w2, w3). `step` is the row's step plus the position.
struct VerifyUniforms {
  double accept;
  double recover;
};
VerifyUniforms VerifyUniformsAt(uint64_t seed, uint64_t step);

// The processed target distribution at one position, as verification reads it: single
// probabilities, one walk in token-id order where a draft is rejected, the token of an
// ordinary draw. Nothing here sorts. Implementations are not thread-safe.
class TargetDistribution {
 public:
  virtual ~TargetDistribution() = default;

  virtual size_t vocab_size() const = 0;
  // Greedy rows (temperature 0): the argmax, lowest id on ties; -1 otherwise.
  virtual int32_t greedy_token() const = 0;
  // p[token]: the float32 probability GetDistribution reports; 0 for a removed token.
  // REQUIRES: token in [0, vocab_size()).
  virtual float Prob(int32_t token) const = 0;
  // The distribution's entries in ascending id, every token with p > 0 among them (and
  // maybe some with p = 0): `*ids` (empty = dense: entry i is token i, vocab_size()
  // entries), their `*weights`, and `*total`, with p = kernels::ProbOf(weight, total), the
  // same float as Prob. The views live until the next call on this object.
  virtual void Support(absl::Span<const int32_t>* ids, absl::Span<const float>* weights,
                       double* total) = 0;
  // The token of the draw for uniform `u` (README "The draw", step 3).
  virtual int32_t Pick(double u) = 0;
  // The token Sample draws at (seed, step), sample index 0: Pick(DrawUniform(seed, step, 0)).
  virtual int32_t Draw(uint64_t seed, uint64_t step) = 0;
  // `token` as Sample reports it at this position: its logprob under the row's
  // logprobs_mode and the row's top_logprobs alternatives.
  virtual absl::Status Describe(int32_t token, Sample* out) = 0;
};

// The target distribution of each position computed by a Sampler: its
// ProcessedDistribution (id order, nothing sorted) and, in RAW logprobs mode, the RAW
// logprobs Sample would report. `sampler` must outlive it. Not thread-safe.
class SamplerTarget final : public TargetDistribution {
 public:
  explicit SamplerTarget(Sampler* sampler) : sampler_(sampler) {}
  SamplerTarget(const SamplerTarget&) = delete;
  SamplerTarget& operator=(const SamplerTarget&) = delete;

  // Processes one position: exactly GetDistribution's distribution of `logits` under
  // `params` (whose context_token_ids the penalties read) at decoding step `step` (which
  // only XTC's coin reads), in one pass of the pipeline.
  // Valid until the next Load or the next use of the Sampler. Errors as Sampler's.
  absl::Status Load(LogitsView logits, const SamplingParams& params, uint64_t step);

  size_t vocab_size() const override { return dist_->vocab(); }
  // A one-hot distribution (greedy) decides like greedy: p is 1 at its token, 0 elsewhere.
  int32_t greedy_token() const override { return dist_->one_hot() ? dist_->token() : -1; }
  float Prob(int32_t token) const override { return dist_->Prob(token); }
  void Support(absl::Span<const int32_t>* ids, absl::Span<const float>* weights,
               double* total) override;
  int32_t Pick(double u) override;
  int32_t Draw(uint64_t seed, uint64_t step) override { return dist_->Draw(seed, step, 0); }
  absl::Status Describe(int32_t token, Sample* out) override;

 private:
  Sampler* const sampler_;
  const ProcessedDistribution* dist_ = nullptr;
  LogprobsMode mode_ = LogprobsMode::kRaw;
  int32_t top_logprobs_ = 0;
};

// One draft position: the proposed token and the draft's probabilities q there.
struct DraftPosition {
  int32_t token = 0;
  // V probabilities by token id (any dtype), or data == nullptr for a deterministic
  // draft (n-gram, prompt lookup): q one-hot at `token`.
  LogitsView probs;
};

// Memory verification reuses from position to position (the residual's running sums).
struct VerifyScratch {
  std::vector<double> cum;
};

// What one position decided.
struct PositionOutcome {
  bool accepted = false;  // the draft token was kept (never at the bonus position)
  Sample emitted;         // the accepted draft, else the recovered or bonus token
};

// Draft position i, with `step` = row step + i: accepts the draft token d iff
// u_accept * q[d] < p[d] (in double); otherwise emits the recovered token, the draw over
// r_j = max(p_j - q_j, 0) in id order with u_recover (or p's own draw if every r_j is 0).
// Greedy: accepts iff d is p's argmax, else emits the argmax; no random numbers.
// REQUIRES: draft.token in [0, V); draft.probs valid (ValidateDraftProbs).
absl::Status VerifyPosition(TargetDistribution& target, const DraftPosition& draft, uint64_t seed,
                            uint64_t step, VerifyScratch* scratch, PositionOutcome* out);

// The bonus position k, with `step` = row step + k: the token Sample returns for that
// distribution at `step` (sample index 0); never accepted.
absl::Status BonusPosition(TargetDistribution& target, uint64_t seed, uint64_t step,
                           PositionOutcome* out);

// Checks one row of draft probabilities for draft token `token`: every entry finite and
// >= 0, their sum within kDraftProbSumTolerance of 1, q[token] > 0. Errors are
// INVALID_ARGUMENT starting with `field`: "draft_probs[2][17]: must be finite and >= 0,
// got -0.5". REQUIRES: token in [0, probs.size).
absl::Status ValidateDraftProbs(absl::string_view field, const LogitsView& probs, int32_t token);

// Position i's parameters: `params` with the penalties' context set to the first
// context_size + i tokens of `context_and_drafts` (the row's context, then the drafts).
SamplingParams ParamsAtPosition(const SamplingParams& params,
                                absl::Span<const int32_t> context_and_drafts, size_t context_size,
                                size_t position);

// A sampler error at position i renamed to its field: "logits[17]: must not be NaN" ->
// "target_logits[2][17]: must not be NaN" (code kept).
absl::Status PositionError(size_t position, const absl::Status& status);

// One row's verification inputs. Views the caller keeps alive during the call.
struct VerifyInputs {
  absl::Span<const LogitsView> target_logits;  // k + 1 positions, same V
  absl::Span<const int32_t> draft_token_ids;   // k ids in [0, V)
  absl::Span<const LogitsView> draft_probs;    // k rows, or empty (one-hot drafts)
  SamplingParams params;                       // context_token_ids = the row's context
  uint64_t step = 0;                           // step of position 0
};

struct VerifyResult {
  std::vector<Sample> tokens;  // the accepted drafts, then one recovered or bonus token
  int32_t num_accepted = 0;
};

// The row's result from its positions' outcomes: outcomes[0..r] where r is the first
// position not accepted. REQUIRES: such a position exists (the last never is accepted).
void AssembleVerifyResult(absl::Span<const PositionOutcome> outcomes, VerifyResult* out);

// Verifies one row position by position on `target`, stopping at the first rejection:
// positions after it are not computed. Inputs as validated by the server's codec.
absl::Status VerifyRow(SamplerTarget& target, const VerifyInputs& in, VerifyResult* out);

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_VERIFY_H_
