// SampleStream message sequences against StreamSession, the way the service runs them:
// each message is decoded (stream rules), prepared against the live sequences, its rows
// sampled, then committed, or aborted when sampling fails (or, at random, as a
// cancelled call would). Sequence ids come from a small set so that messages open,
// step, end and reuse the same sequences in any order. Checked after every message:
// the limits hold, a failed or aborted message changed nothing, and a committed one
// advanced exactly its sequences by one step.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "sampler/sampler.h"
#include "server/codec.h"
#include "server/stream_session.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_setup.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler {
namespace {

constexpr const char* kIds[] = {"a", "b", "c", "d", "e", ""};

// The fuzzer's bytes as a stream of choices (zeros once they run out). Own and small,
// so that the gcc build's corpus replay needs nothing from clang.
class FuzzedDataProvider {
 public:
  FuzzedDataProvider(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t remaining_bytes() const { return size_ - pos_; }

  template <typename T>
  T ConsumeIntegral() {
    T value = 0;
    for (size_t i = 0; i < sizeof(T) && pos_ < size_; ++i) {
      value = static_cast<T>((static_cast<uint64_t>(value) << 8) | data_[pos_++]);
    }
    return value;
  }

  // A value in [lo, hi] from as few bytes as the range needs.
  template <typename T>
  T ConsumeIntegralInRange(T lo, T hi) {
    const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
    uint64_t raw = 0;
    for (uint64_t seen = 0; seen < range && pos_ < size_; seen = (seen << 8) | 0xff) {
      raw = (raw << 8) | data_[pos_++];
    }
    return static_cast<T>(static_cast<uint64_t>(lo) +
                          (range == UINT64_MAX ? raw : raw % (range + 1)));
  }

  bool ConsumeBool() { return (ConsumeIntegral<uint8_t>() & 1) != 0; }

  template <typename T>
  T ConsumeFloatingPoint() {
    const uint32_t bits = ConsumeIntegral<uint32_t>();
    float value;
    std::memcpy(&value, &bits, sizeof(value));
    return static_cast<T>(value);
  }

  std::string ConsumeRandomLengthString(size_t max_length) {
    const size_t length =
        std::min(ConsumeIntegralInRange<size_t>(0, max_length), remaining_bytes());
    std::string out(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

float Logit(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 15)) {
    case 0:
      return -std::numeric_limits<float>::infinity();
    case 1:
      return in.ConsumeFloatingPoint<float>();  // anything, NaN and inf included
    default:
      return static_cast<float>(in.ConsumeIntegralInRange<int>(-40, 40)) / 4;
  }
}

// One message built from the fuzzer's choices; or, now and then, raw bytes parsed as one.
v1::SampleRequest Message(FuzzedDataProvider& in) {
  v1::SampleRequest message;
  if (in.ConsumeIntegralInRange<int>(0, 9) == 0) {
    message.ParseFromString(in.ConsumeRandomLengthString(256));
    return message;
  }
  const int rows = in.ConsumeIntegralInRange<int>(0, 4);
  for (int r = 0; r < rows; ++r) {
    v1::Row* row = message.add_rows();
    row->set_sequence_id(kIds[in.ConsumeIntegralInRange<size_t>(0, std::size(kIds) - 1)]);
    row->set_end_sequence(in.ConsumeIntegralInRange<int>(0, 3) == 0);
    if (in.ConsumeIntegralInRange<int>(0, 7) != 0) {
      const int vocab = in.ConsumeIntegralInRange<int>(1, 24);
      for (int v = 0; v < vocab; ++v) row->mutable_logits()->add_values(Logit(in));
    }
    const int context = in.ConsumeIntegralInRange<int>(0, 4);
    for (int c = 0; c < context; ++c) {
      row->add_context_token_ids(in.ConsumeIntegralInRange<int32_t>(-1, 25));
    }
    v1::SamplingParams* params = row->mutable_params();
    if (in.ConsumeBool()) params->set_temperature(in.ConsumeIntegralInRange<int>(0, 8) / 4.0f);
    if (in.ConsumeBool()) params->set_top_k(in.ConsumeIntegralInRange<int32_t>(-1, 30));
    if (in.ConsumeBool()) params->set_top_p(in.ConsumeIntegralInRange<int>(0, 5) / 4.0f);
    if (in.ConsumeBool())
      params->set_repetition_penalty(in.ConsumeIntegralInRange<int>(0, 8) / 4.0f);
    if (in.ConsumeBool()) params->set_frequency_penalty(in.ConsumeIntegralInRange<int>(-4, 4));
    if (in.ConsumeBool()) params->set_seed(in.ConsumeIntegral<uint64_t>());
    if (in.ConsumeBool()) params->set_num_samples(in.ConsumeIntegralInRange<int32_t>(0, 3));
  }
  return message;
}

struct Snapshot {
  uint64_t next_step;
  size_t history;
};

// The state of the sequences named in kIds or in `message` (raw-bytes messages bring
// ids of their own).
std::map<std::string, Snapshot> Take(const server::StreamSession& session,
                                     const v1::SampleRequest& message) {
  std::vector<std::string> ids(std::begin(kIds), std::end(kIds));
  for (const v1::Row& row : message.rows()) ids.push_back(row.sequence_id());
  std::map<std::string, Snapshot> out;
  for (const std::string& id : ids) {
    if (const std::vector<int32_t>* history = session.History(id); history != nullptr) {
      out[id] = {static_cast<uint64_t>(session.NextStep(id)), history->size()};
    }
  }
  return out;
}

bool SameState(const std::map<std::string, Snapshot>& a, const std::map<std::string, Snapshot>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [id, s] : a) {
    auto it = b.find(id);
    if (it == b.end() || it->second.next_step != s.next_step || it->second.history != s.history) {
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace tokensampler

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokensampler;  // NOLINT(build/namespaces): a fuzz entry point
  sampler::Sampler* const sampler = &fuzz::FuzzSampler();
  FuzzedDataProvider in(data, size);
  server::Limits limits;
  limits.max_rows = 8;
  limits.max_vocab = 64;
  limits.max_sequences = 3;
  limits.max_history_tokens = 24;
  server::StreamSession session(limits);
  uint64_t seeds = 0;
  for (int step = 0; step < 64 && in.remaining_bytes() > 0; ++step) {
    const v1::SampleRequest message = Message(in);
    const auto before = Take(session, message);
    std::vector<server::DecodedRow> rows;
    absl::Status status = server::DecodeRequest(
        message, limits, server::RequestKind::kStream, [&seeds] { return ++seeds; }, &rows);
    if (status.ok()) status = session.Prepare(&rows);
    if (!status.ok()) {
      FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument ||
                 status.code() == absl::StatusCode::kResourceExhausted);
      FUZZ_CHECK(SameState(before, Take(session, message)));
      continue;
    }
    std::vector<sampler::SampleResult> results(rows.size());
    bool sampled = true;
    for (const server::DecodedRow& row : rows) {
      if (!row.has_logits) continue;
      const absl::Status s = sampler->Sample(row.logits, row.params, row.step, &results[row.index]);
      FUZZ_CHECK(s.ok() || s.code() == absl::StatusCode::kInvalidArgument);
      sampled &= s.ok();
    }
    if (!sampled || in.ConsumeIntegralInRange<int>(0, 15) == 0) {
      session.Abort(rows);
      FUZZ_CHECK(SameState(before, Take(session, message)));
      continue;
    }
    session.Commit(rows, results);
    const auto after = Take(session, message);
    FUZZ_CHECK(session.live_sequences() <= static_cast<size_t>(limits.max_sequences));
    for (const server::DecodedRow& row : rows) {
      const std::string id(row.sequence_id);
      auto it = after.find(id);
      if (row.end_sequence) {
        FUZZ_CHECK(it == after.end());
        continue;
      }
      FUZZ_CHECK(row.has_logits);  // a row without logits must end its sequence
      FUZZ_CHECK(it != after.end());
      auto was = before.find(id);
      FUZZ_CHECK(it->second.next_step == (was == before.end() ? 1 : was->second.next_step + 1));
      FUZZ_CHECK(it->second.history <= static_cast<size_t>(limits.max_history_tokens));
      FUZZ_CHECK(!results[row.index].samples.empty());
      FUZZ_CHECK(results[row.index].samples[0].token_id >= 0 &&
                 static_cast<size_t>(results[row.index].samples[0].token_id) < row.logits.size);
    }
  }
  return 0;
}
