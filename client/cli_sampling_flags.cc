#include "client/cli_sampling_flags.h"

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "client/logits.h"

// Not given = left unset in the request, so the server's default ("off") applies; the
// defaults below are those server defaults, shown by help.
ABSL_FLAG(float, temperature, 1.0f, "Temperature; 0 = greedy. Server default when not given: 1.");
ABSL_FLAG(int32_t, top_k, 0, "Keep the k most likely tokens; 0 = off.");
ABSL_FLAG(float, top_p, 1.0f, "Nucleus mass in (0, 1]; 1 = off.");
ABSL_FLAG(float, min_p, 0.0f, "Keep tokens with p >= min_p * p_max; 0 = off.");
ABSL_FLAG(float, typical_p, 1.0f, "Locally typical sampling mass in (0, 1]; 1 = off.");
ABSL_FLAG(float, repetition_penalty, 1.0f, "CTRL repetition penalty over --context; 1 = off.");
ABSL_FLAG(float, presence_penalty, 0.0f, "OpenAI presence penalty over --context; 0 = off.");
ABSL_FLAG(float, frequency_penalty, 0.0f, "OpenAI frequency penalty over --context; 0 = off.");
ABSL_FLAG(std::string, logit_bias, "", "Biases as id:value,... e.g. 13:2.5,50256:-inf.");
ABSL_FLAG(std::string, allowed, "", "Only these token ids may be sampled: id,id,...");
ABSL_FLAG(std::string, banned, "", "These token ids are never sampled: id,id,...");
ABSL_FLAG(std::string, context, "", "Tokens so far (for the penalties): id,id,...");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the draw; not given = the server picks one and returns it.");
ABSL_FLAG(uint64_t, step, 0, "Decoding step mixed into the draw.");
ABSL_FLAG(int32_t, num_samples, 1, "Independent draws per row (0 = 1).");
ABSL_FLAG(int32_t, top_logprobs, 0, "Alternatives returned with each sample, 0..20.");
ABSL_FLAG(std::string, logprobs_mode, "raw",
          "raw or processed (logprobs), raw_logits or processed_logits (logit values).");
ABSL_FLAG(std::string, preset, "standard", "Pipeline rules: standard, hf, llama_cpp or vllm.");
ABSL_FLAG(int32_t, min_tokens_to_keep, 1, "Lower bound on the survivors of every truncation.");
ABSL_FLAG(float, top_n_sigma, 0.0f, "Keep logits >= max - n * std; 0 = off.");
ABSL_FLAG(float, xtc_probability, 0.0f, "XTC: chance of removing the top choices; 0 = off.");
ABSL_FLAG(float, xtc_threshold, 0.1f, "XTC: tokens with p >= this are the top choices, (0, 0.5].");
ABSL_FLAG(float, dry_multiplier, 0.0f, "DRY repetition penalty strength; 0 = off.");
ABSL_FLAG(float, dry_base, 1.75f, "DRY: penalty base, > 1.");
ABSL_FLAG(int32_t, dry_allowed_length, 2, "DRY: repeats shorter than this are free.");
ABSL_FLAG(int32_t, dry_penalty_last_n, 0, "DRY: window of the context; 0 = all of it.");
ABSL_FLAG(std::string, dry_sequence_breakers, "",
          "DRY: token-id sequences that end a repeat, e.g. 13;198,271 (';' between sequences).");
ABSL_FLAG(int32_t, mirostat, 0, "Mirostat version: 0 = off, 1 or 2.");
ABSL_FLAG(float, mirostat_tau, 5.0f, "Mirostat: target surprise in bits.");
ABSL_FLAG(float, mirostat_eta, 0.1f, "Mirostat: learning rate.");
ABSL_FLAG(float, mirostat_mu, 10.0f,
          "Mirostat: state from the previous step; not given = 2 * tau.");
ABSL_FLAG(int32_t, mirostat_m, 100, "Mirostat v1: tokens of the Zipf estimate.");
ABSL_FLAG(float, dynatemp_range, 0.0f, "Dynamic temperature range; 0 = off.");
ABSL_FLAG(float, dynatemp_exponent, 1.0f, "Dynamic temperature exponent, > 0.");
ABSL_FLAG(int32_t, penalty_last_n, 0, "Penalties count only the last n context tokens; 0 = all.");
ABSL_FLAG(std::string, bitmask, "",
          "Structured-output mask: FILE.npy of int32 words (ceil(V/32) per row) or allowed ids.");
ABSL_FLAG(int32_t, num_prompt_tokens, 0,
          "The first N of --context are the prompt; the rest output.");
ABSL_FLAG(int32_t, min_tokens, 0, "Mask --stop_token_ids while the output is shorter; 0 = off.");
ABSL_FLAG(std::string, stop_token_ids, "", "EOS and stop ids, for --min_tokens: id,id,...");
ABSL_FLAG(std::string, bad_words, "", "Banned sequences: id,id;id;... (';' between them).");
ABSL_FLAG(int32_t, no_repeat_ngram_size, 0,
          "Ban tokens repeating an n-gram of the output; 0 = off.");
ABSL_FLAG(bool, return_kept_set, false, "Return the sampled-from support as a bitmask.");
ABSL_FLAG(std::string, logprob_token_ids, "", "Also return these tokens' logprobs: id,id,...");

namespace tokensampler::client {
namespace {

// One sampling flag and how its value reaches the request.
struct SamplingFlag {
  FlagRef ref;
  // Copies the flag's value into its field; empty for --context and --step, which every
  // request carries (ContextFromFlags, StepFromFlags).
  std::function<void(GivenSamplingFlags&)> read;
};

template <typename T>
SamplingFlag Param(const absl::Flag<T>& flag, std::optional<T> SamplingFlagValues::*field) {
  return {FlagRef(absl::GetFlagReflectionHandle(flag).Name()),
          [&flag, field](GivenSamplingFlags& out) { out.params.*field = absl::GetFlag(flag); }};
}

template <typename T>
SamplingFlag Row(const absl::Flag<T>& flag, std::optional<T> RowFlagValues::*field) {
  return {FlagRef(absl::GetFlagReflectionHandle(flag).Name()),
          [&flag, field](GivenSamplingFlags& out) { out.row.*field = absl::GetFlag(flag); }};
}

template <typename T>
SamplingFlag Request(const absl::Flag<T>& flag) {
  return {FlagRef(absl::GetFlagReflectionHandle(flag).Name()), nullptr};
}

const std::vector<SamplingFlag>& SamplingFlagTable() {
  using V = SamplingFlagValues;
  static const auto* table =
      new std::vector<SamplingFlag>{Param(FLAGS_temperature, &V::temperature),
                                    Param(FLAGS_top_k, &V::top_k),
                                    Param(FLAGS_top_p, &V::top_p),
                                    Param(FLAGS_min_p, &V::min_p),
                                    Param(FLAGS_typical_p, &V::typical_p),
                                    Param(FLAGS_repetition_penalty, &V::repetition_penalty),
                                    Param(FLAGS_presence_penalty, &V::presence_penalty),
                                    Param(FLAGS_frequency_penalty, &V::frequency_penalty),
                                    Param(FLAGS_logit_bias, &V::logit_bias),
                                    Param(FLAGS_allowed, &V::allowed),
                                    Param(FLAGS_banned, &V::banned),
                                    Request(FLAGS_context),
                                    Param(FLAGS_seed, &V::seed),
                                    Request(FLAGS_step),
                                    Param(FLAGS_num_samples, &V::num_samples),
                                    Param(FLAGS_top_logprobs, &V::top_logprobs),
                                    Param(FLAGS_logprobs_mode, &V::logprobs_mode),
                                    Param(FLAGS_preset, &V::preset),
                                    Param(FLAGS_min_tokens_to_keep, &V::min_tokens_to_keep),
                                    Param(FLAGS_top_n_sigma, &V::top_n_sigma),
                                    Param(FLAGS_xtc_probability, &V::xtc_probability),
                                    Param(FLAGS_xtc_threshold, &V::xtc_threshold),
                                    Param(FLAGS_dry_multiplier, &V::dry_multiplier),
                                    Param(FLAGS_dry_base, &V::dry_base),
                                    Param(FLAGS_dry_allowed_length, &V::dry_allowed_length),
                                    Param(FLAGS_dry_penalty_last_n, &V::dry_penalty_last_n),
                                    Param(FLAGS_dry_sequence_breakers, &V::dry_sequence_breakers),
                                    Param(FLAGS_mirostat, &V::mirostat),
                                    Param(FLAGS_mirostat_tau, &V::mirostat_tau),
                                    Param(FLAGS_mirostat_eta, &V::mirostat_eta),
                                    Param(FLAGS_mirostat_mu, &V::mirostat_mu),
                                    Param(FLAGS_mirostat_m, &V::mirostat_m),
                                    Param(FLAGS_dynatemp_range, &V::dynatemp_range),
                                    Param(FLAGS_dynatemp_exponent, &V::dynatemp_exponent),
                                    Param(FLAGS_penalty_last_n, &V::penalty_last_n),
                                    Row(FLAGS_bitmask, &RowFlagValues::bitmask),
                                    Row(FLAGS_num_prompt_tokens, &RowFlagValues::num_prompt_tokens),
                                    Param(FLAGS_min_tokens, &V::min_tokens),
                                    Param(FLAGS_stop_token_ids, &V::stop_token_ids),
                                    Param(FLAGS_bad_words, &V::bad_words),
                                    Param(FLAGS_no_repeat_ngram_size, &V::no_repeat_ngram_size),
                                    Param(FLAGS_return_kept_set, &V::return_kept_set),
                                    Param(FLAGS_logprob_token_ids, &V::logprob_token_ids)};
  return *table;
}

}  // namespace

const std::vector<FlagRef>& SamplingFlagRefs() {
  static const auto* refs = [] {
    auto* out = new std::vector<FlagRef>;
    for (const SamplingFlag& f : SamplingFlagTable()) out->push_back(f.ref);
    return out;
  }();
  return *refs;
}

GivenSamplingFlags ReadSamplingFlags(const Invocation& inv) {
  GivenSamplingFlags out;
  for (const SamplingFlag& f : SamplingFlagTable()) {
    if (f.read && inv.Given(f.ref.flag)) f.read(out);
  }
  return out;
}

absl::StatusOr<v1::SamplingParams> SamplingFromFlags(const Invocation& inv,
                                                     v1::SamplingParams base) {
  return BuildSamplingParams(ReadSamplingFlags(inv).params, std::move(base));
}

absl::StatusOr<std::vector<int32_t>> ContextFromFlags() {
  return ParseIdList(absl::GetFlag(FLAGS_context), "--context");
}

uint64_t StepFromFlags() { return absl::GetFlag(FLAGS_step); }

}  // namespace tokensampler::client
