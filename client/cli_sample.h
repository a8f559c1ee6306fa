// `tokensampler sample` (tokens drawn from logits) and `tokensampler dist` (the processed
// distribution as a bar chart): both send the rows of the logits flags.
#ifndef TOKENSAMPLER_CLIENT_CLI_SAMPLE_H_
#define TOKENSAMPLER_CLIENT_CLI_SAMPLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cli_command.h"

namespace tokensampler::client {

Subcommand SampleCommand();
Subcommand DistCommand();

// Renders a horizontal bar `fraction` (0..1) of `width` cells with eighth-block
// characters, e.g. 0.5 of 4 cells -> "██".
std::string Bar(double fraction, int width);

// Reads a vocabulary file: line i (0-based) is the string of token id i.
absl::StatusOr<std::vector<std::string>> ReadVocabFile(const std::string& path);

// Makes a token string printable: C-style escapes for control characters and
// non-UTF-8 bytes, wrapped in double quotes.
std::string QuoteToken(absl::string_view token);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_SAMPLE_H_
