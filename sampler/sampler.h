// The tokensampler pipeline: one row of logits in, sampled tokens or the processed
// distribution out. No protobuf, no gRPC, no I/O, no globals.
#ifndef TOKENSAMPLER_SAMPLER_SAMPLER_H_
#define TOKENSAMPLER_SAMPLER_SAMPLER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sampler/params.h"

namespace tokensampler::sampler {

class ProcessedDistribution;  // sampler/processed_distribution.h

struct TokenLogprob {
  int32_t token_id;
  float logprob;  // natural log; -inf for probability 0
};

struct Sample {
  int32_t token_id;
  float logprob;                            // under params.logprobs_mode
  std::vector<TokenLogprob> top_logprobs;  // params.top_logprobs entries, descending, ties by id
  // 1 + the tokens whose value under params.logprobs_mode beats token_id's (ties count
  // against it); 0 unless top_logprobs or logprob_token_ids is set.
  int32_t rank = 0;
  std::vector<TokenLogprob> token_logprobs = {};  // params.logprob_token_ids, in order
};

struct SampleResult {
  std::vector<Sample> samples;  // params.num_samples draws, sample index 0 first
  // Mirostat on: the state after this draw, moved by sample index 0's token.
  std::optional<float> mirostat_mu;
  // With params.return_kept_set: the tokens with p > 0 in the distribution drawn from,
  // as a bitmask (stages/bitmask.h layout, BitmaskBytes(V) bytes); else empty.
  std::string kept_set;
};

// Every token with p > 0, by descending probability, ties by ascending id; sums to 1.
struct DistributionResult {
  std::vector<int32_t> token_ids;
  std::vector<float> probs;
};

// Checks `params` against a vocabulary of `vocab_size` tokens without touching any
// logits. Errors are INVALID_ARGUMENT whose message starts with the field path relative
// to the row, then the rule and the value: "params.top_p: must be in (0, 1], got 1.5",
// "context_token_ids[4]: token id 70000 out of range [0, 32000)".
absl::Status ValidateParams(const SamplingParams& params, size_t vocab_size);

// Runs the pipeline over rows. Owns the scratch memory, reused from row to row, so a
// steady stream of rows allocates nothing but the result vectors.
// Thread-compatible, not thread-safe: use one Sampler per worker thread.
class Sampler {
 public:
  Sampler();
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Draws params.num_samples tokens from the processed distribution of `logits`, at
  // decoding step `step` (see the draw in README). Validates params and logits: NaN or
  // +inf logits give "logits[i]: must not be NaN/+inf", a row with nothing left to draw
  // "logits: every token is masked". On error `*out` is unspecified.
  absl::Status Sample(LogitsView logits, const SamplingParams& params, uint64_t step,
                      SampleResult* out);

  // The processed distribution of `logits` (every stage applied, nothing drawn) at
  // decoding step `step` (0 in the first form): XTC's coin depends on (seed, step).
  absl::Status Distribution(LogitsView logits, const SamplingParams& params,
                            DistributionResult* out);
  absl::Status Distribution(LogitsView logits, const SamplingParams& params, uint64_t step,
                            DistributionResult* out);

  // The processed distribution of `logits` as a value in token-id order, with its
  // probability lookup and draws (ProcessedDistribution::Draw(seed, step, i) is the token
  // Sample draws as sample i). Owned by this Sampler: valid until its next call.
  // `step` matters only to XTC's coin. With `raw_logprobs`, also keeps what RAW logprobs
  // need (one more exp pass over the row when a stage changes the logits or T != 1, as
  // Sample in RAW mode).
  absl::StatusOr<const ProcessedDistribution*> Process(LogitsView logits,
                                                       const SamplingParams& params,
                                                       uint64_t step = 0,
                                                       bool raw_logprobs = false);

  // After Process and until the next call, exactly as Sample reports them: `id`'s value
  // under `mode` (Sample.logprob), and the `count` alternatives with theirs
  // (Sample.top_logprobs: the most likely tokens of the logits as given in the RAW modes,
  // of the distribution otherwise). RAW and RAW_LOGITS need Process(..., raw_logprobs =
  // true).
  float ValueOf(int32_t id, LogprobsMode mode);
  void TopValues(int32_t count, LogprobsMode mode, std::vector<TokenLogprob>* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The name of the SIMD target the kernels dispatch to on this CPU ("AVX3", "AVX2", ...).
const char* SimdTargetName();

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_SAMPLER_H_
