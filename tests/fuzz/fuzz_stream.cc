// SampleStream message sequences against StreamSession, the way the service runs them:
// each message is decoded (stream rules), prepared against the live sequences, its rows
// sampled, then committed, or aborted when sampling fails (or, at random, as a
// cancelled call would). Sequence ids come from a small set so that messages open,
// step, end and reuse the same sequences in any order. Checked after every message:
// the limits hold, a failed or aborted message changed nothing, and a committed one
// advanced exactly its sequences by one step, freed the ended ones and left every other
// live sequence as it was (the harness tracks which sequences are live).
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "sampler/sampler.h"
#include "server/codec.h"
#include "server/stream_session.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_data.h"
#include "tests/fuzz/fuzz_rows.h"
#include "tests/fuzz/fuzz_setup.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler {
namespace {

constexpr const char* kIds[] = {"a", "b", "c", "d", "e", ""};

// One message built from the fuzzer's choices into `*message` (cleared first, its memory
// reused); or, now and then, raw bytes parsed as one.
void Message(fuzz::FuzzedDataProvider& in, v1::SampleRequest* message) {
  message->Clear();
  if (in.ConsumeIntegralInRange<int>(0, 9) == 0) {
    message->ParseFromString(in.ConsumeRandomLengthString(256));
    return;
  }
  const int rows = in.ConsumeIntegralInRange<int>(0, 4);
  for (int r = 0; r < rows; ++r) {
    v1::Row* row = message->add_rows();
    row->set_sequence_id(kIds[in.ConsumeIntegralInRange<size_t>(0, std::size(kIds) - 1)]);
    row->set_end_sequence(in.ConsumeIntegralInRange<int>(0, 3) == 0);
    if (in.ConsumeIntegralInRange<int>(0, 7) != 0) {
      const int vocab = in.ConsumeIntegralInRange<int>(1, 24);
      for (int v = 0; v < vocab; ++v) row->mutable_logits()->add_values(fuzz::ConsumeLogit(in));
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
}

// One sequence's state as the checks see it.
struct Snapshot {
  absl::string_view id;
  bool live = false;
  uint64_t next_step = 0;
  size_t history = 0;
};

bool Same(const Snapshot& a, const Snapshot& b) {
  return a.id == b.id && a.live == b.live && a.next_step == b.next_step && a.history == b.history;
}

// The state of the sequences the harness knows to be live, then of those `message` names,
// each id once, into `*out` (its memory reused; the ids view `live` and `message`). With
// the count of live sequences checked against `live` as well, this sees every sequence
// of the session for a few lookups (a map of all ids cost 40% of this harness's time).
void Take(const server::StreamSession& session, const std::vector<std::string>& live,
          const v1::SampleRequest& message, std::vector<Snapshot>* out) {
  out->clear();
  const auto add = [&](absl::string_view id) {
    for (const Snapshot& seen : *out) {
      if (seen.id == id) return;
    }
    Snapshot snapshot;
    snapshot.id = id;
    if (const std::vector<int32_t>* history = session.History(id); history != nullptr) {
      snapshot.live = true;
      snapshot.next_step = static_cast<uint64_t>(session.NextStep(id));
      snapshot.history = history->size();
    }
    out->push_back(snapshot);
  };
  for (const std::string& id : live) add(id);
  for (const v1::Row& row : message.rows()) add(row.sequence_id());
}

bool SameState(const std::vector<Snapshot>& a, const std::vector<Snapshot>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!Same(a[i], b[i])) return false;
  }
  return true;
}

const Snapshot& Find(const std::vector<Snapshot>& state, absl::string_view id) {
  for (const Snapshot& snapshot : state) {
    if (snapshot.id == id) return snapshot;
  }
  FUZZ_CHECK(false);  // Take saw every id of the message
  std::abort();
}

bool Names(const v1::SampleRequest& message, absl::string_view id) {
  for (const v1::Row& row : message.rows()) {
    if (row.sequence_id() == id) return true;
  }
  return false;
}

}  // namespace
}  // namespace tokensampler

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokensampler;  // NOLINT(build/namespaces): a fuzz entry point
  sampler::Sampler* const sampler = &fuzz::FuzzSampler();
  fuzz::FuzzedDataProvider in(data, size);
  server::Limits limits;
  limits.max_rows = 8;
  limits.max_vocab = 64;
  limits.max_sequences = 3;
  limits.max_history_tokens = 24;
  server::StreamSession session(limits);
  uint64_t seeds = 0;
  // Reused from message to message (the service's reactor keeps its own likewise).
  v1::SampleRequest message;
  std::vector<std::string> live;  // the sequences that must be live, as committed so far
  std::vector<Snapshot> before;
  std::vector<Snapshot> now;
  std::vector<server::DecodedRow> rows;
  std::vector<sampler::SampleResult> results;
  for (int step = 0; step < 64 && in.remaining_bytes() > 0; ++step) {
    Message(in, &message);
    Take(session, live, message, &before);
    absl::Status status = server::DecodeRequest(
        message, limits, server::RequestKind::kStream, [&seeds] { return ++seeds; }, &rows);
    if (status.ok()) status = session.Prepare(&rows);
    if (!status.ok()) {
      FUZZ_CHECK(fuzz::DecodeStatus(status));
      Take(session, live, message, &now);
      FUZZ_CHECK(SameState(before, now) && session.live_sequences() == live.size());
      continue;
    }
    results.resize(rows.size());  // Sample overwrites every field of a result it fills
    bool sampled = true;
    for (const server::DecodedRow& row : rows) {
      if (!row.has_logits) continue;
      const absl::Status s = sampler->Sample(row.logits, row.params, row.step, &results[row.index]);
      FUZZ_CHECK(s.ok() || s.code() == absl::StatusCode::kInvalidArgument);
      sampled &= s.ok();
    }
    if (!sampled || in.ConsumeIntegralInRange<int>(0, 15) == 0) {
      session.Abort(rows);
      Take(session, live, message, &now);
      FUZZ_CHECK(SameState(before, now) && session.live_sequences() == live.size());
      continue;
    }
    session.Commit(rows, results);
    Take(session, live, message, &now);
    FUZZ_CHECK(now.size() == before.size());
    for (size_t i = 0; i < now.size(); ++i) {
      if (!Names(message, now[i].id)) FUZZ_CHECK(Same(before[i], now[i]));  // untouched
    }
    for (const server::DecodedRow& row : rows) {
      const Snapshot& after = Find(now, row.sequence_id);
      if (row.end_sequence) {
        FUZZ_CHECK(!after.live);
        continue;
      }
      FUZZ_CHECK(row.has_logits);  // a row without logits must end its sequence
      FUZZ_CHECK(after.live);
      const Snapshot& was = Find(before, row.sequence_id);
      FUZZ_CHECK(after.next_step == (was.live ? was.next_step + 1 : 1));
      FUZZ_CHECK(after.history <= static_cast<size_t>(limits.max_history_tokens));
      FUZZ_CHECK(!results[row.index].samples.empty());
      FUZZ_CHECK(results[row.index].samples[0].token_id >= 0 &&
                 static_cast<size_t>(results[row.index].samples[0].token_id) < row.logits.size);
    }
    std::vector<std::string> next;
    for (const Snapshot& snapshot : now) {
      if (snapshot.live) next.emplace_back(snapshot.id);
    }
    live.swap(next);
    FUZZ_CHECK(session.live_sequences() == live.size());
    FUZZ_CHECK(live.size() <= static_cast<size_t>(limits.max_sequences));
  }
  return 0;
}
