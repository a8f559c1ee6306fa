#include "server/codec.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/client_text.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

absl::Status Invalid(size_t index, absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat("rows[", index, "].", field, ": ", rule));
}

absl::Status CheckRowCount(int n, const Limits& limits) {
  if (n <= limits.max_rows) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("rows: ", n, " rows exceed the server limit max_rows=", limits.max_rows));
}

size_t DtypeWidth(sampler::Dtype dtype) {
  return dtype == sampler::Dtype::kFloat32 ? 4 : 2;
}

absl::StatusOr<sampler::Dtype> DecodeDtype(v1::Dtype dtype, size_t index, absl::string_view with) {
  switch (dtype) {
    case v1::DTYPE_FLOAT32:
      return sampler::Dtype::kFloat32;
    case v1::DTYPE_BFLOAT16:
      return sampler::Dtype::kBFloat16;
    case v1::DTYPE_FLOAT16:
      return sampler::Dtype::kFloat16;
    case v1::DTYPE_UNSPECIFIED:
      return Invalid(index, "logits.dtype",
                     absl::StrCat("must be DTYPE_FLOAT32, DTYPE_BFLOAT16 or DTYPE_FLOAT16 "
                                  "when ",
                                  with, " is set, got DTYPE_UNSPECIFIED"));
    default:
      return Invalid(index, "logits.dtype",
                     absl::StrCat("unknown value ", static_cast<int>(dtype)));
  }
}

// A row in a registered region: resolves the region and checks the range and size.
absl::Status DecodeSharedLogits(const v1::Logits& logits, size_t index, const Limits& limits,
                                SharedMemoryResolver resolve_region, DecodedRow* out) {
  const v1::SharedMemoryRef& ref = logits.shared_memory();
  auto mapping = resolve_region(ref.region());
  if (!mapping.ok()) {
    return absl::Status(mapping.status().code(),
                        absl::StrCat("rows[", index, "].logits.shared_memory.region: ",
                                     mapping.status().message()));
  }
  auto dtype = DecodeDtype(logits.dtype(), index, "shared_memory");
  if (!dtype.ok()) return dtype.status();
  const uint64_t region_size = (*mapping)->byte_size();
  if (ref.byte_size() == 0) {
    return Invalid(index, "logits.shared_memory.byte_size", "must be > 0, got 0");
  }
  if (ref.offset() > region_size || ref.byte_size() > region_size - ref.offset()) {
    return Invalid(
        index, "logits.shared_memory",
        absl::StrCat("offset + byte_size = ", ref.offset(), " + ", ref.byte_size(),
                     " exceeds region \"", ref.region(), "\" of ", region_size, " bytes"));
  }
  const size_t width = DtypeWidth(*dtype);
  if (ref.byte_size() % width != 0) {
    return Invalid(index, "logits.shared_memory.byte_size",
                   absl::StrCat("must be V * ", width, " for ", v1::Dtype_Name(logits.dtype()),
                                ", got ", ref.byte_size()));
  }
  const uint64_t vocab = ref.byte_size() / width;
  if (vocab > static_cast<uint64_t>(limits.max_vocab)) {
    return Invalid(
        index, "logits.shared_memory.byte_size",
        absl::StrCat(ref.byte_size(), " bytes hold ", vocab,
                     " logits, more than the server limit max_vocab=", limits.max_vocab));
  }
  out->logits.data = (*mapping)->data() + ref.offset();
  out->logits.size = static_cast<size_t>(vocab);
  out->logits.dtype = *dtype;
  out->shared_memory = *std::move(mapping);
  return absl::OkStatus();
}

absl::Status DecodeLogits(const v1::Logits& logits, size_t index, const Limits& limits,
                          SharedMemoryResolver resolve_region, DecodedRow* out) {
  sampler::LogitsView* view = &out->logits;
  out->shared_memory.reset();
  const bool has_values = logits.values_size() > 0;
  const bool has_raw = !logits.raw().empty();
  const bool has_shared = logits.has_shared_memory();
  if (has_shared && (has_values || has_raw)) {
    return Invalid(index, "logits",
                   absl::StrCat("set one of values, raw or shared_memory, not several (got ",
                                logits.values_size(), " values, ", logits.raw().size(),
                                " raw bytes and shared_memory)"));
  }
  if (has_shared) return DecodeSharedLogits(logits, index, limits, resolve_region, out);
  if (has_values && has_raw) {
    return Invalid(index, "logits",
                   absl::StrCat("set either values or raw, not both (got ",
                                logits.values_size(), " values and ", logits.raw().size(),
                                " raw bytes)"));
  }
  if (!has_values && !has_raw) {
    return Invalid(index, "logits", "missing; set values, raw or shared_memory (at least 1 logit)");
  }
  size_t vocab = 0;
  if (has_values) {
    if (logits.dtype() != v1::DTYPE_UNSPECIFIED && logits.dtype() != v1::DTYPE_FLOAT32) {
      return Invalid(index, "logits.dtype",
                     absl::StrCat("applies to raw only; values are float32, got ",
                                  v1::Dtype_Name(logits.dtype())));
    }
    vocab = static_cast<size_t>(logits.values_size());
    *view = sampler::LogitsView::Float32(
        absl::MakeConstSpan(logits.values().data(), vocab));
  } else {
    auto decoded = DecodeDtype(logits.dtype(), index, "raw");
    if (!decoded.ok()) return decoded.status();
    const sampler::Dtype dtype = *decoded;
    const size_t width = DtypeWidth(dtype);
    const size_t bytes = logits.raw().size();
    if (bytes % width != 0) {
      return Invalid(index, "logits.raw",
                     absl::StrCat("length must be a multiple of ", width, " bytes for ",
                                  v1::Dtype_Name(logits.dtype()), ", got ", bytes));
    }
    vocab = bytes / width;
    view->data = logits.raw().data();
    view->size = vocab;
    view->dtype = dtype;
  }
  if (vocab > static_cast<size_t>(limits.max_vocab)) {
    return Invalid(index, "logits",
                   absl::StrCat(vocab, " logits exceed the server limit max_vocab=",
                                limits.max_vocab));
  }
  return absl::OkStatus();
}

// llama.cpp's other samplers (top-n-sigma, XTC, DRY, mirostat, dynamic temperature,
// penalty window): proto defaults to the library's values. Their ranges are checked by
// sampler::ValidateParams with the rest.
absl::Status DecodeChainParams(const v1::SamplingParams& p, size_t index, DecodedRow* out) {
  sampler::SamplingParams& s = out->params;
  s.top_n_sigma = p.top_n_sigma();
  s.xtc_probability = p.xtc_probability();
  s.xtc_threshold = p.xtc_threshold();
  s.dry.multiplier = p.dry().multiplier();
  s.dry.base = p.dry().base();
  s.dry.allowed_length = p.dry().allowed_length();
  s.dry.penalty_last_n = p.dry().penalty_last_n();
  out->dry_breakers.clear();
  for (const v1::TokenSequence& seq : p.dry().sequence_breakers()) {
    out->dry_breakers.push_back(absl::MakeConstSpan(seq.token_ids().data(), seq.token_ids_size()));
  }
  s.dry.sequence_breakers = out->dry_breakers;
  const v1::MirostatParams& m = p.mirostat();
  s.mirostat.version = m.version();
  s.mirostat.tau = m.tau();
  s.mirostat.eta = m.eta();
  if (m.has_mu()) s.mirostat.mu = m.mu();
  if (m.m() < 0) {
    return Invalid(index, "params.mirostat.m", absl::StrCat("must be >= 0, got ", m.m()));
  }
  s.mirostat.m = m.m() == 0 ? 100 : m.m();
  s.dynatemp_range = p.dynatemp_range();
  s.dynatemp_exponent = p.has_dynatemp_exponent() ? p.dynatemp_exponent() : 1.0f;
  s.penalty_last_n = p.penalty_last_n();
  return absl::OkStatus();
}

absl::Status DecodeParams(const v1::SamplingParams& p, size_t index, const Limits& limits,
                          absl::FunctionRef<uint64_t()> pick_seed, DecodedRow* out) {
  sampler::SamplingParams& s = out->params;
  s = sampler::SamplingParams();
  s.temperature = p.has_temperature() ? p.temperature() : 1.0f;
  s.top_k = p.top_k();
  s.top_p = p.has_top_p() ? p.top_p() : 1.0f;
  s.min_p = p.min_p();
  s.typical_p = p.has_typical_p() ? p.typical_p() : 1.0f;
  // 0 and 1 both mean off; the library's off value is 1.
  s.repetition_penalty = p.repetition_penalty() == 0.0f ? 1.0f : p.repetition_penalty();
  s.presence_penalty = p.presence_penalty();
  s.frequency_penalty = p.frequency_penalty();

  if (p.num_samples() < 0 || p.num_samples() > limits.max_num_samples) {
    return Invalid(index, "params.num_samples",
                   absl::StrCat("must be in [0, ", limits.max_num_samples,
                                "] (server limit max_num_samples), got ", p.num_samples()));
  }
  s.num_samples = p.num_samples() == 0 ? 1 : p.num_samples();
  s.top_logprobs = p.top_logprobs();
  if (p.min_tokens_to_keep() < 0) {
    return Invalid(index, "params.min_tokens_to_keep",
                   absl::StrCat("must be >= 0, got ", p.min_tokens_to_keep()));
  }
  s.min_tokens_to_keep = p.min_tokens_to_keep() == 0 ? 1 : p.min_tokens_to_keep();

  switch (p.logprobs_mode()) {
    case v1::LOGPROBS_MODE_UNSPECIFIED:
    case v1::LOGPROBS_MODE_RAW:
      s.logprobs_mode = sampler::LogprobsMode::kRaw;
      break;
    case v1::LOGPROBS_MODE_PROCESSED:
      s.logprobs_mode = sampler::LogprobsMode::kProcessed;
      break;
    case v1::LOGPROBS_MODE_RAW_LOGITS:
      s.logprobs_mode = sampler::LogprobsMode::kRawLogits;
      break;
    case v1::LOGPROBS_MODE_PROCESSED_LOGITS:
      s.logprobs_mode = sampler::LogprobsMode::kProcessedLogits;
      break;
    default:
      return Invalid(index, "params.logprobs_mode",
                     absl::StrCat("unknown value ", static_cast<int>(p.logprobs_mode())));
  }
  switch (p.preset()) {
    case v1::PRESET_UNSPECIFIED:
    case v1::PRESET_STANDARD:
      s.preset = sampler::Preset::kStandard;
      break;
    case v1::PRESET_HF:
      s.preset = sampler::Preset::kHf;
      break;
    case v1::PRESET_LLAMA_CPP:
      s.preset = sampler::Preset::kLlamaCpp;
      break;
    case v1::PRESET_VLLM:
      s.preset = sampler::Preset::kVllm;
      break;
    default:
      return Invalid(index, "params.preset",
                     absl::StrCat("unknown value ", static_cast<int>(p.preset())));
  }

  // A proto map has no order; sort by id so the decoded row does not depend on it.
  out->logit_bias.clear();
  out->logit_bias.reserve(p.logit_bias_size());
  for (const auto& [token_id, bias] : p.logit_bias()) {
    out->logit_bias.push_back({token_id, bias});
  }
  std::sort(out->logit_bias.begin(), out->logit_bias.end(),
            [](const sampler::LogitBias& a, const sampler::LogitBias& b) {
              return a.token_id < b.token_id;
            });
  s.logit_bias = out->logit_bias;
  s.allowed_token_ids = absl::MakeConstSpan(p.allowed_token_ids().data(),
                                            p.allowed_token_ids_size());
  s.banned_token_ids = absl::MakeConstSpan(p.banned_token_ids().data(),
                                           p.banned_token_ids_size());
  out->seed_given = p.has_seed();
  s.seed = p.has_seed() ? p.seed() : pick_seed();
  return DecodeChainParams(p, index, out);
}

// The SamplingParams fields of issue 14 (output-length stages, RL results), for Sample,
// GetDistribution, SampleStream and Verify alike. Views point into the request; ranges
// against V are checked by sampler::ValidateParams.
absl::Status DecodeOutputParams(const v1::SamplingParams& p, size_t index, DecodedRow* out) {
  sampler::SamplingParams& s = out->params;
  s.min_tokens = p.min_tokens();
  s.stop_token_ids = absl::MakeConstSpan(p.stop_token_ids().data(), p.stop_token_ids_size());
  if (p.bad_words_size() > sampler::kMaxBadWords) {
    return Invalid(index, "params.bad_words",
                   absl::StrCat("at most ", sampler::kMaxBadWords, " sequences, got ",
                                p.bad_words_size()));
  }
  out->bad_words.clear();
  for (const v1::TokenSequence& word : p.bad_words()) {
    out->bad_words.push_back(
        absl::MakeConstSpan(word.token_ids().data(), word.token_ids_size()));
  }
  s.bad_words = out->bad_words;
  s.no_repeat_ngram_size = p.no_repeat_ngram_size();
  s.return_kept_set = p.return_kept_set();
  s.logprob_token_ids =
      absl::MakeConstSpan(p.logprob_token_ids().data(), p.logprob_token_ids_size());
  return absl::OkStatus();
}

// The Row fields of issue 14 (structured output, the prompt/output split), then the
// params' (DecodeOutputParams).
absl::Status DecodeOutputFields(const v1::Row& row, size_t index, DecodedRow* out) {
  sampler::SamplingParams& s = out->params;
  if (row.num_prompt_tokens() < 0 || row.num_prompt_tokens() > row.context_token_ids_size()) {
    return Invalid(
        index, "num_prompt_tokens",
        absl::StrCat("must be in [0, ", row.context_token_ids_size(),
                     "] (the number of context_token_ids), got ", row.num_prompt_tokens()));
  }
  out->num_prompt_tokens = static_cast<size_t>(row.num_prompt_tokens());
  s.num_prompt_tokens = out->num_prompt_tokens;
  if (!row.allowed_token_bitmask().empty()) {
    s.allowed_token_bitmask = {reinterpret_cast<const uint8_t*>(row.allowed_token_bitmask().data()),
                               row.allowed_token_bitmask().size()};
  }
  return DecodeOutputParams(row.params(), index, out);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const SharedMemoryMapping>> NoSharedMemory(
    absl::string_view region) {
  return absl::PermissionDeniedError(
      absl::StrCat("shared memory is off on this server (--shared_memory=off), got region \"",
                   absl::CHexEscape(region), "\""));
}

absl::Status RowError(size_t index, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("rows[", index, "].", status.message()));
}

absl::Status DecodeRow(const v1::Row& row, size_t index, const Limits& limits, RequestKind kind,
                       absl::FunctionRef<uint64_t()> pick_seed, DecodedRow* out,
                       SharedMemoryResolver resolve_region) {
  out->index = index;
  out->step = row.step();
  out->sequence_id = row.sequence_id();
  out->end_sequence = row.end_sequence();
  out->context_token_ids = absl::MakeConstSpan(row.context_token_ids().data(),
                                               row.context_token_ids_size());
  if (kind == RequestKind::kStream && row.sequence_id().empty()) {
    return Invalid(index, "sequence_id", "required in a stream, got \"\"");
  }
  const bool logits_empty =
      !row.has_logits() || (row.logits().values_size() == 0 && row.logits().raw().empty() &&
                            !row.logits().has_shared_memory());
  if (kind == RequestKind::kStream && row.end_sequence() && logits_empty) {
    // Only frees the sequence; nothing to sample, params are not looked at.
    out->has_logits = false;
    out->logits = sampler::LogitsView();
    out->params = sampler::SamplingParams();
    out->logit_bias.clear();
    out->dry_breakers.clear();
    out->bad_words.clear();
    out->num_prompt_tokens = 0;
    out->seed_given = false;
    out->shared_memory.reset();
    return absl::OkStatus();
  }
  out->has_logits = true;
  absl::Status status = DecodeLogits(row.logits(), index, limits, resolve_region, out);
  if (!status.ok()) return status;
  status = DecodeParams(row.params(), index, limits, pick_seed, out);
  if (!status.ok()) return status;
  status = DecodeOutputFields(row, index, out);
  if (!status.ok()) return status;
  out->params.context_token_ids = out->context_token_ids;
  return RowError(index, sampler::ValidateParams(out->params, out->logits.size));
}

absl::Status DecodeRequest(const v1::SampleRequest& request, const Limits& limits, RequestKind kind,
                           absl::FunctionRef<uint64_t()> pick_seed, std::vector<DecodedRow>* rows,
                           SharedMemoryResolver resolve_region) {
  const int n = request.rows_size();
  absl::Status count = CheckRowCount(n, limits);
  if (!count.ok()) return count;
  rows->clear();
  rows->resize(n);
  absl::flat_hash_set<absl::string_view> sequence_ids;
  for (int i = 0; i < n; ++i) {
    const v1::Row& row = request.rows(i);
    absl::Status status = DecodeRow(row, i, limits, kind, pick_seed, &(*rows)[i], resolve_region);
    if (!status.ok()) return status;
    if (kind == RequestKind::kStream && !sequence_ids.insert(row.sequence_id()).second) {
      return Invalid(i, "sequence_id",
                     absl::StrCat("must be unique within a message, ",
                                  QuoteClientString(row.sequence_id()), " appears more than once"));
    }
  }
  return absl::OkStatus();
}

namespace {

void EncodeSample(const sampler::Sample& sample, v1::Sample* out) {
  out->set_token_id(sample.token_id);
  out->set_logprob(sample.logprob);
  for (const sampler::TokenLogprob& alt : sample.top_logprobs) {
    v1::TokenLogprob* t = out->add_top_logprobs();
    t->set_token_id(alt.token_id);
    t->set_logprob(alt.logprob);
  }
  out->set_rank(sample.rank);
  for (const sampler::TokenLogprob& asked : sample.token_logprobs) {
    v1::TokenLogprob* t = out->add_token_logprobs();
    t->set_token_id(asked.token_id);
    t->set_logprob(asked.logprob);
  }
}

// An error of DecodeLogits ("rows[i].logits...") renamed to `field` ("rows[i].<field>...").
absl::Status RenameLogitsError(size_t index, absl::string_view field,
                               const absl::Status& status) {
  if (status.ok()) return status;
  absl::string_view message = status.message();
  const std::string prefix = absl::StrCat("rows[", index, "].logits");
  if (!absl::ConsumePrefix(&message, prefix)) return status;
  return absl::Status(status.code(), absl::StrCat("rows[", index, "].", field, message));
}

absl::Status DecodeVerifyRow(const v1::VerifyRow& row, size_t index, const Limits& limits,
                             absl::FunctionRef<uint64_t()> pick_seed,
                             SharedMemoryResolver resolve_region, DecodedVerifyRow* out) {
  const int k = row.draft_token_ids_size();
  if (k > limits.max_draft_tokens) {
    return Invalid(index, "draft_token_ids",
                   absl::StrCat(k, " draft tokens exceed the server limit max_draft_tokens=",
                                limits.max_draft_tokens));
  }
  if (row.target_logits_size() != k + 1) {
    return Invalid(index, "target_logits",
                   absl::StrCat("want k + 1 = ", k + 1, " rows, got ",
                                row.target_logits_size()));
  }
  if (row.draft_probs_size() != 0 && row.draft_probs_size() != k) {
    return Invalid(index, "draft_probs",
                   absl::StrCat("want k = ", k, " rows or none, got ", row.draft_probs_size()));
  }
  out->target_logits.resize(k + 1);
  out->target_regions.assign(k + 1, nullptr);
  DecodedRow slot;  // DecodeLogits' output, one Logits at a time
  for (int i = 0; i <= k; ++i) {
    const std::string field = absl::StrCat("target_logits[", i, "]");
    absl::Status status = RenameLogitsError(
        index, field, DecodeLogits(row.target_logits(i), index, limits, resolve_region, &slot));
    if (!status.ok()) return status;
    out->target_logits[i] = slot.logits;
    out->target_regions[i] = std::move(slot.shared_memory);
    if (out->target_logits[i].size != out->target_logits[0].size) {
      return Invalid(index, field,
                     absl::StrCat("vocabulary size ", out->target_logits[i].size,
                                  " differs from target_logits[0]'s ",
                                  out->target_logits[0].size));
    }
  }
  const size_t vocab = out->target_logits[0].size;
  const int num_samples = row.params().num_samples();
  if (num_samples != 0 && num_samples != 1) {
    return Invalid(index, "params.num_samples",
                   absl::StrCat("must be 0 or 1 in Verify (one token per position), got ",
                                num_samples));
  }
  DecodedRow& base = out->row;
  base.index = index;
  base.has_logits = true;
  base.logits = out->target_logits[0];
  base.step = row.step();
  base.sequence_id = row.sequence_id();
  base.context_token_ids = absl::MakeConstSpan(row.context_token_ids().data(),
                                               row.context_token_ids_size());
  absl::Status status = DecodeParams(row.params(), index, limits, pick_seed, &base);
  if (status.ok()) status = DecodeOutputParams(row.params(), index, &base);
  if (!status.ok()) return status;
  if (row.params().return_kept_set()) {
    return Invalid(index, "params.return_kept_set",
                   "not available in Verify (a VerifyResult has no kept_set), got true");
  }
  base.params.context_token_ids = base.context_token_ids;
  status = RowError(index, sampler::ValidateParams(base.params, vocab));
  if (!status.ok()) return status;
  out->draft_token_ids = absl::MakeConstSpan(row.draft_token_ids().data(), k);
  for (int i = 0; i < k; ++i) {
    const int32_t id = row.draft_token_ids(i);
    if (id < 0 || static_cast<size_t>(id) >= vocab) {
      return Invalid(index, absl::StrCat("draft_token_ids[", i, "]"),
                     absl::StrCat("token id ", id, " out of range [0, ", vocab, ")"));
    }
  }
  out->draft_probs.resize(row.draft_probs_size());
  for (int i = 0; i < row.draft_probs_size(); ++i) {
    const std::string field = absl::StrCat("draft_probs[", i, "]");
    status = RenameLogitsError(
        index, field, DecodeLogits(row.draft_probs(i), index, limits, resolve_region, &slot));
    if (!status.ok()) return status;
    out->draft_probs[i] = slot.logits;
    if (slot.shared_memory != nullptr) {
      // Read once here (validation and every later read use this private copy): the
      // region's owner may rewrite it at any time.
      sampler::LogitsView copy;
      status = RenameLogitsError(
          index, field,
          CopyRowToPrivate(*slot.shared_memory, slot.logits,
                           absl::StrCat("rows[", index, "].logits.shared_memory"), &copy));
      if (!status.ok()) return status;
      const char* bytes = static_cast<const char*>(copy.data);
      out->draft_storage.emplace_back(
          bytes, bytes + copy.size * (copy.dtype == sampler::Dtype::kFloat32 ? 4 : 2));
      out->draft_probs[i].data = out->draft_storage.back().data();
    }
    if (out->draft_probs[i].size != vocab) {
      return Invalid(index, field,
                     absl::StrCat("vocabulary size ", out->draft_probs[i].size,
                                  " differs from target_logits[0]'s ", vocab));
    }
    status = RowError(index, sampler::ValidateDraftProbs(field, out->draft_probs[i],
                                                         row.draft_token_ids(i)));
    if (!status.ok()) return status;
  }
  out->context_and_drafts.assign(base.context_token_ids.begin(), base.context_token_ids.end());
  out->context_and_drafts.insert(out->context_and_drafts.end(), out->draft_token_ids.begin(),
                                 out->draft_token_ids.end());
  return absl::OkStatus();
}

}  // namespace

sampler::SamplingParams DecodedVerifyRow::ParamsAt(size_t position) const {
  return sampler::ParamsAtPosition(row.params, context_and_drafts,
                                   row.context_token_ids.size(), position);
}

absl::Status DecodeVerifyRequest(const v1::VerifyRequest& request, const Limits& limits,
                                 absl::FunctionRef<uint64_t()> pick_seed,
                                 std::vector<DecodedVerifyRow>* rows,
                                 SharedMemoryResolver resolve_region) {
  const int n = request.rows_size();
  absl::Status count = CheckRowCount(n, limits);
  if (!count.ok()) return count;
  rows->clear();
  rows->resize(n);
  for (int i = 0; i < n; ++i) {
    absl::Status status =
        DecodeVerifyRow(request.rows(i), i, limits, pick_seed, resolve_region, &(*rows)[i]);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

void EncodeVerifyResult(const sampler::VerifyResult& result, uint64_t seed, uint64_t step,
                        absl::string_view sequence_id, v1::VerifyResult* out) {
  out->mutable_tokens()->Reserve(static_cast<int>(result.tokens.size()));
  for (const sampler::Sample& token : result.tokens) EncodeSample(token, out->add_tokens());
  out->set_num_accepted(result.num_accepted);
  out->set_seed(seed);
  out->set_step(step);
  out->set_sequence_id(std::string(sequence_id));
}

void EncodeSampleResult(const sampler::SampleResult& result, uint64_t seed,
                        uint64_t step, absl::string_view sequence_id,
                        v1::SampleResult* out) {
  out->set_seed(seed);
  out->set_step(step);
  out->set_sequence_id(std::string(sequence_id));
  if (result.mirostat_mu.has_value()) out->set_mirostat_mu(*result.mirostat_mu);
  out->mutable_samples()->Reserve(static_cast<int>(result.samples.size()));
  for (const sampler::Sample& sample : result.samples) EncodeSample(sample, out->add_samples());
  if (!result.kept_set.empty()) {
    out->set_kept_set(result.kept_set.data(), result.kept_set.size());
  }
}

void EncodeDistribution(const sampler::DistributionResult& result,
                        absl::string_view sequence_id, v1::Distribution* out) {
  out->mutable_token_ids()->Add(result.token_ids.begin(), result.token_ids.end());
  out->mutable_probs()->Add(result.probs.begin(), result.probs.end());
  out->set_sequence_id(std::string(sequence_id));
}

void EncodeServerLimits(const Limits& limits, int64_t max_message_bytes, int32_t worker_threads,
                        const SharedMemoryOptions& shared_memory, v1::ServerInfo* out) {
  out->set_simd_target(sampler::SimdTargetName());
  out->add_presets(v1::PRESET_STANDARD);
  out->add_presets(v1::PRESET_HF);
  out->add_presets(v1::PRESET_LLAMA_CPP);
  out->add_presets(v1::PRESET_VLLM);
  out->set_max_vocab(limits.max_vocab);
  out->set_max_rows_per_request(limits.max_rows);
  out->set_max_message_bytes(max_message_bytes);
  out->set_max_sequences_per_stream(limits.max_sequences);
  out->set_max_history_tokens(limits.max_history_tokens);
  out->set_max_num_samples(limits.max_num_samples);
  out->set_max_top_logprobs(sampler::kMaxTopLogprobs);
  out->set_max_draft_tokens(limits.max_draft_tokens);
  out->set_worker_threads(worker_threads);
  out->add_dtypes(v1::DTYPE_FLOAT32);
  out->add_dtypes(v1::DTYPE_BFLOAT16);
  out->add_dtypes(v1::DTYPE_FLOAT16);
  switch (shared_memory.mode) {
    case SharedMemoryMode::kOff:
      out->set_shared_memory_mode(v1::SHARED_MEMORY_MODE_OFF);
      break;
    case SharedMemoryMode::kLocal:
      out->set_shared_memory_mode(v1::SHARED_MEMORY_MODE_LOCAL);
      break;
    case SharedMemoryMode::kAny:
      out->set_shared_memory_mode(v1::SHARED_MEMORY_MODE_ANY);
      break;
  }
  out->set_shared_memory_prefix(shared_memory.prefix);
  out->set_max_shared_memory_regions(shared_memory.max_regions);
  out->set_max_shared_memory_bytes(shared_memory.max_bytes);
  for (const char* name : {"logit_bias", "allowed_token_ids", "banned_token_ids",
                           "repetition_penalty", "presence_penalty", "frequency_penalty",
                           "penalty_last_n", "dry", "top_n_sigma", "temperature", "dynatemp_range",
                           "top_k", "top_p", "min_p", "typical_p", "xtc_probability", "mirostat",
                           "allowed_token_bitmask", "bad_words", "no_repeat_ngram_size",
                           "min_tokens"}) {
    out->add_samplers(name);
  }
}

}  // namespace tokensampler::server
