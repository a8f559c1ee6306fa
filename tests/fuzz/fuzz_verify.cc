// VerifyRequest decoding, validation and verification, the way the Verify RPC runs them:
// decode every row (shapes, ids, params, draft probabilities), then verify each row
// position by position and hold the result to its contract (tests/fuzz/fuzz_rows.h).
//
// The first byte picks how the rest becomes a request: even, the bytes are parsed as a
// VerifyRequest (every field reachable, as fuzz_request does for SampleRequest); odd, a
// request is built from the bytes as choices, so that the deep paths (k + 1 rows of one
// V, drafts in range, draft probabilities that sum to 1, in every dtype) are reached
// often, with one defect or another now and then. Any outcome but OK, INVALID_ARGUMENT,
// RESOURCE_EXHAUSTED (or PERMISSION_DENIED for a row in shared memory, off here), an
// error without its field path, or a crash is a finding.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "sampler/sampler.h"
#include "server/codec.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_data.h"
#include "tests/fuzz/fuzz_messages.h"
#include "tests/fuzz/fuzz_rows.h"
#include "tests/fuzz/fuzz_setup.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::fuzz {
namespace {

constexpr int kMaxDraftTokens = 8;  // the harness's server limit; k goes one past it

// A VerifyRequest from the bytes as choices: up to 4 rows of k in [0, 9] drafts over a V
// of 1-48 (sometimes up to 1100, past a few SIMD vectors), mostly well-formed.
v1::VerifyRequest BuildRequest(FuzzedDataProvider& in) {
  v1::VerifyRequest request;
  const int rows = in.ConsumeIntegralInRange<int>(0, 4);
  for (int r = 0; r < rows; ++r) {
    v1::VerifyRow* row = request.add_rows();
    const int32_t vocab = in.ConsumeIntegralInRange<int>(0, 15) == 0
                              ? in.ConsumeIntegralInRange<int32_t>(1, 1100)
                              : in.ConsumeIntegralInRange<int32_t>(1, 48);
    const int k = in.ConsumeIntegralInRange<int>(0, kMaxDraftTokens + 1);
    // k + 1 target rows, now and then one more or one fewer, or one of another V.
    const int shape = in.ConsumeIntegralInRange<int>(0, 31);
    const int targets = shape == 0 ? k : shape == 1 ? k + 2 : k + 1;
    for (int i = 0; i < targets; ++i) {
      const size_t size = shape == 2 && i == targets - 1 ? vocab + 1 : vocab;
      std::vector<float> values(size);
      for (float& v : values) v = ConsumeLogit(in);
      PutLogits(in, values, row->add_target_logits());
    }
    for (int i = 0; i < k; ++i) {
      const bool out_of_range = in.ConsumeIntegralInRange<int>(0, 31) == 0;
      row->add_draft_token_ids(out_of_range ? (in.ConsumeBool() ? -1 : vocab)
                                            : in.ConsumeIntegralInRange<int32_t>(0, vocab - 1));
    }
    // Draft probabilities: none (one-hot drafts), k rows, or now and then a wrong count.
    const int drafts = in.ConsumeIntegralInRange<int>(0, 2);
    const int draft_rows = drafts == 0 ? 0 : in.ConsumeIntegralInRange<int>(0, 31) == 0 ? k + 1 : k;
    for (int i = 0; i < draft_rows; ++i) {
      const int32_t token = i < k ? row->draft_token_ids(i) : 0;
      const int32_t at = token >= 0 && token < vocab ? token : 0;
      PutLogits(in, DraftProbs(in, vocab, at), row->add_draft_probs());
    }
    PutParams(in, vocab, row->mutable_params());
    const int context = in.ConsumeIntegralInRange<int>(0, 4);
    for (int c = 0; c < context; ++c) {
      row->add_context_token_ids(in.ConsumeIntegralInRange<int32_t>(-1, vocab));
    }
    row->set_step(in.ConsumeBool() ? in.ConsumeIntegral<uint64_t>()
                                   : in.ConsumeIntegralInRange<uint64_t>(0, 64));
    row->set_sequence_id(in.ConsumeRandomLengthString(4));
  }
  return request;
}

}  // namespace
}  // namespace tokensampler::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokensampler;  // NOLINT(build/namespaces): a fuzz entry point
  sampler::Sampler* const sampler = &fuzz::FuzzSampler();
  if (size == 0) return 0;
  v1::VerifyRequest request;
  if ((data[0] & 1) == 0) {
    if (!request.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  } else {
    fuzz::FuzzedDataProvider in(data + 1, size - 1);
    request = fuzz::BuildRequest(in);
  }
  server::Limits limits;
  limits.max_rows = 8;
  limits.max_vocab = 2048;
  limits.max_num_samples = 4;
  limits.max_draft_tokens = fuzz::kMaxDraftTokens;
  std::vector<server::DecodedVerifyRow> rows;
  uint64_t seeds = 0;
  const absl::Status status = server::DecodeVerifyRequest(
      request, limits, [&seeds] { return ++seeds; }, &rows);
  FUZZ_CHECK(fuzz::DecodeStatus(status));
  if (!status.ok()) {
    FUZZ_CHECK(absl::StartsWith(status.message(), "rows"));  // the field path
    return 0;
  }
  FUZZ_CHECK(rows.size() == static_cast<size_t>(request.rows_size()));
  for (size_t r = 0; r < rows.size(); ++r) {
    const server::DecodedVerifyRow& row = rows[r];
    FUZZ_CHECK(row.row.index == r);
    FUZZ_CHECK(row.draft_token_ids.size() <= static_cast<size_t>(limits.max_draft_tokens));
    for (size_t i = 0; i < row.draft_token_ids.size(); ++i) {
      FUZZ_CHECK(row.draft_token_ids[i] >= 0 &&
                 static_cast<size_t>(row.draft_token_ids[i]) < row.target_logits[0].size);
    }
    fuzz::CheckVerifyRow(*sampler, row, row.target_logits);
  }
  return 0;
}
