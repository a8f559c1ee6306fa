// What a draw reports besides its token (README, "API": the sampling parameters table):
// the alternatives, the chosen tokens' values under the logprobs mode, the rank, and the
// kept set.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "sampler/kernels.h"
#include "sampler/sampler_impl.h"
#include "sampler/stages/bitmask.h"

namespace tokensampler::sampler {

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();
}  // namespace

void Sampler::Impl::Alternatives(const SamplingParams& params,
                                 ::tokensampler::sampler::Sample* out) {
  const LogprobsMode mode = params.logprobs_mode;
  std::vector<TokenLogprob>& top = out->top_logprobs;
  if (ReadsRawLogits(mode)) {
    RawTopLogprobs(params.top_logprobs, &top);
  } else {
    dist.TopLogprobs(params.top_logprobs, &top);
  }
  if (mode == LogprobsMode::kRawLogits || mode == LogprobsMode::kProcessedLogits) {
    for (TokenLogprob& t : top) t.logprob = ValueOf(t.token_id, mode);
  }
  std::vector<TokenLogprob>& asked = out->token_logprobs;
  asked.clear();
  for (int32_t id : params.logprob_token_ids) asked.push_back({id, ValueOf(id, mode)});
}

void Sampler::Impl::RawTopLogprobs(int32_t count, std::vector<TokenLogprob>* out) {
  out->clear();
  if (count <= 0) return;
  const size_t vocab = ws.vocab;
  const size_t want = std::min(static_cast<size_t>(count), vocab);
  RawRow();
  // (logit, id) in out's fields, best first; scanning ids in ascending order and
  // inserting only strictly better values breaks ties by id.
  for (size_t i = 0; i < vocab; ++i) {
    const float value = raw_z[i];
    if (out->size() == want && !(value > out->back().logprob)) continue;
    auto pos = out->end();
    while (pos != out->begin() && value > (pos - 1)->logprob) --pos;
    if (out->size() == want) out->pop_back();
    out->insert(pos, TokenLogprob{static_cast<int32_t>(i), value});
  }
  for (TokenLogprob& t : *out) {
    t.logprob = static_cast<float>(static_cast<double>(t.logprob) - raw_lse);
  }
}

const float* Sampler::Impl::RawRow() {
  if (raw_z == nullptr) {
    // Scan a decoded copy of the caller's row rather than decode element by element.
    raw.resize(ws.vocab);
    float ignored;
    kernels::DecodeAndMax(raw_row, raw.data(), &ignored);
    raw_z = raw.data();
  }
  return raw_z;
}

float Sampler::Impl::ValueOf(int32_t id, LogprobsMode mode) {
  switch (mode) {
    case LogprobsMode::kRaw:
      return static_cast<float>(static_cast<double>(RawLogit(id)) - raw_lse);
    case LogprobsMode::kRawLogits:
      return RawLogit(id);
    case LogprobsMode::kProcessed:
      if (dist.one_hot()) return id == dist.token() ? 0.0f : -kInf;
      return static_cast<float>(std::log(static_cast<double>(dist.Prob(id))));
    case LogprobsMode::kProcessedLogits:
    default: {
      if (dist.Prob(id) == 0.0f) return -kInf;
      // Greedy's fast path reads the caller's row and sets no z: the logit is the raw one.
      const float logit = ws.z != nullptr ? ws.z[id] : RawLogit(id);
      return dist.one_hot() ? logit : logit / processed_temperature;
    }
  }
}

int32_t Sampler::Impl::Rank(int32_t id, LogprobsMode mode) {
  int32_t count = 0;
  if (mode == LogprobsMode::kRaw || mode == LogprobsMode::kRawLogits) {
    // The raw logprob order is the raw logit order: one counting pass over the row.
    const float* row = RawRow();
    const float v = row[id];
    for (size_t i = 0; i < ws.vocab; ++i) count += row[i] >= v;
    return count;
  }
  if (dist.one_hot()) return 1;
  // Processed: only the support can tie or beat a drawn token (p > 0).
  const bool by_logit = mode == LogprobsMode::kProcessedLogits;
  const float v = by_logit ? ValueOf(id, mode) : dist.Prob(id);
  const absl::Span<const float> weights = dist.weights();
  const double total = dist.total();  // a local: the loop keeps 1 / total in a register
  for (size_t i = 0; i < weights.size(); ++i) {
    const float p = kernels::ProbOf(weights[i], total);
    if (p > 0.0f) {
      count += (by_logit ? ws.z[dist.id_at(i)] / processed_temperature : p) >= v;
    }
  }
  return count;
}

void Sampler::Impl::KeptSet(std::string* out) const {
  out->assign(stages::BitmaskBytes(ws.vocab), '\0');
  uint8_t* bits = reinterpret_cast<uint8_t*>(&(*out)[0]);
  if (dist.one_hot()) {
    stages::BitmaskSet(bits, static_cast<size_t>(dist.token()));
    return;
  }
  // The probability inline (ProbOf, the bits Prob gives): one pass, a dense row's bits
  // from SIMD compares (kernels::PositiveBits), a sparse one's entry by entry.
  const absl::Span<const float> weights = dist.weights();
  const double total = dist.total();
  if (dist.dense()) {
    kernels::PositiveBits(weights.data(), weights.size(), total, bits);
    return;
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    if (kernels::ProbOf(weights[i], total) > 0.0f) {
      stages::BitmaskSet(bits, static_cast<size_t>(dist.id_at(i)));
    }
  }
}

}  // namespace tokensampler::sampler
