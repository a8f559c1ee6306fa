// Arbitrary bytes as a SampleRequest, the way the service takes them: parse, decode and
// validate every row (stateless and stream rules), then sample and build the
// distribution of every row that passed. Any outcome but OK, INVALID_ARGUMENT,
// RESOURCE_EXHAUSTED (or PERMISSION_DENIED for a row in shared memory, which this server
// has off), an error without its field path, an answer that breaks its contract, or a
// crash is a finding.
#include <cstdint>
#include <vector>

#include "absl/strings/match.h"
#include "sampler/sampler.h"
#include "server/codec.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_rows.h"
#include "tests/fuzz/fuzz_setup.h"
#include "tokensampler/v1/sampler.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokensampler;  // NOLINT(build/namespaces): a fuzz entry point
  sampler::Sampler* const sampler = &fuzz::FuzzSampler();
  v1::SampleRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  server::Limits limits;
  limits.max_rows = 64;
  limits.max_vocab = 1 << 16;
  for (server::RequestKind kind : {server::RequestKind::kStateless, server::RequestKind::kStream}) {
    std::vector<server::DecodedRow> rows;
    uint64_t seeds = 0;
    const absl::Status status = server::DecodeRequest(
        request, limits, kind, [&seeds] { return ++seeds; }, &rows);
    FUZZ_CHECK(fuzz::DecodeStatus(status));
    if (!status.ok()) {
      FUZZ_CHECK(absl::StartsWith(status.message(), "rows"));  // the field path
      continue;
    }
    FUZZ_CHECK(rows.size() == static_cast<size_t>(request.rows_size()));
    for (const server::DecodedRow& row : rows) {
      if (row.has_logits) fuzz::CheckSampleRow(*sampler, row.logits, row.params, row.step);
    }
  }
  return 0;
}
