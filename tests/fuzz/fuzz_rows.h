// The checks the fuzz targets run on a decoded row: sample it (and build its distribution),
// or verify it as the Verify RPC does, and hold the answer to its contract.
#ifndef TOKENSAMPLER_TESTS_FUZZ_FUZZ_ROWS_H_
#define TOKENSAMPLER_TESTS_FUZZ_FUZZ_ROWS_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/types/span.h"
#include "sampler/kernels.h"
#include "sampler/sampler.h"
#include "sampler/verify.h"
#include "server/codec.h"
#include "tests/fuzz/fuzz_check.h"

namespace tokensampler::fuzz {

// The codes a request may end with: OK, or a refusal of the caller's input.
inline bool RequestStatus(const absl::Status& status) {
  return status.ok() || status.code() == absl::StatusCode::kInvalidArgument ||
         status.code() == absl::StatusCode::kResourceExhausted;
}

// The codes decoding may end with on a server without shared memory: those, or
// PERMISSION_DENIED for a row that names a region.
inline bool DecodeStatus(const absl::Status& status) {
  return RequestStatus(status) || status.code() == absl::StatusCode::kPermissionDenied;
}

// Bit for bit (NaN payloads and the sign of zero included).
inline bool SameFloat(float a, float b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

// One reported token of a row with logits `logits` (private: an inline row or a copy):
// - in [0, V), and never a token the caller masked (raw logit -inf);
// - its value never NaN; under RAW_LOGITS exactly the raw logit (its alternatives too);
// - a log-probability (RAW, PROCESSED) is <= 0 (alternatives may be -inf: probability 0)
//   and finite: PROCESSED always (log p with p > 0); RAW unless logit - log-sum-exp
//   overflows float32, which needs a logit beyond +-1.7e38 in the row.
inline void CheckReported(const sampler::Sample& sample, const sampler::SamplingParams& params,
                          const sampler::LogitsView& logits) {
  const auto in_row = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < logits.size; };
  FUZZ_CHECK(in_row(sample.token_id));
  const float raw = sampler::kernels::ElementOf(logits, static_cast<size_t>(sample.token_id));
  FUZZ_CHECK(std::isfinite(raw));
  FUZZ_CHECK(!std::isnan(sample.logprob));
  const sampler::LogprobsMode mode = params.logprobs_mode;
  const bool log_probability =
      mode == sampler::LogprobsMode::kRaw || mode == sampler::LogprobsMode::kProcessed;
  if (log_probability) FUZZ_CHECK(sample.logprob <= 0);
  if (mode == sampler::LogprobsMode::kProcessed) FUZZ_CHECK(std::isfinite(sample.logprob));
  if (mode == sampler::LogprobsMode::kRaw && !std::isfinite(sample.logprob)) {
    bool huge = false;
    for (size_t i = 0; i < logits.size; ++i) {
      const float v = sampler::kernels::ElementOf(logits, i);
      huge |= std::isfinite(v) && std::fabs(v) > 1.7e38f;
    }
    FUZZ_CHECK(huge);
  }
  if (mode == sampler::LogprobsMode::kRawLogits) FUZZ_CHECK(SameFloat(sample.logprob, raw));
  for (const sampler::TokenLogprob& alt : sample.top_logprobs) {
    FUZZ_CHECK(in_row(alt.token_id));
    FUZZ_CHECK(!std::isnan(alt.logprob));
    FUZZ_CHECK(!log_probability || alt.logprob <= 0);
    if (mode == sampler::LogprobsMode::kRawLogits) {
      FUZZ_CHECK(SameFloat(alt.logprob,
                           sampler::kernels::ElementOf(logits, static_cast<size_t>(alt.token_id))));
    }
  }
}

// Sample and Distribution of one row whose logits `logits` are private (an inline row,
// or the copy of a shared memory one).
inline void CheckSampleRow(sampler::Sampler& sampler, const sampler::LogitsView& logits,
                           const sampler::SamplingParams& params, uint64_t step) {
  sampler::SampleResult result;
  absl::Status status = sampler.Sample(logits, params, step, &result);
  FUZZ_CHECK(RequestStatus(status));
  if (status.ok()) {
    FUZZ_CHECK(result.samples.size() == static_cast<size_t>(params.num_samples));
    for (const sampler::Sample& s : result.samples) CheckReported(s, params, logits);
  }
  sampler::DistributionResult distribution;
  status = sampler.Distribution(logits, params, &distribution);
  FUZZ_CHECK(RequestStatus(status));
  if (status.ok()) {
    FUZZ_CHECK(distribution.token_ids.size() == distribution.probs.size());
    FUZZ_CHECK(!distribution.probs.empty());
    double sum = 0;
    for (size_t i = 0; i < distribution.probs.size(); ++i) {
      FUZZ_CHECK(distribution.token_ids[i] >= 0 &&
                 static_cast<size_t>(distribution.token_ids[i]) < logits.size);
      FUZZ_CHECK(distribution.probs[i] > 0);
      FUZZ_CHECK(i == 0 || distribution.probs[i] <= distribution.probs[i - 1]);
      sum += distribution.probs[i];
    }
    FUZZ_CHECK(std::abs(sum - 1) < 1e-3);
  }
}

// Verifies one decoded Verify row position by position (sampler::VerifyRow, the library's
// form of what the Verify RPC computes) over `targets` (the row's k + 1 target rows, or
// private copies of the shared memory ones) and checks the result:
// - an error is INVALID_ARGUMENT naming its position ("target_logits[i]...");
// - 0 <= num_accepted <= k, num_accepted + 1 tokens, the accepted ones are the drafts;
// - every emitted token has p > 0 in the processed distribution of its position;
// - with one-hot drafts, the token emitted at a rejected draft position is not the draft;
// - k = 0 is exactly Sample (token, logprob, top_logprobs), as the README promises.
inline void CheckVerifyRow(sampler::Sampler& sampler, const server::DecodedVerifyRow& row,
                           absl::Span<const sampler::LogitsView> targets) {
  const size_t k = row.draft_token_ids.size();
  FUZZ_CHECK(row.positions() == k + 1 && targets.size() == k + 1);
  FUZZ_CHECK(row.draft_probs.empty() || row.draft_probs.size() == k);
  const size_t vocab = targets[0].size;
  const sampler::SamplingParams& params = row.row.params;
  for (size_t i = 0; i <= k; ++i) {
    FUZZ_CHECK(targets[i].size == vocab);
    // Position i's penalties see the row's context, then drafts 0..i-1.
    const sampler::SamplingParams at = row.ParamsAt(i);
    FUZZ_CHECK(at.context_token_ids.size() == row.row.context_token_ids.size() + i);
    for (size_t j = 0; j < at.context_token_ids.size(); ++j) {
      const size_t context = row.row.context_token_ids.size();
      FUZZ_CHECK(at.context_token_ids[j] ==
                 (j < context ? row.row.context_token_ids[j] : row.draft_token_ids[j - context]));
    }
  }

  sampler::VerifyInputs in;
  in.target_logits = targets;
  in.draft_token_ids = row.draft_token_ids;
  in.draft_probs = row.draft_probs;
  in.params = params;
  in.step = row.row.step;
  sampler::VerifyResult result;
  {
    sampler::SamplerTarget target(&sampler);
    const absl::Status status = sampler::VerifyRow(target, in, &result);
    if (!status.ok()) {
      FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
      FUZZ_CHECK(absl::StartsWith(status.message(), "target_logits["));
      return;
    }
  }
  FUZZ_CHECK(result.num_accepted >= 0 && static_cast<size_t>(result.num_accepted) <= k);
  FUZZ_CHECK(result.tokens.size() == static_cast<size_t>(result.num_accepted) + 1);
  for (size_t i = 0; i < result.tokens.size(); ++i) {
    const sampler::Sample& token = result.tokens[i];
    CheckReported(token, params, targets[i]);
    if (i < static_cast<size_t>(result.num_accepted)) {
      FUZZ_CHECK(token.token_id == row.draft_token_ids[i]);
    } else if (i < k && row.draft_probs.empty()) {
      FUZZ_CHECK(token.token_id != row.draft_token_ids[i]);
    }
    sampler::DistributionResult distribution;
    const absl::Status status =
        sampler.Distribution(targets[i], row.ParamsAt(i), row.row.step + i, &distribution);
    FUZZ_CHECK(status.ok());
    bool in_support = false;
    for (const int32_t id : distribution.token_ids) in_support |= id == token.token_id;
    FUZZ_CHECK(in_support);
  }
  if (k == 0) {
    sampler::SampleResult sample;
    FUZZ_CHECK(sampler.Sample(targets[0], params, row.row.step, &sample).ok());
    const sampler::Sample& want = sample.samples[0];
    const sampler::Sample& got = result.tokens[0];
    FUZZ_CHECK(got.token_id == want.token_id && SameFloat(got.logprob, want.logprob));
    FUZZ_CHECK(got.top_logprobs.size() == want.top_logprobs.size());
    for (size_t j = 0; j < want.top_logprobs.size(); ++j) {
      FUZZ_CHECK(got.top_logprobs[j].token_id == want.top_logprobs[j].token_id &&
                 SameFloat(got.top_logprobs[j].logprob, want.top_logprobs[j].logprob));
    }
  }
}

}  // namespace tokensampler::fuzz

#endif  // TOKENSAMPLER_TESTS_FUZZ_FUZZ_ROWS_H_
