#include "client/sampling_flags.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/npy.h"

namespace tokensampler::client {
namespace {

// Replaces `out` with the ids of `text` ("id,id,..."), if given. Errors name `flag`.
absl::Status SetIds(const std::optional<std::string>& text, absl::string_view flag,
                    google::protobuf::RepeatedField<int32_t>* out) {
  if (!text) return absl::OkStatus();
  auto ids = ParseIdList(*text, flag);
  if (!ids.ok()) return ids.status();
  out->Assign(ids->begin(), ids->end());
  return absl::OkStatus();
}

// Replaces `out` with the sequences of `text` ("id,id;id": ';' between sequences), if
// given. With `non_empty` an empty sequence is an error. Errors name `flag`.
absl::Status SetSequences(const std::optional<std::string>& text, absl::string_view flag,
                          bool non_empty,
                          google::protobuf::RepeatedPtrField<v1::TokenSequence>* out) {
  if (!text) return absl::OkStatus();
  out->Clear();
  for (absl::string_view part : absl::StrSplit(*text, ';')) {
    v1::TokenSequence sequence;
    if (absl::Status status = SetIds(std::string(part), flag, sequence.mutable_token_ids());
        !status.ok()) {
      return status;
    }
    if (non_empty && sequence.token_ids().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": empty sequence (want id,id;id;...)"));
    }
    *out->Add() = std::move(sequence);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Preset> ParsePreset(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "standard") return v1::PRESET_STANDARD;
  if (t == "hf" || t == "transformers") return v1::PRESET_HF;
  if (t == "llama_cpp" || t == "llama.cpp" || t == "llamacpp") return v1::PRESET_LLAMA_CPP;
  if (t == "vllm") return v1::PRESET_VLLM;
  return absl::InvalidArgumentError(absl::StrCat(
      "--preset: unknown value '", text, "' (want standard, hf, llama_cpp or vllm)"));
}

absl::StatusOr<v1::LogprobsMode> ParseLogprobsMode(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "raw") return v1::LOGPROBS_MODE_RAW;
  if (t == "processed") return v1::LOGPROBS_MODE_PROCESSED;
  if (t == "raw_logits") return v1::LOGPROBS_MODE_RAW_LOGITS;
  if (t == "processed_logits") return v1::LOGPROBS_MODE_PROCESSED_LOGITS;
  return absl::InvalidArgumentError(
      absl::StrCat("--logprobs_mode: unknown value '", text,
                   "' (want raw, processed, raw_logits or processed_logits)"));
}

absl::StatusOr<v1::SamplingParams> BuildSamplingParams(const SamplingFlagValues& f,
                                                       v1::SamplingParams base) {
  v1::SamplingParams p = std::move(base);
  if (f.temperature) p.set_temperature(*f.temperature);
  if (f.top_k) p.set_top_k(*f.top_k);
  if (f.top_p) p.set_top_p(*f.top_p);
  if (f.min_p) p.set_min_p(*f.min_p);
  if (f.typical_p) p.set_typical_p(*f.typical_p);
  if (f.repetition_penalty) p.set_repetition_penalty(*f.repetition_penalty);
  if (f.presence_penalty) p.set_presence_penalty(*f.presence_penalty);
  if (f.frequency_penalty) p.set_frequency_penalty(*f.frequency_penalty);
  if (f.seed) p.set_seed(*f.seed);
  if (f.num_samples) p.set_num_samples(*f.num_samples);
  if (f.top_logprobs) p.set_top_logprobs(*f.top_logprobs);
  if (f.min_tokens_to_keep) p.set_min_tokens_to_keep(*f.min_tokens_to_keep);
  if (f.logit_bias) {
    auto bias = ParseLogitBias(*f.logit_bias);
    if (!bias.ok()) return bias.status();
    p.clear_logit_bias();
    for (const auto& [id, value] : *bias) (*p.mutable_logit_bias())[id] = value;
  }
  if (absl::Status s = SetIds(f.allowed, "--allowed", p.mutable_allowed_token_ids()); !s.ok()) {
    return s;
  }
  if (absl::Status s = SetIds(f.banned, "--banned", p.mutable_banned_token_ids()); !s.ok()) {
    return s;
  }
  if (f.logprobs_mode) {
    auto mode = ParseLogprobsMode(*f.logprobs_mode);
    if (!mode.ok()) return mode.status();
    p.set_logprobs_mode(*mode);
  }
  if (f.preset) {
    auto preset = ParsePreset(*f.preset);
    if (!preset.ok()) return preset.status();
    p.set_preset(*preset);
  }
  if (f.top_n_sigma) p.set_top_n_sigma(*f.top_n_sigma);
  if (f.xtc_probability) p.set_xtc_probability(*f.xtc_probability);
  if (f.xtc_threshold) p.set_xtc_threshold(*f.xtc_threshold);
  if (f.dry_multiplier) p.mutable_dry()->set_multiplier(*f.dry_multiplier);
  if (f.dry_base) p.mutable_dry()->set_base(*f.dry_base);
  if (f.dry_allowed_length) p.mutable_dry()->set_allowed_length(*f.dry_allowed_length);
  if (f.dry_penalty_last_n) p.mutable_dry()->set_penalty_last_n(*f.dry_penalty_last_n);
  if (f.dry_sequence_breakers) {
    if (absl::Status s = SetSequences(f.dry_sequence_breakers, "--dry_sequence_breakers",
                                      /*non_empty=*/false,
                                      p.mutable_dry()->mutable_sequence_breakers());
        !s.ok()) {
      return s;
    }
  }
  if (f.mirostat) p.mutable_mirostat()->set_version(*f.mirostat);
  if (f.mirostat_tau) p.mutable_mirostat()->set_tau(*f.mirostat_tau);
  if (f.mirostat_eta) p.mutable_mirostat()->set_eta(*f.mirostat_eta);
  if (f.mirostat_mu) p.mutable_mirostat()->set_mu(*f.mirostat_mu);
  if (f.mirostat_m) p.mutable_mirostat()->set_m(*f.mirostat_m);
  if (f.dynatemp_range) p.set_dynatemp_range(*f.dynatemp_range);
  if (f.dynatemp_exponent) p.set_dynatemp_exponent(*f.dynatemp_exponent);
  if (f.penalty_last_n) p.set_penalty_last_n(*f.penalty_last_n);
  if (f.min_tokens) p.set_min_tokens(*f.min_tokens);
  if (f.no_repeat_ngram_size) p.set_no_repeat_ngram_size(*f.no_repeat_ngram_size);
  if (f.return_kept_set) p.set_return_kept_set(*f.return_kept_set);
  if (absl::Status s = SetIds(f.stop_token_ids, "--stop_token_ids", p.mutable_stop_token_ids());
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          SetIds(f.logprob_token_ids, "--logprob_token_ids", p.mutable_logprob_token_ids());
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          SetSequences(f.bad_words, "--bad_words", /*non_empty=*/true, p.mutable_bad_words());
      !s.ok()) {
    return s;
  }
  return p;
}

absl::Status ApplyRowFlags(const RowFlagValues& flags, size_t vocab, v1::SampleRequest* request) {
  if (flags.num_prompt_tokens) {
    for (v1::Row& row : *request->mutable_rows()) {
      row.set_num_prompt_tokens(*flags.num_prompt_tokens);
    }
  }
  if (!flags.bitmask) return absl::OkStatus();
  const std::string& text = *flags.bitmask;
  const size_t rows = static_cast<size_t>(request->rows_size());
  if (absl::EndsWith(text, ".npy")) {
    auto words = ReadNpyWordsFile(text);
    if (!words.ok()) return absl::InvalidArgumentError(absl::StrCat("--bitmask: ", words.status().message()));
    if (words->rows != 1 && words->rows != rows) {
      return absl::InvalidArgumentError(absl::StrCat("--bitmask: ", text, " has ", words->rows,
                                                     " rows, the request ", rows));
    }
    const size_t row_bytes = 4 * words->cols;
    for (size_t r = 0; r < rows; ++r) {
      const size_t from = words->rows == 1 ? 0 : r * row_bytes;
      request->mutable_rows(static_cast<int>(r))
          ->set_allowed_token_bitmask(words->bytes.substr(from, row_bytes));
    }
    return absl::OkStatus();
  }
  auto ids = ParseIdList(text, "--bitmask");
  if (!ids.ok()) return ids.status();
  std::string mask(4 * ((vocab + 31) / 32), '\0');
  for (int32_t id : *ids) {
    if (id < 0 || static_cast<size_t>(id) >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("--bitmask: token id ", id, " out of range [0, ", vocab, ")"));
    }
    mask[static_cast<size_t>(id) / 8] =
        static_cast<char>(static_cast<uint8_t>(mask[static_cast<size_t>(id) / 8]) | (1u << (id % 8)));
  }
  for (v1::Row& row : *request->mutable_rows()) row.set_allowed_token_bitmask(mask);
  return absl::OkStatus();
}

absl::StatusOr<v1::SamplingParams> PipelineParams(absl::string_view pipeline) {
  v1::SamplingParams p;
  if (pipeline == "greedy") {
    p.set_temperature(0.0f);
  } else if (pipeline == "full") {
    p.set_temperature(0.8f);
    p.set_top_k(50);
    p.set_top_p(0.95f);
    p.set_min_p(0.05f);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--pipeline: unknown value '", pipeline, "' (want greedy or full)"));
  }
  return p;
}

v1::SampleRequest BuildRequest(absl::Span<const float> logits, size_t rows, size_t cols, Wire wire,
                               const v1::SamplingParams& params, absl::Span<const int32_t> context,
                               uint64_t step) {
  v1::SampleRequest request;
  for (size_t r = 0; r < rows; ++r) {
    v1::Row* row = request.add_rows();
    EncodeLogits(logits.subspan(r * cols, cols), wire, row->mutable_logits());
    *row->mutable_params() = params;
    row->mutable_context_token_ids()->Assign(context.begin(), context.end());
    row->set_step(step);
  }
  return request;
}

}  // namespace tokensampler::client
