// The CLI's wording for what went wrong: misspelt flags ("did you mean"), flag values
// that do not parse (said once, by the flag's type), and call failures that need a
// hint (a message over a size limit names the limit and how to raise it).
#ifndef TOKENSAMPLER_CLIENT_CLI_MESSAGES_H_
#define TOKENSAMPLER_CLIENT_CLI_MESSAGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tokensampler::client {

// A flag's name as written on the command line: "--name".
std::string Dashed(absl::string_view name);

// The names in `known` that `name` was probably meant to be: the closest ones within a
// small edit distance (a typo), else every name that starts with `name` (an
// abbreviation such as "t" or "temp"). Empty if none is close.
std::vector<std::string> SimilarNames(absl::string_view name,
                                      const std::vector<std::string>& known);

// "unknown flag --temprature (did you mean --temperature?)". `written` is the flag as
// given ("-t", "--temprature"); a single dash is explained (flags have long names).
std::string UnknownFlagMessage(absl::string_view written, absl::string_view name,
                               const std::vector<std::string>& known);

// Parses `value` into `flag`; on failure one sentence naming the flag by `dashed` and
// what kind of value it wants ("--temperature: 'abc' is not a number"). A float that
// overflows float32 ("1e40") is refused rather than becoming inf.
absl::Status SetFlagValue(absl::CommandLineFlag& flag, absl::string_view dashed,
                          absl::string_view value);

// A failed call's status with a hint where gRPC's own message is cryptic: a message
// over a size limit ("Received message larger than max (A vs. B)") says whose limit it
// is and how to raise it. `client_max_message_bytes` is this client's limit.
absl::Status ExplainCallError(const absl::Status& status, int64_t client_max_message_bytes);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_MESSAGES_H_
