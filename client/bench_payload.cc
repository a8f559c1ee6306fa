#include "client/bench_payload.h"

#include <algorithm>
#include <utility>

#include "client/logits.h"
#include "client/varint.h"

namespace tokensampler::client {
namespace {

// Payload variants cycled through, bounded so that big batches don't use much memory.
constexpr int kMaxVariants = 4;
constexpr size_t kVariantBudgetBytes = size_t{64} << 20;

// A serialized VerifyRequest of options.rows rows, each with draft_tokens one-hot drafts
// (draft i = the argmax of target row i) and draft_tokens + 1 target rows.
grpc::ByteBuffer VerifyPayload(const BenchOptions& options, uint64_t seed) {
  const int positions = options.draft_tokens + 1;
  const std::vector<float> logits =
      RandomNormalLogits(static_cast<size_t>(options.rows) * positions, options.vocab, seed);
  v1::VerifyRequest request;
  for (int r = 0; r < options.rows; ++r) {
    v1::VerifyRow* row = request.add_rows();
    *row->mutable_params() = options.params;
    for (int i = 0; i < positions; ++i) {
      const auto z = absl::MakeConstSpan(logits).subspan(
          (static_cast<size_t>(r) * positions + i) * options.vocab, options.vocab);
      EncodeLogits(z, options.wire, row->add_target_logits());
      if (i < options.draft_tokens) {
        row->add_draft_token_ids(
            static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin()));
      }
    }
  }
  const std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

BenchPayloads MakeBenchPayloads(const BenchOptions& options, size_t request_bytes) {
  const int variants = static_cast<int>(std::clamp<size_t>(
      kVariantBudgetBytes / std::max<size_t>(request_bytes, 1), 1, kMaxVariants));
  BenchPayloads out;
  out.params = options.params.SerializeAsString();
  out.row_logits.resize(variants);
  v1::Logits encoded;
  for (int v = 0; v < variants; ++v) {
    if (options.verify) {
      out.unary.push_back(VerifyPayload(options, options.random_seed + v));
      continue;
    }
    std::vector<float> logits = RandomNormalLogits(options.rows, options.vocab,
                                                   options.random_seed + static_cast<uint64_t>(v));
    if (options.shared_memory) {
      out.float_rows.push_back(std::move(logits));
      continue;
    }
    for (int r = 0; r < options.rows; ++r) {
      EncodeLogits(absl::MakeConstSpan(logits).subspan(static_cast<size_t>(r) * options.vocab,
                                                       options.vocab),
                   options.wire, &encoded);
      out.row_logits[v].emplace_back(encoded.SerializeAsString());
    }
    out.unary.push_back(ComposeSampleRequest(out.row_logits[v], out.params, {}, false));
  }
  return out;
}

grpc::ByteBuffer ComposeSampleRequest(absl::Span<const grpc::Slice> logits,
                                      absl::string_view params,
                                      absl::Span<const std::string> sequence_ids,
                                      bool end_sequence) {
  std::vector<grpc::Slice> slices;
  slices.reserve(logits.size() * 3);
  for (size_t i = 0; i < logits.size(); ++i) {
    // Row { logits = 1; params = 2; sequence_id = 5; end_sequence = 6; }
    std::string tail;
    if (!params.empty()) AppendLengthDelimited(&tail, 2, params);
    if (!sequence_ids.empty() && !sequence_ids[i].empty()) {
      AppendLengthDelimited(&tail, 5, sequence_ids[i]);
    }
    if (end_sequence) {
      AppendVarint(&tail, (6 << 3) | 0);
      AppendVarint(&tail, 1);
    }
    const size_t logits_len = logits[i].size();
    const size_t row_len = 1 + VarintSize(logits_len) + logits_len + tail.size();
    std::string head;
    AppendVarint(&head, (1 << 3) | 2);  // SampleRequest.rows
    AppendVarint(&head, row_len);
    AppendVarint(&head, (1 << 3) | 2);  // Row.logits
    AppendVarint(&head, logits_len);
    slices.emplace_back(head);
    slices.push_back(logits[i]);
    if (!tail.empty()) slices.emplace_back(tail);
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

}  // namespace tokensampler::client
