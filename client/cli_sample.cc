#include "client/cli_sample.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli.h"
#include "client/cli_connection.h"
#include "client/cli_logits_flags.h"
#include "client/cli_output.h"
#include "client/cli_sampling_flags.h"
#include "client/client.h"
#include "client/shm_region.h"

ABSL_FLAG(int32_t, top, 10, "Number of most likely tokens drawn in the chart.");
ABSL_FLAG(std::string, vocab_file, "",
          "Vocabulary file: line i is the string of token id i (shown next to the ids).");

namespace tokensampler::client {
namespace {

// sample and dist: the request from the flags, then `check` (the subcommand's own
// flags; an exit code other than kExitOk stops there), a client, the rows moved into
// shared memory under --wire=shm, the call `rpc`, and the response printed by
// `print_text` (or as JSON).
template <typename Response>
int CallWithRows(const Invocation& inv, const std::function<int()>& check,
                 absl::StatusOr<Response> (Client::*rpc)(const v1::SampleRequest&),
                 const std::function<void(const Response&)>& print_text) {
  auto request = RequestFromFlags(inv);
  if (!request.ok()) return Usage(request.status().message());
  if (const int code = check(); code != kExitOk) return code;
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  absl::StatusOr<ShmRegion> shared;  // destroyed before the client it unregisters with
  if (SharedMemoryWire()) {
    shared = MoveRowsToSharedMemory(**client, &*request);
    if (!shared.ok()) return Fail(shared.status());
  }
  auto response = ((**client).*rpc)(*request);
  if (!response.ok()) return Fail(response.status());
  return PrintResponse(*response, [&] { print_text(*response); });
}

// "1 (-0.5000), 7 (-1.2500)".
std::string JoinTokenLogprobs(const google::protobuf::RepeatedPtrField<v1::TokenLogprob>& tokens) {
  std::vector<std::string> parts;
  for (const v1::TokenLogprob& t : tokens) {
    parts.push_back(absl::StrCat(t.token_id(), " (", FormatLogprob(t.logprob()), ")"));
  }
  return absl::StrJoin(parts, ", ");
}

void PrintSamples(const v1::SampleResponse& response) {
  for (int r = 0; r < response.results_size(); ++r) {
    const v1::SampleResult& result = response.results(r);
    std::cout << "row " << r << ":";
    const bool many = result.samples_size() > 1;
    if (many) std::cout << "\n";
    const char* indent = many ? "    " : "  ";
    for (int s = 0; s < result.samples_size(); ++s) {
      const v1::Sample& sample = result.samples(s);
      std::cout << (many ? absl::StrCat("  sample ", s, ":") : "") << " token " << sample.token_id()
                << "  logprob " << FormatLogprob(sample.logprob()) << "\n";
      if (sample.top_logprobs_size() > 0) {
        std::cout << indent << "top: " << JoinTokenLogprobs(sample.top_logprobs()) << "\n";
      }
      if (sample.rank() > 0) std::cout << indent << "rank " << sample.rank() << "\n";
      if (sample.token_logprobs_size() > 0) {
        std::cout << indent << "asked: " << JoinTokenLogprobs(sample.token_logprobs()) << "\n";
      }
    }
    if (!result.kept_set().empty()) {
      int kept = 0;
      for (unsigned char byte : result.kept_set()) kept += __builtin_popcount(byte);
      std::cout << "  kept set: " << kept << " tokens\n";
    }
    std::cout << "  seed " << result.seed() << "  step " << result.step()
              << "  (replay with --seed " << result.seed() << " --step " << result.step() << ")\n";
    if (result.has_mirostat_mu()) {
      std::cout << "  mirostat_mu " << result.mirostat_mu() << "  (next step: --mirostat_mu "
                << result.mirostat_mu() << ")\n";
    }
  }
}

// The `top` most likely tokens of each row, with their strings from `vocab` if given.
void PrintDistributions(const v1::DistributionResponse& response, int32_t top,
                        const std::vector<std::string>& vocab) {
  constexpr int kBarWidth = 40;
  for (int r = 0; r < response.distributions_size(); ++r) {
    const v1::Distribution& d = response.distributions(r);
    const int shown = std::min(top, d.token_ids_size());
    double mass = 0;
    for (int i = 0; i < shown; ++i) mass += d.probs(i);
    std::cout << absl::StrFormat("row %d: %d tokens with p > 0; top %d hold %.2f%% of the mass\n",
                                 r, d.token_ids_size(), shown, 100 * mass);
    std::vector<std::string> labels;
    size_t label_width = 0;
    for (int i = 0; i < shown && !vocab.empty(); ++i) {
      const int32_t id = d.token_ids(i);
      labels.push_back(id >= 0 && static_cast<size_t>(id) < vocab.size() ? QuoteToken(vocab[id])
                                                                         : "?");
      label_width = std::max(label_width, labels.back().size());
    }
    const double p_max = shown > 0 ? d.probs(0) : 1.0;
    for (int i = 0; i < shown; ++i) {
      std::cout << absl::StrFormat("  %8d ", d.token_ids(i));
      if (!labels.empty()) {
        std::cout << labels[i] << std::string(label_width - labels[i].size() + 1, ' ');
      }
      std::cout << absl::StrFormat("%7.4f ", d.probs(i))
                << Bar(p_max > 0 ? d.probs(i) / p_max : 0, kBarWidth) << "\n";
    }
  }
}

int RunSample(const Invocation& inv) {
  return CallWithRows<v1::SampleResponse>(
      inv, [] { return kExitOk; }, &Client::Sample, PrintSamples);
}

int RunDist(const Invocation& inv) {
  const int32_t top = absl::GetFlag(FLAGS_top);
  std::vector<std::string> vocab;
  auto check = [&] {
    if (top < 1) return Usage(absl::StrCat("--top: must be >= 1, got ", top));
    if (inv.Given("vocab_file")) {
      auto read = ReadVocabFile(absl::GetFlag(FLAGS_vocab_file));
      if (!read.ok()) return Usage(read.status().message());
      vocab = *std::move(read);
    }
    return kExitOk;
  };
  return CallWithRows<v1::DistributionResponse>(
      inv, check, &Client::GetDistribution,
      [&](const v1::DistributionResponse& response) { PrintDistributions(response, top, vocab); });
}

}  // namespace

Subcommand SampleCommand() {
  return {"sample", "(--npy FILE | --logits LIST | --random-vocab N) [sampling flags]",
          "Sample tokens from logits; prints ids, logprobs, alternatives and how to replay.",
          Concat(Concat(LogitsFlagRefs(), {"json"}), SamplingFlagRefs()), RunSample};
}

Subcommand DistCommand() {
  return {"dist", "(--npy FILE | --logits LIST | --random-vocab N) [--top N] [--vocab FILE]",
          "Show the processed distribution as a bar chart of the most likely tokens.",
          Concat(Concat(LogitsFlagRefs(), {"top", {"vocab", "vocab_file"}, "json"}),
                 SamplingFlagRefs()),
          RunDist};
}

std::string Bar(double fraction, int width) {
  static constexpr const char* kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  fraction = std::clamp(std::isnan(fraction) ? 0.0 : fraction, 0.0, 1.0);
  const int eighths = static_cast<int>(std::lround(fraction * width * 8));
  std::string out;
  for (int i = 0; i < eighths / 8; ++i) out += "█";
  out += kEighths[eighths % 8];
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadVocabFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--vocab: ", path, ": cannot open file: ", std::strerror(errno)));
  }
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(std::move(line));
  }
  return out;
}

std::string QuoteToken(absl::string_view token) {
  return absl::StrCat("\"", absl::Utf8SafeCEscape(token), "\"");
}

}  // namespace tokensampler::client
