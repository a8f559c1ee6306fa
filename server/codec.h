// The request codec: the one place that knows both the v1 protobuf messages and the
// sampler library. It validates a request once, decodes each Row into sampler inputs
// that view the request's own memory (no per-logit copy), and encodes results back.
//
// Every error is an absl::Status whose message starts with the field path from the
// request root, then the rule and the offending value:
//   "rows[3].params.top_p: must be in (0, 1], got 1.5"
#ifndef TOKENSAMPLER_SERVER_CODEC_H_
#define TOKENSAMPLER_SERVER_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sampler/params.h"
#include "sampler/sampler.h"
#include "sampler/verify.h"
#include "server/limits.h"
#include "server/shared_memory.h"

namespace tokensampler::v1 {
class Row;
class SampleRequest;
class SampleResult;
class Distribution;
class ServerInfo;
class VerifyRequest;
class VerifyResult;
}  // namespace tokensampler::v1

namespace tokensampler::server {

enum class RequestKind {
  kStateless,  // Sample / GetDistribution: every row needs logits
  kStream,     // SampleStream: sequence_id required and unique; logits optional with
               // end_sequence
};

// One decoded row. Views point into the request it was decoded from (logits, id lists,
// sequence_id) or into this struct (logit_bias), so the request must outlive it and
// the struct must not be copied (moving is fine: vector buffers move with it).
struct DecodedRow {
  DecodedRow() = default;
  DecodedRow(DecodedRow&&) = default;
  DecodedRow& operator=(DecodedRow&&) = default;
  DecodedRow(const DecodedRow&) = delete;
  DecodedRow& operator=(const DecodedRow&) = delete;

  size_t index = 0;           // position in SampleRequest.rows
  bool has_logits = false;    // false only for a stream row that just ends a sequence
  sampler::LogitsView logits;
  // Defaults mapped, ValidateParams passed. params.seed is the caller's or a picked
  // one; params.context_token_ids views the row's context_token_ids (a stream replaces
  // it with the sequence's history).
  sampler::SamplingParams params;
  bool seed_given = false;    // params.seed came from the caller
  uint64_t step = 0;          // Row.step
  absl::Span<const int32_t> context_token_ids;  // the row's own context
  absl::string_view sequence_id;
  bool end_sequence = false;
  std::vector<sampler::LogitBias> logit_bias;   // storage behind params.logit_bias
  // Storage behind params.dry.sequence_breakers (views into the request).
  std::vector<absl::Span<const int32_t>> dry_breakers;
  // Row.num_prompt_tokens: the first ones of context_token_ids are the prompt.
  size_t num_prompt_tokens = 0;
  // Storage behind params.bad_words (views of the request's sequences).
  std::vector<absl::Span<const int32_t>> bad_words;
  // Set when the logits are in a shared memory region (Logits.shared_memory): `logits`
  // then points into this mapping, which the row keeps alive. Such a row must be read
  // only through CopyRowToPrivate (the owner may rewrite or shrink it at any time).
  std::shared_ptr<const SharedMemoryMapping> shared_memory;
};

// One decoded Verify row. Views point into the request (logits, draft probs, ids,
// sequence_id) or into this struct; the same lifetime rules as DecodedRow.
struct DecodedVerifyRow {
  // Params (num_samples 1, context_token_ids = the row's context), seed, step and
  // sequence_id; its `logits` is target_logits[0].
  DecodedRow row;
  std::vector<sampler::LogitsView> target_logits;  // k + 1, same V
  // Per position, the shared memory region target_logits[i] points into, else null:
  // such a row must be read only through CopyRowToPrivate (see DecodedRow).
  std::vector<std::shared_ptr<const SharedMemoryMapping>> target_regions;
  std::vector<sampler::LogitsView> draft_probs;    // k, or empty (one-hot drafts)
  // Private copies of draft rows sent in shared memory (read once, at decode time);
  // draft_probs views them. Moving the struct keeps the buffers where they are.
  std::deque<std::vector<char>> draft_storage;
  absl::Span<const int32_t> draft_token_ids;       // k
  // The row's context then its draft tokens: position i's penalties see the first
  // row.context_token_ids.size() + i of them.
  std::vector<int32_t> context_and_drafts;

  size_t positions() const { return target_logits.size(); }
  // Position i's parameters (its context ends with draft tokens 0..i-1).
  sampler::SamplingParams ParamsAt(size_t position) const;
};


void EncodeVerifyResult(const sampler::VerifyResult& result, uint64_t seed, uint64_t step,
                        absl::string_view sequence_id, v1::VerifyResult* out);
// Looks up Logits.shared_memory.region for the codec: the region's mapping, or an error
// (PERMISSION_DENIED when shared memory is off or the caller may not use it, NOT_FOUND
// for an unknown name) whose message the codec prefixes with the field path.
using SharedMemoryResolver =
    absl::FunctionRef<absl::StatusOr<std::shared_ptr<const SharedMemoryMapping>>(
        absl::string_view region)>;

// The resolver of a server without shared memory: PERMISSION_DENIED for every region.
absl::StatusOr<std::shared_ptr<const SharedMemoryMapping>> NoSharedMemory(absl::string_view region);

// Validates and decodes every row of a Verify request: the shapes (k + 1 target rows,
// k or no draft rows, one V), the params (num_samples 0 or 1, no return_kept_set; every
// other field as for Sample, output-length stages counting the whole context as output),
// the ids and the draft
// probabilities (a draft row in shared memory is copied here, once). The target logits'
// values are checked when a position is computed.
absl::Status DecodeVerifyRequest(const v1::VerifyRequest& request, const Limits& limits,
                                 absl::FunctionRef<uint64_t()> pick_seed,
                                 std::vector<DecodedVerifyRow>* rows,
                                 SharedMemoryResolver resolve_region = &NoSharedMemory);

// Validates and decodes every row of `request`. `pick_seed` is called once for each row
// without params.seed; `resolve_region` for each row with Logits.shared_memory. On
// error `*rows` is unspecified.
absl::Status DecodeRequest(const v1::SampleRequest& request, const Limits& limits, RequestKind kind,
                           absl::FunctionRef<uint64_t()> pick_seed, std::vector<DecodedRow>* rows,
                           SharedMemoryResolver resolve_region = &NoSharedMemory);

// Decodes one row (`index` is used for error paths only).
absl::Status DecodeRow(const v1::Row& row, size_t index, const Limits& limits, RequestKind kind,
                       absl::FunctionRef<uint64_t()> pick_seed, DecodedRow* out,
                       SharedMemoryResolver resolve_region = &NoSharedMemory);

// Prefixes a sampler error for row `index` with "rows[index]." (any code kept).
absl::Status RowError(size_t index, const absl::Status& status);

// Fills a SampleResult: samples, seed and step used, sequence_id echoed.
void EncodeSampleResult(const sampler::SampleResult& result, uint64_t seed,
                        uint64_t step, absl::string_view sequence_id,
                        v1::SampleResult* out);

void EncodeDistribution(const sampler::DistributionResult& result,
                        absl::string_view sequence_id, v1::Distribution* out);

// The static part of ServerInfo: limits, presets, dtypes, SIMD target, shared memory.
void EncodeServerLimits(const Limits& limits, int64_t max_message_bytes, int32_t worker_threads,
                        const SharedMemoryOptions& shared_memory, v1::ServerInfo* out);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_CODEC_H_
