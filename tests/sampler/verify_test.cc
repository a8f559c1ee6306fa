// Speculative verification (README "Verification"): known answers, hand-checked cases on
// a given target distribution, the properties that make it exact (k = 0 is Sample, q = p
// accepts everything, p = 0 is never accepted, position 0 follows the target whatever
// the draft, greedy follows the argmax chain), and input validation.
#include "sampler/verify.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/draw.h"
#include "sampler/sampler.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler {
namespace {

using testing::DenseDistribution;
using testing::NormalRow;

// A target distribution given by hand, p by token id.
class DenseTarget final : public TargetDistribution {
 public:
  explicit DenseTarget(std::vector<float> p, int32_t greedy = -1)
      : p_(std::move(p)), greedy_(greedy) {}
  size_t vocab_size() const override { return p_.size(); }
  int32_t greedy_token() const override { return greedy_; }
  float Prob(int32_t token) const override { return p_[token]; }
  void Support(absl::Span<const int32_t>* ids, absl::Span<const float>* weights,
               double* total) override {
    *ids = {};
    *weights = p_;
    *total = 1.0;
  }
  int32_t Pick(double u) override { return static_cast<int32_t>(PickInverseCdf(p_, u)); }
  int32_t Draw(uint64_t seed, uint64_t step) override { return Pick(DrawUniform(seed, step, 0)); }
  absl::Status Describe(int32_t token, Sample* out) override {
    out->token_id = token;
    out->logprob = std::log(p_[token]);
    return absl::OkStatus();
  }

 private:
  std::vector<float> p_;
  int32_t greedy_;
};

DraftPosition Draft(int32_t token, const std::vector<float>* q = nullptr) {
  DraftPosition d;
  d.token = token;
  if (q != nullptr) d.probs = LogitsView::Float32(*q);
  return d;
}

TEST(VerifyUniforms, KnownAnswers) {
  // Philox counter (step, 0, 0, 1): purpose 1 of the draw's table.
  const VerifyUniforms u = VerifyUniformsAt(42, 0);
  EXPECT_EQ(u.accept, 0.1260315820118052);
  EXPECT_EQ(u.recover, 0.3285213841875647);
  // A different purpose word than the token draw: never the same numbers.
  EXPECT_NE(VerifyUniformsAt(42, 0).accept, DrawUniform(42, 0, 0));
}

TEST(VerifyPosition, AcceptRuleByHand) {
  VerifyScratch scratch;
  // p[0] = 0.5, one-hot q: accept iff u_accept < 0.5.
  DenseTarget target({0.5f, 0.25f, 0.25f});
  int accepted = 0;
  for (uint64_t step = 0; step < 200; ++step) {
    PositionOutcome out;
    ASSERT_TRUE(VerifyPosition(target, Draft(0), 7, step, &scratch, &out).ok());
    const VerifyUniforms u = VerifyUniformsAt(7, step);
    EXPECT_EQ(out.accepted, u.accept < 0.5) << step;
    if (out.accepted) {
      ++accepted;
      EXPECT_EQ(out.emitted.token_id, 0);
    } else {
      // Residual of a one-hot draft: p without token 0, walked in id order.
      EXPECT_EQ(out.emitted.token_id, u.recover * 0.5 < 0.25 ? 1 : 2) << step;
    }
  }
  EXPECT_GT(accepted, 60);
  EXPECT_LT(accepted, 140);
}

TEST(VerifyPosition, RecoveredTokenIsTheResidualsOnlyToken) {
  VerifyScratch scratch;
  // r = max(p - q, 0) = (0, 0.4, 0): every rejection emits token 1.
  DenseTarget target({0.1f, 0.6f, 0.3f});
  const std::vector<float> q = {0.5f, 0.2f, 0.3f};
  int rejected = 0;
  for (uint64_t step = 0; step < 300; ++step) {
    PositionOutcome out;
    ASSERT_TRUE(VerifyPosition(target, Draft(0, &q), 3, step, &scratch, &out).ok());
    // Accept iff u * 0.5 < 0.1 (in double, from the floats).
    EXPECT_EQ(out.accepted, VerifyUniformsAt(3, step).accept * static_cast<double>(0.5f) <
                                static_cast<double>(0.1f));
    if (!out.accepted) {
      ++rejected;
      EXPECT_EQ(out.emitted.token_id, 1);
    }
  }
  EXPECT_GT(rejected, 200);
}

TEST(VerifyPosition, ZeroTargetProbabilityIsNeverAccepted) {
  VerifyScratch scratch;
  DenseTarget target({0.0f, 0.7f, 0.3f, 0.0f});
  const std::vector<float> q = {0.97f, 0.01f, 0.01f, 0.01f};
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    for (int32_t d : {0, 3}) {
      PositionOutcome out;
      ASSERT_TRUE(
          VerifyPosition(target, Draft(d, d == 0 ? &q : nullptr), seed, 5, &scratch, &out).ok());
      EXPECT_FALSE(out.accepted);
      EXPECT_NE(out.emitted.token_id, 0);
      EXPECT_NE(out.emitted.token_id, 3);
    }
  }
}

TEST(VerifyPosition, ResidualAllZeroFallsBackToTheTargetDraw) {
  VerifyScratch scratch;
  // q >= p everywhere can only come from rounding (both sum to 1); then R = 0 and the
  // token is p's own draw with u_recover. Here q[1] > p[1] and q[0] = p[0] + tiny.
  DenseTarget target({0.5f, 0.5f});
  const std::vector<float> q = {std::nextafter(0.5f, 1.0f), 0.5f};
  for (uint64_t step = 0; step < 100; ++step) {
    PositionOutcome out;
    ASSERT_TRUE(VerifyPosition(target, Draft(0, &q), 1, step, &scratch, &out).ok());
    if (out.accepted) continue;
    EXPECT_EQ(out.emitted.token_id,
              PickInverseCdf(std::vector<float>{0.5f, 0.5f}, VerifyUniformsAt(1, step).recover));
  }
}

TEST(VerifyPosition, GreedyUsesTheArgmaxOnly) {
  VerifyScratch scratch;
  DenseTarget target({0.0f, 1.0f, 0.0f}, /*greedy=*/1);
  PositionOutcome out;
  ASSERT_TRUE(VerifyPosition(target, Draft(1), 0, 0, &scratch, &out).ok());
  EXPECT_TRUE(out.accepted);
  EXPECT_EQ(out.emitted.token_id, 1);
  ASSERT_TRUE(VerifyPosition(target, Draft(2), 0, 0, &scratch, &out).ok());
  EXPECT_FALSE(out.accepted);
  EXPECT_EQ(out.emitted.token_id, 1);
  ASSERT_TRUE(BonusPosition(target, 0, 0, &out).ok());
  EXPECT_EQ(out.emitted.token_id, 1);
}

// Token ids whose logprobs the grid asks for (logprob_token_ids), < every V used here.
const std::vector<int32_t>& AskedIds() {
  static const std::vector<int32_t>* const ids = new std::vector<int32_t>{0, 17, 499};
  return *ids;
}

// The parameter sets the properties are checked under, in every logprobs mode.
std::vector<SamplingParams> ParamGrid() {
  std::vector<SamplingParams> grid;
  for (Preset preset : {Preset::kStandard, Preset::kHf, Preset::kLlamaCpp}) {
    for (LogprobsMode mode : {LogprobsMode::kRaw, LogprobsMode::kProcessed,
                              LogprobsMode::kRawLogits, LogprobsMode::kProcessedLogits}) {
      SamplingParams p;
      p.preset = preset;
      p.logprobs_mode = mode;
      p.top_logprobs = 3;
      grid.push_back(p);  // T = 1, whole vocabulary
      p.temperature = 0.7f;
      p.top_k = 40;
      p.top_p = 0.9f;
      p.logprob_token_ids = AskedIds();
      grid.push_back(p);
      p.top_k = 0;
      p.min_p = 0.02f;
      p.typical_p = 0.95f;
      p.top_logprobs = 0;  // no logprobs asked for: rank 0
      p.logprob_token_ids = {};
      grid.push_back(p);
      p = SamplingParams();
      p.preset = preset;
      p.logprobs_mode = mode;
      p.temperature = 0.0f;
      p.top_logprobs = 2;
      p.logprob_token_ids = AskedIds();
      grid.push_back(p);  // greedy
      p.temperature = 1.3f;
      p.repetition_penalty = 1.3f;
      p.presence_penalty = 0.5f;
      p.frequency_penalty = 0.25f;
      grid.push_back(p);
    }
  }
  return grid;
}

// Every field of `got` equals `want`'s, bit for bit.
void ExpectSameSample(const Sample& got, const Sample& want) {
  EXPECT_EQ(got.token_id, want.token_id);
  EXPECT_EQ(got.logprob, want.logprob);
  EXPECT_EQ(got.rank, want.rank);
  for (auto lists : {&Sample::top_logprobs, &Sample::token_logprobs}) {
    const std::vector<TokenLogprob>& got_list = got.*lists;
    const std::vector<TokenLogprob>& want_list = want.*lists;
    ASSERT_EQ(got_list.size(), want_list.size());
    for (size_t j = 0; j < want_list.size(); ++j) {
      EXPECT_EQ(got_list[j].token_id, want_list[j].token_id) << j;
      EXPECT_EQ(got_list[j].logprob, want_list[j].logprob) << j;
    }
  }
}

TEST(VerifyRow, NoDraftIsExactlySample) {
  Sampler sampler;
  SamplerTarget target(&sampler);
  Sampler reference;
  const std::vector<int32_t> context = {3, 3, 17, 250};
  int checked = 0;
  for (const SamplingParams& grid_params : ParamGrid()) {
    for (uint64_t seed : {0ull, 1ull, 42ull, 0xFFFFFFFFFFFFFFFFull}) {
      const std::vector<float> logits = NormalRow(1000 + seed % 7, static_cast<uint32_t>(seed));
      SamplingParams params = grid_params;
      params.seed = seed;
      params.context_token_ids = context;
      const LogitsView view = LogitsView::Float32(logits);
      VerifyInputs in;
      in.target_logits = absl::MakeConstSpan(&view, 1);
      in.params = params;
      in.step = seed * 3 + 11;
      VerifyResult result;
      ASSERT_TRUE(VerifyRow(target, in, &result).ok());
      SampleResult sample;
      ASSERT_TRUE(reference.Sample(view, params, in.step, &sample).ok());
      ASSERT_EQ(result.tokens.size(), 1u);
      EXPECT_EQ(result.num_accepted, 0);
      // Bit for bit: alternatives, rank and asked-for logprobs included.
      SCOPED_TRACE(::testing::Message() << "checked " << checked);
      ExpectSameSample(result.tokens[0], sample.samples[0]);
      EXPECT_EQ(sample.samples[0].rank > 0,
                params.top_logprobs > 0 || !params.logprob_token_ids.empty());
      ++checked;
    }
  }
  EXPECT_EQ(checked, 240);
}

// k positions of random target logits, and a draft that proposes the target's own draw
// with q = p at every position, so every draft is accepted.
TEST(VerifyRow, DraftEqualToTargetAcceptsEverythingAndPenaltiesSeeTheDraft) {
  Sampler sampler;
  SamplerTarget target(&sampler);
  Sampler reference;
  constexpr size_t kV = 3000;
  constexpr size_t kK = 4;
  for (SamplingParams params : ParamGrid()) {
    if (params.temperature == 0.0f) continue;  // greedy: see the argmax-chain test
    for (uint64_t seed = 0; seed < 8; ++seed) {
      params.seed = seed;
      const std::vector<int32_t> context = {5, 9, 5};
      params.context_token_ids = context;
      std::vector<std::vector<float>> logits;
      for (size_t i = 0; i <= kK; ++i) {
        logits.push_back(NormalRow(kV, static_cast<uint32_t>(seed * 10 + i), 2.0f));
      }
      std::vector<int32_t> drafts;
      std::vector<std::vector<float>> q;
      std::vector<int32_t> history = context;
      for (size_t i = 0; i < kK; ++i) {
        SamplingParams at = params;
        at.context_token_ids = history;
        q.push_back(DenseDistribution(reference, logits[i], at));
        SampleResult s;
        ASSERT_TRUE(reference.Sample(LogitsView::Float32(logits[i]), at, 100 + i, &s).ok());
        drafts.push_back(s.samples[0].token_id);
        history.push_back(drafts.back());
      }
      std::vector<LogitsView> target_views, draft_views;
      for (const auto& row : logits) target_views.push_back(LogitsView::Float32(row));
      for (const auto& row : q) draft_views.push_back(LogitsView::Float32(row));
      VerifyInputs in;
      in.target_logits = target_views;
      in.draft_token_ids = drafts;
      in.draft_probs = draft_views;
      in.params = params;
      in.step = 1000;
      VerifyResult result;
      ASSERT_TRUE(VerifyRow(target, in, &result).ok());
      ASSERT_EQ(result.num_accepted, static_cast<int32_t>(kK));
      ASSERT_EQ(result.tokens.size(), kK + 1);
      for (size_t i = 0; i < kK; ++i) EXPECT_EQ(result.tokens[i].token_id, drafts[i]);
      // The bonus is Sample's token at step + k with the drafts in the context.
      SamplingParams at = params;
      at.context_token_ids = history;
      SampleResult bonus;
      ASSERT_TRUE(reference.Sample(LogitsView::Float32(logits[kK]), at, 1000 + kK, &bonus).ok());
      ExpectSameSample(result.tokens[kK], bonus.samples[0]);
    }
  }
}

TEST(VerifyRow, GreedyFollowsTheArgmaxChain) {
  Sampler sampler;
  SamplerTarget target(&sampler);
  Sampler reference;
  constexpr size_t kV = 500;
  constexpr size_t kK = 5;
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 1.5f;  // the argmax at i depends on drafts 0..i-1
  params.frequency_penalty = 1.0f;
  std::vector<std::vector<float>> logits;
  // Rows with a few strong tokens so the penalties move the argmax.
  for (size_t i = 0; i <= kK; ++i) logits.push_back(NormalRow(kV, 77 + i, 0.3f));
  for (auto& row : logits) {
    row[10] = 3.0f;
    row[11] = 2.9f;
    row[12] = 2.8f;
  }
  std::vector<LogitsView> views;
  for (const auto& row : logits) views.push_back(LogitsView::Float32(row));
  // The argmax chain: position i's argmax given the chain so far.
  std::vector<int32_t> chain;
  for (size_t i = 0; i <= kK; ++i) {
    SamplingParams at = params;
    at.context_token_ids = chain;
    SampleResult s;
    ASSERT_TRUE(reference.Sample(views[i], at, 0, &s).ok());
    chain.push_back(s.samples[0].token_id);
  }
  EXPECT_NE(chain[0], chain[1]);  // the penalties did move it
  for (size_t wrong_at = 0; wrong_at <= kK; ++wrong_at) {
    std::vector<int32_t> drafts(chain.begin(), chain.begin() + kK);
    if (wrong_at < kK) drafts[wrong_at] = (drafts[wrong_at] + 1) % kV;
    VerifyInputs in;
    in.target_logits = views;
    in.draft_token_ids = drafts;
    in.params = params;
    VerifyResult result;
    ASSERT_TRUE(VerifyRow(target, in, &result).ok());
    ASSERT_EQ(result.num_accepted, static_cast<int32_t>(wrong_at));
    ASSERT_EQ(result.tokens.size(), wrong_at + 1);
    for (size_t i = 0; i <= wrong_at; ++i) EXPECT_EQ(result.tokens[i].token_id, chain[i]);
  }
}

// Pearson's chi-square of `counts` against `p` over `n` draws.
double ChiSquare(const std::vector<int>& counts, const std::vector<float>& p, int n) {
  double stat = 0.0;
  for (size_t j = 0; j < p.size(); ++j) {
    const double expected = n * static_cast<double>(p[j]);
    if (expected == 0.0) {
      EXPECT_EQ(counts[j], 0) << "token " << j << " has p = 0";
      continue;
    }
    stat += (counts[j] - expected) * (counts[j] - expected) / expected;
  }
  return stat;
}

TEST(VerifyRow, FirstTokenFollowsTheTargetWhateverTheDraft) {
  // Target and draft far apart; over 100,000 seeds the first emitted token (accepted or
  // recovered) must follow p_0. 8 tokens, 7 degrees of freedom: 24.32 is the 0.999
  // quantile, so a correct verifier fails this with probability 0.001 (seeds are fixed).
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 1.5f, -3.0f};
  const std::vector<float> q = {0.01f, 0.02f, 0.02f, 0.3f, 0.3f, 0.3f, 0.02f, 0.03f};
  Sampler sampler;
  SamplerTarget target(&sampler);
  SamplingParams params;
  params.logprobs_mode = LogprobsMode::kProcessed;
  const std::vector<float> p = DenseDistribution(sampler, logits, params);
  const LogitsView views[2] = {LogitsView::Float32(logits), LogitsView::Float32(logits)};
  constexpr int kSeeds = 100000;
  for (bool one_hot : {false, true}) {
    std::vector<int> counts(logits.size(), 0);
    int accepted = 0;
    for (int seed = 0; seed < kSeeds; ++seed) {
      params.seed = static_cast<uint64_t>(seed);
      // The draft proposes from q (its own draw), as a real draft model would.
      const int32_t d = static_cast<int32_t>(PickInverseCdf(q, DrawUniform(seed, 999, 0)));
      const LogitsView qv = LogitsView::Float32(q);
      VerifyInputs in;
      in.target_logits = views;
      in.draft_token_ids = absl::MakeConstSpan(&d, 1);
      if (!one_hot) in.draft_probs = absl::MakeConstSpan(&qv, 1);
      in.params = params;
      VerifyResult result;
      ASSERT_TRUE(VerifyRow(target, in, &result).ok());
      ++counts[result.tokens[0].token_id];
      accepted += result.num_accepted;
    }
    // For the one-hot draft, the proposal is still drawn from q (an n-gram guess).
    const double stat = ChiSquare(counts, p, kSeeds);
    EXPECT_LT(stat, 24.32) << (one_hot ? "one-hot" : "with q");
    // Acceptance rate: sum_j min(p_j, q_j) with q given, sum_j q_j p_j for a one-hot
    // draft (d ~ q, kept with probability p_d); within 5 binomial sigmas.
    double rate = 0.0;
    for (size_t j = 0; j < p.size(); ++j) {
      rate += one_hot ? static_cast<double>(q[j]) * p[j] : std::min<double>(p[j], q[j]);
    }
    EXPECT_NEAR(accepted, kSeeds * rate, 5 * std::sqrt(kSeeds * rate * (1 - rate)))
        << (one_hot ? "one-hot" : "with q");
  }
}

TEST(VerifyRow, PositionErrorsNameTheTargetRow) {
  Sampler sampler;
  SamplerTarget target(&sampler);
  std::vector<float> good = NormalRow(100, 1);
  std::vector<float> bad = good;
  bad[17] = std::nanf("");
  SamplingParams params;
  params.temperature = 0.0f;
  const int32_t argmax =
      static_cast<int32_t>(std::max_element(good.begin(), good.end()) - good.begin());
  const LogitsView views[2] = {LogitsView::Float32(good), LogitsView::Float32(bad)};
  VerifyInputs in;
  in.target_logits = views;
  in.draft_token_ids = absl::MakeConstSpan(&argmax, 1);
  in.params = params;
  VerifyResult result;
  const absl::Status status = VerifyRow(target, in, &result);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "target_logits[1][17]: must not be NaN");
}

TEST(ValidateDraftProbs, NamesTheEntryAndTheRule) {
  auto check = [](std::vector<float> q, int32_t token) {
    return ValidateDraftProbs("draft_probs[2]", LogitsView::Float32(q), token);
  };
  EXPECT_TRUE(check({0.25f, 0.75f}, 1).ok());
  EXPECT_TRUE(check({0.2504f, 0.75f}, 1).ok());  // within 1e-3
  EXPECT_EQ(check({0.5f, -0.5f, 1.0f}, 0).message(),
            "draft_probs[2][1]: must be finite and >= 0, got -0.5");
  EXPECT_EQ(check({0.5f, std::nanf(""), 0.5f}, 0).message(),
            "draft_probs[2][1]: must be finite and >= 0, got nan");
  EXPECT_EQ(check({0.5f, INFINITY}, 0).message(),
            "draft_probs[2][1]: must be finite and >= 0, got inf");
  EXPECT_EQ(check({0.5f, 0.49f}, 0).message(),
            "draft_probs[2]: must sum to 1 within 0.001, got 0.99");
  EXPECT_EQ(check({0.0f, 1.0f}, 0).message(),
            "draft_probs[2][0]: the draft proposed token 0 but gave it probability 0");
  // 16-bit rows are read exactly: bf16 0x3F00 = 0.5, 0x3F00 = 0.5.
  const uint16_t bf16[2] = {0x3F00, 0x3F00};
  EXPECT_TRUE(ValidateDraftProbs("q", {bf16, 2, Dtype::kBFloat16}, 1).ok());
  const uint16_t fp16[2] = {0x3800, 0xB800};  // 0.5, -0.5
  EXPECT_EQ(ValidateDraftProbs("q", {fp16, 2, Dtype::kFloat16}, 0).message(),
            "q[1]: must be finite and >= 0, got -0.5");
}

TEST(PositionError, RenamesLogitsToTheTargetRow) {
  EXPECT_EQ(PositionError(3, absl::InvalidArgumentError("logits: every token is masked")).message(),
            "target_logits[3]: every token is masked");
  EXPECT_EQ(PositionError(0, absl::InvalidArgumentError("params.x: y")).message(),
            "target_logits[0]: params.x: y");
  EXPECT_TRUE(PositionError(0, absl::OkStatus()).ok());
}

}  // namespace
}  // namespace tokensampler::sampler
