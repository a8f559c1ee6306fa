#include "server/stream_session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/client_text.h"

namespace tokensampler::server {

absl::Status StreamSession::Prepare(std::vector<DecodedRow>* rows) {
  // Pass 1: check everything; no state changes.
  size_t new_sequences = 0;
  for (const DecodedRow& row : *rows) {
    auto it = sequences_.find(row.sequence_id);
    const bool known = it != sequences_.end();
    if (!row.has_logits) continue;  // frees (or no-op for an unknown id)
    if (!known) {
      ++new_sequences;
      if (sequences_.size() + new_sequences > static_cast<size_t>(limits_.max_sequences)) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "rows[", row.index, "].sequence_id: cannot start sequence ",
            QuoteClientString(row.sequence_id),
            ", the stream would exceed the server limit max_sequences=", limits_.max_sequences));
      }
    }
    const size_t held = known ? it->second.history.size() : 0;
    // The history after this step: what it holds, the new context, the drawn token.
    const size_t after = held + row.context_token_ids.size() + 1;
    if (after > static_cast<size_t>(limits_.max_history_tokens)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "rows[", row.index, "].context_token_ids: sequence ", QuoteClientString(row.sequence_id),
          " would hold ", after,
          " tokens, over the server limit max_history_tokens=", limits_.max_history_tokens));
    }
    if (known && row.num_prompt_tokens > 0 &&
        it->second.history.size() > it->second.prompt_tokens) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rows[", row.index, "].num_prompt_tokens: sequence \"", row.sequence_id,
          "\" already has ", it->second.history.size() - it->second.prompt_tokens,
          " output tokens; prompt tokens can only be sent before the first output, got ",
          row.num_prompt_tokens));
    }
    if (known && it->second.max_token_id >= 0 &&
        static_cast<size_t>(it->second.max_token_id) >= row.logits.size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rows[", row.index, "].logits: ", row.logits.size,
          " logits, but the history of "
          "sequence ",
          QuoteClientString(row.sequence_id), " holds token id ", it->second.max_token_id));
    }
  }
  // Pass 2: stage.
  for (DecodedRow& row : *rows) {
    if (!row.has_logits) continue;
    auto [it, inserted] = sequences_.try_emplace(row.sequence_id);
    Sequence& seq = it->second;
    seq.staged_new = inserted;
    if (inserted) seq.seed = row.params.seed;
    seq.staged_old_size = seq.history.size();
    seq.staged_old_prompt = seq.prompt_tokens;
    seq.prompt_tokens += row.num_prompt_tokens;  // Pass 1: no output before them
    seq.history.insert(seq.history.end(), row.context_token_ids.begin(),
                       row.context_token_ids.end());
    row.params.context_token_ids = seq.history;
    row.params.num_prompt_tokens = seq.prompt_tokens;
    row.params.seed = seq.seed;
    if (row.params.mirostat.version > 0 && seq.mirostat_mu.has_value()) {
      row.params.mirostat.mu = seq.mirostat_mu;
    }
    row.seed_given = true;
    row.step = seq.next_step;
  }
  return absl::OkStatus();
}

void StreamSession::Commit(const std::vector<DecodedRow>& rows,
                           const std::vector<sampler::SampleResult>& results) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const DecodedRow& row = rows[i];
    auto it = sequences_.find(row.sequence_id);
    if (it == sequences_.end()) continue;  // end_sequence of an unknown id
    if (row.end_sequence) {
      sequences_.erase(it);
      continue;
    }
    if (!row.has_logits) continue;
    Sequence& seq = it->second;
    for (size_t k = seq.staged_old_size; k < seq.history.size(); ++k) {
      seq.max_token_id = std::max(seq.max_token_id, seq.history[k]);
    }
    if (!results[i].samples.empty()) {
      const int32_t token = results[i].samples[0].token_id;
      seq.history.push_back(token);
      seq.max_token_id = std::max(seq.max_token_id, token);
    }
    if (results[i].mirostat_mu.has_value()) seq.mirostat_mu = results[i].mirostat_mu;
    ++seq.next_step;
    seq.staged_new = false;
  }
}

void StreamSession::Abort(const std::vector<DecodedRow>& rows) {
  for (const DecodedRow& row : rows) {
    if (!row.has_logits) continue;
    auto it = sequences_.find(row.sequence_id);
    if (it == sequences_.end()) continue;
    if (it->second.staged_new) {
      sequences_.erase(it);
    } else {
      it->second.history.resize(it->second.staged_old_size);
      it->second.prompt_tokens = it->second.staged_old_prompt;
    }
  }
}

size_t StreamSession::HistoryCapacity() const {
  size_t total = 0;
  for (const auto& [id, sequence] : sequences_) total += sequence.history.capacity();
  return total;
}

const std::vector<int32_t>* StreamSession::History(absl::string_view sequence_id) const {
  auto it = sequences_.find(sequence_id);
  return it == sequences_.end() ? nullptr : &it->second.history;
}

std::optional<float> StreamSession::MirostatMu(absl::string_view sequence_id) const {
  auto it = sequences_.find(sequence_id);
  return it == sequences_.end() ? std::nullopt : it->second.mirostat_mu;
}

int64_t StreamSession::NextStep(absl::string_view sequence_id) const {
  auto it = sequences_.find(sequence_id);
  return it == sequences_.end() ? -1 : static_cast<int64_t>(it->second.next_step);
}

}  // namespace tokensampler::server
