// Arbitrary bytes as a SampleRequest, the way the service takes them: parse, decode and
// validate every row (stateless and stream rules), then sample and build the
// distribution of every row that passed. Any outcome but OK, INVALID_ARGUMENT or
// RESOURCE_EXHAUSTED, an answer that breaks its contract, or a crash is a finding.
#include <cmath>
#include <cstdint>
#include <vector>

#include "sampler/sampler.h"
#include "server/codec.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_setup.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler {
namespace {

bool Expected(const absl::Status& status) {
  return status.ok() || status.code() == absl::StatusCode::kInvalidArgument ||
         status.code() == absl::StatusCode::kResourceExhausted;
}

void CheckRow(sampler::Sampler& sampler, const server::DecodedRow& row) {
  const int32_t vocab = static_cast<int32_t>(row.logits.size);
  sampler::SampleResult result;
  absl::Status status = sampler.Sample(row.logits, row.params, row.step, &result);
  FUZZ_CHECK(Expected(status));
  if (status.ok()) {
    FUZZ_CHECK(!result.samples.empty());
    for (const sampler::Sample& s : result.samples) {
      FUZZ_CHECK(s.token_id >= 0 && s.token_id < vocab);
      FUZZ_CHECK(!std::isnan(s.logprob));
      // The *_LOGITS modes return logit values there, which may be positive.
      const bool log_probability = row.params.logprobs_mode == sampler::LogprobsMode::kRaw ||
                                   row.params.logprobs_mode == sampler::LogprobsMode::kProcessed;
      FUZZ_CHECK(!log_probability || s.logprob <= 0);
    }
  }
  sampler::DistributionResult distribution;
  status = sampler.Distribution(row.logits, row.params, &distribution);
  FUZZ_CHECK(Expected(status));
  if (status.ok()) {
    FUZZ_CHECK(distribution.token_ids.size() == distribution.probs.size());
    FUZZ_CHECK(!distribution.probs.empty());
    double sum = 0;
    for (size_t i = 0; i < distribution.probs.size(); ++i) {
      FUZZ_CHECK(distribution.token_ids[i] >= 0 && distribution.token_ids[i] < vocab);
      FUZZ_CHECK(distribution.probs[i] > 0);
      FUZZ_CHECK(i == 0 || distribution.probs[i] <= distribution.probs[i - 1]);
      sum += distribution.probs[i];
    }
    FUZZ_CHECK(std::abs(sum - 1) < 1e-3);
  }
}

}  // namespace
}  // namespace tokensampler

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
    FUZZ_CHECK(Expected(status));
    if (!status.ok()) {
      FUZZ_CHECK(!status.message().empty());
      continue;
    }
    FUZZ_CHECK(rows.size() == static_cast<size_t>(request.rows_size()));
    for (const server::DecodedRow& row : rows) {
      if (row.has_logits) CheckRow(*sampler, row);
    }
  }
  return 0;
}
