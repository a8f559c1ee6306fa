// The `tokensampler` command line: subcommands sample, dist, verify, bench, health,
// info, help (the table is cli_command.h).
#ifndef TOKENSAMPLER_CLIENT_CLI_H_
#define TOKENSAMPLER_CLIENT_CLI_H_

namespace tokensampler::client {

// Exit codes of the CLI.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // a call failed, or health is not SERVING
inline constexpr int kExitUsage = 2;   // bad flags, bad input files, bad values

// Runs the CLI on argv; returns the process exit code. Output goes to stdout, errors
// and progress to stderr.
int RunCli(int argc, char** argv);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_H_
