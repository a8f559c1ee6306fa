// The per-stream state of SampleStream: for every live sequence its seed (fixed by its
// first row), its next step (from 0), its token history (context sent so far plus
// each step's first sample), which the penalties see, and its mirostat state mu (set from
// the first mirostat row's params, then each step's result; later rows' mu is not read).
// The history's first tokens may be the prompt (Row.num_prompt_tokens, while the sequence
// has no output yet); the rest is the output, which min_tokens, bad words and
// no_repeat_ngram look at.
//
// A message goes through Prepare (validate against the state and the limits, then stage:
// append the rows' context to the histories and point each row at its sequence's
// history, seed and step), then the rows are sampled, then Commit (append the drawn
// tokens, advance steps, free ended sequences) or Abort (undo the staging). A message
// that fails anywhere leaves the state as it was before it.
//
// Thread-compatible: one message at a time; the rows of a prepared message may be
// sampled in parallel since they only read the state.
#ifndef TOKENSAMPLER_SERVER_STREAM_SESSION_H_
#define TOKENSAMPLER_SERVER_STREAM_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "sampler/sampler.h"
#include "server/codec.h"

namespace tokensampler::server {

class StreamSession {
 public:
  explicit StreamSession(const Limits& limits) : limits_(limits) {}
  StreamSession(const StreamSession&) = delete;
  StreamSession& operator=(const StreamSession&) = delete;

  // Checks `rows` (decoded with RequestKind::kStream) against the live sequences and the
  // limits (max_sequences, max_history_tokens: RESOURCE_EXHAUSTED; a history token id
  // outside a row's vocabulary, num_prompt_tokens > 0 for a sequence that already has
  // output: INVALID_ARGUMENT), then stages them: each row with
  // logits gets params.context_token_ids = its sequence's history (valid until Commit or
  // Abort), params.num_prompt_tokens = the prompt's part of it, params.seed = the
  // sequence's seed and `step` = the sequence's next step.
  // On error nothing is staged and the state is unchanged.
  absl::Status Prepare(std::vector<DecodedRow>* rows);

  // Ends a successful message: `results[i]` belongs to `rows[i]` (ignored for rows
  // without logits). REQUIRES: Prepare(rows) succeeded and nothing else ran since.
  void Commit(const std::vector<DecodedRow>& rows,
              const std::vector<sampler::SampleResult>& results);

  // Undoes Prepare(rows). REQUIRES: Prepare(rows) succeeded and nothing else ran since.
  void Abort(const std::vector<DecodedRow>& rows);

  size_t live_sequences() const { return sequences_.size(); }
  // Token slots allocated for the histories of all live sequences (vector capacities),
  // for the server's memory budget. O(live sequences).
  size_t HistoryCapacity() const;
  // The history of a live sequence, or nullptr (for tests).
  const std::vector<int32_t>* History(absl::string_view sequence_id) const;
  // The mirostat state of a live sequence (unset before its first mirostat step).
  std::optional<float> MirostatMu(absl::string_view sequence_id) const;
  // The next step of a live sequence, or -1 (for tests).
  int64_t NextStep(absl::string_view sequence_id) const;

 private:
  struct Sequence {
    uint64_t seed = 0;
    uint64_t next_step = 0;
    std::vector<int32_t> history;
    int32_t max_token_id = -1;  // largest id in history, -1 when empty
    // Mirostat's state after the last committed step (unset until a mirostat step).
    std::optional<float> mirostat_mu;
    size_t prompt_tokens = 0;   // history[0, prompt_tokens) is the prompt
    // Staging of the message in progress.
    bool staged_new = false;
    size_t staged_old_size = 0;
    size_t staged_old_prompt = 0;
  };

  const Limits limits_;
  // node map: a staged row views its sequence's history, which must not move.
  absl::node_hash_map<std::string, Sequence> sequences_;
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_STREAM_SESSION_H_
