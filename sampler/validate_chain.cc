#include "sampler/validate_chain.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tokensampler::sampler {

namespace {

absl::Status Invalid(absl::string_view field, absl::string_view rule, float value) {
  return absl::InvalidArgumentError(absl::StrCat("params.", field, ": ", rule, ", got ", value));
}

absl::Status CheckRanges(const SamplingParams& p, size_t vocab_size) {
  if (!(std::isfinite(p.top_n_sigma) && p.top_n_sigma >= 0.0f)) {
    return Invalid("top_n_sigma", "must be finite and >= 0", p.top_n_sigma);
  }
  if (!(p.xtc_probability >= 0.0f && p.xtc_probability <= 1.0f)) {
    return Invalid("xtc_probability", "must be in [0, 1]", p.xtc_probability);
  }
  if (p.xtc_probability > 0.0f && !(p.xtc_threshold > 0.0f && p.xtc_threshold <= 0.5f)) {
    return Invalid("xtc_threshold", "must be in (0, 0.5] when xtc_probability > 0",
                   p.xtc_threshold);
  }
  const DryParams& dry = p.dry;
  if (!(std::isfinite(dry.multiplier) && dry.multiplier >= 0.0f)) {
    return Invalid("dry.multiplier", "must be finite and >= 0", dry.multiplier);
  }
  if (dry.multiplier > 0.0f && !(std::isfinite(dry.base) && dry.base > 1.0f)) {
    return Invalid("dry.base", "must be > 1 when dry.multiplier > 0", dry.base);
  }
  if (dry.allowed_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("params.dry.allowed_length: must be >= 0, got ", dry.allowed_length));
  }
  if (dry.penalty_last_n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("params.dry.penalty_last_n: must be >= 0, got ", dry.penalty_last_n));
  }
  if (dry.sequence_breakers.size() > kMaxDryBreakers) {
    return absl::InvalidArgumentError(absl::StrCat("params.dry.sequence_breakers: at most ",
                                                   kMaxDryBreakers, " sequences, got ",
                                                   dry.sequence_breakers.size()));
  }
  for (size_t b = 0; b < dry.sequence_breakers.size(); ++b) {
    const absl::Span<const int32_t> seq = dry.sequence_breakers[b];
    if (seq.empty() || seq.size() > kMaxDryBreakerLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("params.dry.sequence_breakers[", b, "].token_ids: must hold 1 to ",
                       kMaxDryBreakerLength, " tokens, got ", seq.size()));
    }
    for (size_t i = 0; i < seq.size(); ++i) {
      if (seq[i] < 0 || static_cast<size_t>(seq[i]) >= vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("params.dry.sequence_breakers[", b,
                                                       "].token_ids[", i, "]: token id ", seq[i],
                                                       " out of range [0, ", vocab_size, ")"));
      }
    }
  }
  const MirostatParams& m = p.mirostat;
  if (m.version < 0 || m.version > 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("params.mirostat.version: must be 0, 1 or 2, got ", m.version));
  }
  if (m.version > 0) {
    if (!(std::isfinite(m.tau) && m.tau > 0.0f)) {
      return Invalid("mirostat.tau", "must be finite and > 0 when mirostat.version > 0", m.tau);
    }
    if (!(std::isfinite(m.eta) && m.eta > 0.0f)) {
      return Invalid("mirostat.eta", "must be finite and > 0 when mirostat.version > 0", m.eta);
    }
    if (m.mu.has_value() && !std::isfinite(*m.mu)) {
      return Invalid("mirostat.mu", "must be finite", *m.mu);
    }
    if (m.m < 1) {
      return absl::InvalidArgumentError(absl::StrCat("params.mirostat.m: must be >= 1, got ", m.m));
    }
  }
  if (!(std::isfinite(p.dynatemp_range) && p.dynatemp_range >= 0.0f)) {
    return Invalid("dynatemp_range", "must be finite and >= 0", p.dynatemp_range);
  }
  if (!(std::isfinite(p.dynatemp_exponent) && p.dynatemp_exponent > 0.0f)) {
    return Invalid("dynatemp_exponent", "must be finite and > 0", p.dynatemp_exponent);
  }
  if (p.penalty_last_n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("params.penalty_last_n: must be >= 0, got ", p.penalty_last_n));
  }
  return absl::OkStatus();
}

// HF and VLLM: neither transformers nor vLLM has these samplers.
absl::Status CheckPreset(const SamplingParams& p) {
  if (p.preset != Preset::kHf && p.preset != Preset::kVllm) return absl::OkStatus();
  const absl::string_view peer = p.preset == Preset::kHf ? "HF (transformers" : "VLLM (vLLM";
  auto reject = [peer](absl::string_view field, absl::string_view what, float value) {
    return absl::InvalidArgumentError(absl::StrCat("params.", field, ": not available in preset ",
                                                   peer, " has no ", what, "), got ", value));
  };
  if (p.top_n_sigma > 0.0f) return reject("top_n_sigma", "top-n-sigma", p.top_n_sigma);
  if (p.xtc_probability > 0.0f) return reject("xtc_probability", "XTC", p.xtc_probability);
  if (p.dry.multiplier > 0.0f) return reject("dry.multiplier", "DRY", p.dry.multiplier);
  if (p.mirostat.version > 0) {
    return reject("mirostat.version", "mirostat", static_cast<float>(p.mirostat.version));
  }
  if (p.dynatemp_range > 0.0f) {
    return reject("dynatemp_range", "dynamic temperature", p.dynatemp_range);
  }
  if (p.penalty_last_n > 0) {
    return reject("penalty_last_n", "penalty window", static_cast<float>(p.penalty_last_n));
  }
  return absl::OkStatus();
}

// Mirostat replaces the truncations (every preset) and, in LLAMA_CPP, the whole chain
// after the logit bias but the temperature.
absl::Status CheckMirostatCombinations(const SamplingParams& p) {
  if (p.mirostat.version == 0) return absl::OkStatus();
  auto conflict = [](absl::string_view field, absl::string_view off, float value) {
    return absl::InvalidArgumentError(
        absl::StrCat("params.", field, ": must be ", off,
                     " when mirostat is on (mirostat replaces the truncations), got ", value));
  };
  if (p.top_k != 0) return conflict("top_k", "0", static_cast<float>(p.top_k));
  if (p.top_p != 1.0f) return conflict("top_p", "1 or unset", p.top_p);
  if (p.min_p != 0.0f) return conflict("min_p", "0", p.min_p);
  if (p.typical_p != 1.0f) return conflict("typical_p", "1 or unset", p.typical_p);
  if (p.top_n_sigma != 0.0f) return conflict("top_n_sigma", "0", p.top_n_sigma);
  if (p.xtc_probability != 0.0f) return conflict("xtc_probability", "0", p.xtc_probability);
  if (p.min_tokens_to_keep != 1) {
    return conflict("min_tokens_to_keep", "0 or 1", static_cast<float>(p.min_tokens_to_keep));
  }
  if (p.preset != Preset::kLlamaCpp) return absl::OkStatus();
  auto llama = [](absl::string_view field, float value) {
    return absl::InvalidArgumentError(absl::StrCat(
        "params.", field,
        ": must be off when mirostat is on in preset LLAMA_CPP (llama.cpp's mirostat chain is "
        "logit bias -> temperature -> mirostat), got ",
        value));
  };
  if (p.repetition_penalty != 1.0f && p.repetition_penalty != 0.0f) {
    return llama("repetition_penalty", p.repetition_penalty);
  }
  if (p.presence_penalty != 0.0f) return llama("presence_penalty", p.presence_penalty);
  if (p.frequency_penalty != 0.0f) return llama("frequency_penalty", p.frequency_penalty);
  if (p.dry.multiplier != 0.0f) return llama("dry.multiplier", p.dry.multiplier);
  if (p.dynatemp_range != 0.0f) return llama("dynatemp_range", p.dynatemp_range);
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateChainParams(const SamplingParams& p, size_t vocab_size) {
  absl::Status s = CheckRanges(p, vocab_size);
  if (!s.ok()) return s;
  s = CheckPreset(p);
  if (!s.ok()) return s;
  return CheckMirostatCombinations(p);
}

}  // namespace tokensampler::sampler
