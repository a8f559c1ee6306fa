#include "client/cli_messages.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/logits.h"

namespace tokensampler::client {
namespace {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// What a flag of this type wants, for "'abc' is not ...".
const char* WantedValue(const absl::CommandLineFlag& flag) {
  if (flag.IsOfType<bool>()) return "true or false";
  if (flag.IsOfType<int32_t>()) return "a 32-bit integer";
  if (flag.IsOfType<int64_t>()) return "a 64-bit integer";
  if (flag.IsOfType<uint64_t>()) return "an unsigned 64-bit integer";
  if (flag.IsOfType<absl::Duration>()) return "a duration such as 500ms, 10s or 1m";
  return nullptr;
}

}  // namespace

std::string Dashed(absl::string_view name) { return absl::StrCat("--", name); }

std::vector<std::string> SimilarNames(absl::string_view name,
                                      const std::vector<std::string>& known) {
  // A typo: at most a third of the letters wrong (at least 1, at most 3).
  const size_t allowed = std::clamp<size_t>(name.size() / 3, 1, 3);
  size_t best = allowed + 1;
  std::vector<std::string> out;
  for (const std::string& k : known) {
    const size_t d = EditDistance(name, k);
    if (d < best) {
      best = d;
      out.clear();
    }
    if (d == best && std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  }
  if (!out.empty() || name.empty()) return out;
  for (const std::string& k : known) {
    if (absl::StartsWith(k, name) && std::find(out.begin(), out.end(), k) == out.end()) {
      out.push_back(k);
    }
  }
  return out;
}

std::string UnknownFlagMessage(absl::string_view written, absl::string_view name,
                               const std::vector<std::string>& known) {
  std::string message = absl::StrCat("unknown flag ", written);
  const bool single_dash = absl::StartsWith(written, "-") && !absl::StartsWith(written, "--");
  if (single_dash) {
    absl::StrAppend(&message, " (flags have long names with two dashes: --name=value)");
  }
  std::vector<std::string> similar = SimilarNames(name, known);
  constexpr size_t kMaxShown = 6;
  if (similar.empty()) return message;
  std::vector<std::string> shown;
  for (size_t i = 0; i < similar.size() && i < kMaxShown; ++i) shown.push_back(Dashed(similar[i]));
  if (similar.size() == 1) {
    absl::StrAppend(&message, "; did you mean ", shown[0], "?");
  } else {
    absl::StrAppend(&message, "; did you mean one of ", absl::StrJoin(shown, ", "),
                    similar.size() > kMaxShown ? ", ..." : "", "?");
  }
  return message;
}

absl::Status SetFlagValue(absl::CommandLineFlag& flag, absl::string_view dashed,
                          absl::string_view value) {
  if (flag.IsOfType<float>()) {
    // The same reader as --logits: "1e40" overflows float32 and is refused; inf and nan
    // spelt out go through (the server decides what it allows).
    absl::StatusOr<std::vector<float>> parsed = ParseFloatList(value, dashed);
    if (!parsed.ok()) return parsed.status();
    if (parsed->size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(dashed, ": '", value, "' is not a number"));
    }
  }
  std::string error;
  if (flag.ParseFrom(value, &error)) return absl::OkStatus();
  if (const char* wanted = WantedValue(flag); wanted != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(dashed, ": '", value, "' is not ", wanted));
  }
  return absl::InvalidArgumentError(absl::StrCat(dashed, ": invalid value '", value, "'"));
}

absl::Status ExplainCallError(const absl::Status& status, int64_t client_max_message_bytes) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return status;
  const std::string message(status.message());
  unsigned long long size = 0, limit = 0;  // NOLINT(runtime/int): sscanf's %llu
  const bool sent = std::sscanf(message.c_str(), "Sent message larger than max (%llu vs. %llu)",
                                &size, &limit) == 2;
  const bool received =
      !sent && std::sscanf(message.c_str(), "Received message larger than max (%llu vs. %llu)",
                           &size, &limit) == 2;
  if (!sent && !received) return status;
  std::string hint;
  if (sent) {
    hint = absl::StrCat("the request (", size, " bytes) is over this client's message limit of ",
                        limit,
                        " bytes (ClientOptions::max_message_bytes); send fewer rows per "
                        "request or --wire=bfloat16");
  } else if (static_cast<int64_t>(limit) == client_max_message_bytes) {
    hint = absl::StrCat("the response (", size, " bytes) is over this client's message limit of ",
                        limit,
                        " bytes (ClientOptions::max_message_bytes); ask for fewer rows "
                        "per request");
  } else {
    hint = absl::StrCat("the request (", size,
                        " bytes) is over the server's limit "
                        "max_message_bytes=",
                        limit,
                        "; raise it on the server (--max_message_bytes or "
                        "TOKENSAMPLER_MAX_MESSAGE_BYTES), or send fewer rows per request or "
                        "--wire=bfloat16");
  }
  return absl::ResourceExhaustedError(absl::StrCat(hint, " [", message, "]"));
}

}  // namespace tokensampler::client
