// The `tokensampler` command line: subcommands sample, dist, bench, health, info, help.
#ifndef TOKENSAMPLER_CLIENT_CLI_H_
#define TOKENSAMPLER_CLIENT_CLI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tokensampler::client {

// Exit codes of the CLI.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // a call failed, or health is not SERVING
inline constexpr int kExitUsage = 2;   // bad flags, bad input files, bad values

// Runs the CLI on argv; returns the process exit code. Output goes to stdout, errors
// and progress to stderr.
int RunCli(int argc, char** argv);

// Renders a horizontal bar `fraction` (0..1) of `width` cells with eighth-block
// characters, e.g. 0.5 of 4 cells -> "██". Exposed for tests.
std::string Bar(double fraction, int width);

// Reads a vocabulary file: line i (0-based) is the string of token id i.
absl::StatusOr<std::vector<std::string>> ReadVocabFile(const std::string& path);

// Makes a token string printable: C-style escapes for control characters and
// non-UTF-8 bytes, wrapped in double quotes.
std::string QuoteToken(absl::string_view token);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_H_
