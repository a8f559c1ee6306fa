// Private to the sampler library: the state behind Sampler (sampler.h), shared by
// sampler.cc (Process and the stage chain), sampler_llama.cc (dynamic temperature and
// mirostat) and sampler_outputs.cc (what a draw reports). Not installed.
#ifndef TOKENSAMPLER_SAMPLER_SAMPLER_IMPL_H_
#define TOKENSAMPLER_SAMPLER_SAMPLER_IMPL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sampler/dist_sort.h"
#include "sampler/kernels.h"
#include "sampler/params.h"
#include "sampler/processed_distribution.h"
#include "sampler/sampler.h"
#include "sampler/workspace.h"

namespace tokensampler::sampler {

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
  // A draw's alternatives under params.logprobs_mode: out->top_logprobs and
  // out->token_logprobs (those of params.logprob_token_ids).
  void Alternatives(const SamplingParams& params, ::tokensampler::sampler::Sample* out);

  // `params`, or for VLLM below kVllmGreedyTemperature a copy with temperature 0.
  SamplingParams vllm_greedy;
  const SamplingParams& Effective(const SamplingParams& params);
  float processed_temperature = 1.0f;  // the distribution's T (1 when greedy)
  // The caller's row decoded (into `raw` on first use).
  const float* RawRow();
  // Token `id`'s value under `mode`: what Sample.logprob and token_logprobs report.
  float ValueOf(int32_t id, LogprobsMode mode);
  // The number of tokens whose value under `mode` is >= token's, itself included.
  int32_t Rank(int32_t token, LogprobsMode mode);
  // The support (p > 0) as a bitmask (stages/bitmask.h layout).
  void KeptSet(std::string* out) const;
};

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_SAMPLER_IMPL_H_
