#include "client/cli_verify.h"

#include <iostream>
#include <optional>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/cli_connection.h"
#include "client/cli_logits_flags.h"
#include "client/cli_output.h"
#include "client/cli_sampling_flags.h"
#include "client/logits.h"
#include "client/npy.h"

ABSL_FLAG(std::string, target, "",
          "Target logits from a .npy file of shape (k + 1, V): row i scores the token after "
          "the context and draft tokens 0..i-1.");
ABSL_FLAG(std::string, draft, "",
          "Draft probabilities from a .npy file of shape (k, V), rows summing to 1; not "
          "given = one-hot drafts (n-gram, prompt lookup).");
ABSL_FLAG(std::string, drafts, "", "The k draft token ids: id,id,... (empty = k = 0).");

namespace tokensampler::client {
namespace {

// The Verify request of `verify`: one row from the target (and draft) .npy files.
absl::StatusOr<v1::VerifyRequest> VerifyRequestFromFlags(const Invocation& inv) {
  if (!inv.Given("target")) {
    return absl::InvalidArgumentError("give --target FILE (.npy of shape (k + 1, V))");
  }
  auto target = ReadNpyFile(absl::GetFlag(FLAGS_target));
  if (!target.ok()) return absl::InvalidArgumentError(target.status().message());
  auto drafts = ParseIdList(absl::GetFlag(FLAGS_drafts), "--drafts");
  if (!drafts.ok()) return drafts.status();
  if (target->rows != drafts->size() + 1) {
    return absl::InvalidArgumentError(absl::StrCat("--target: want k + 1 = ", drafts->size() + 1,
                                                   " rows for ", drafts->size(), " --drafts, got ",
                                                   target->rows));
  }
  std::optional<NpyArray> draft;
  if (inv.Given("draft")) {
    auto read = ReadNpyFile(absl::GetFlag(FLAGS_draft));
    if (!read.ok()) return absl::InvalidArgumentError(read.status().message());
    if (read->rows != drafts->size() || read->cols != target->cols) {
      return absl::InvalidArgumentError(absl::StrCat("--draft: want shape (", drafts->size(), ", ",
                                                     target->cols, "), got (", read->rows, ", ",
                                                     read->cols, ")"));
    }
    draft = *std::move(read);
  }
  auto wire = ParseWire(WireFlag());
  if (!wire.ok()) return wire.status();
  auto params = SamplingFromFlags(inv);
  if (!params.ok()) return params.status();
  auto context = ContextFromFlags();
  if (!context.ok()) return context.status();
  v1::VerifyRequest request;
  v1::VerifyRow* row = request.add_rows();
  const size_t v = target->cols;
  for (size_t i = 0; i < target->rows; ++i) {
    EncodeLogits(absl::MakeConstSpan(target->data).subspan(i * v, v), *wire,
                 row->add_target_logits());
  }
  for (size_t i = 0; draft.has_value() && i < draft->rows; ++i) {
    EncodeLogits(absl::MakeConstSpan(draft->data).subspan(i * v, v), *wire, row->add_draft_probs());
  }
  row->mutable_draft_token_ids()->Add(drafts->begin(), drafts->end());
  *row->mutable_params() = *params;
  row->mutable_context_token_ids()->Add(context->begin(), context->end());
  row->set_step(StepFromFlags());
  return request;
}

void PrintVerifyResult(const v1::VerifyRow& row, const v1::VerifyResult& result) {
  std::cout << "accepted " << result.num_accepted() << " of " << row.draft_token_ids_size()
            << " draft tokens\n";
  for (int i = 0; i < result.tokens_size(); ++i) {
    const v1::Sample& token = result.tokens(i);
    const char* what = i < result.num_accepted()                             ? "draft, accepted"
                       : result.num_accepted() == row.draft_token_ids_size() ? "bonus"
                                                                             : "recovered";
    std::cout << "  position " << i << ": token " << token.token_id() << "  logprob "
              << FormatLogprob(token.logprob()) << "  (" << what << ")\n";
  }
  std::cout << "  seed " << result.seed() << "  step " << result.step() << "  (replay with --seed "
            << result.seed() << " --step " << result.step() << ")\n";
}

int RunVerify(const Invocation& inv) {
  auto request = VerifyRequestFromFlags(inv);
  if (!request.ok()) return Usage(request.status().message());
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  auto response = (*client)->Verify(*request);
  if (!response.ok()) return Fail(response.status());
  return PrintResponse(*response,
                       [&] { PrintVerifyResult(request->rows(0), response->results(0)); });
}

}  // namespace

Subcommand VerifyCommand() {
  return {"verify", "--target FILE [--draft FILE] --drafts LIST [sampling flags]",
          "Speculative verification: which draft tokens the target accepts, and the next token.",
          Concat({"target", "draft", "drafts", "wire", "json"}, SamplingFlagRefs()), RunVerify};
}

}  // namespace tokensampler::client
