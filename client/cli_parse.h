// From argv to an Invocation: splits flags from the subcommand, resolves each flag
// against the subcommand's table and parses its value into the absl flag.
#ifndef TOKENSAMPLER_CLIENT_CLI_PARSE_H_
#define TOKENSAMPLER_CLIENT_CLI_PARSE_H_

#include <string>
#include <variant>

#include "client/cli_command.h"

namespace tokensampler::client {

// A usage error: the message for stderr.
struct UsageError {
  std::string message;
};

// Parses argv (argv[0] is the program) into the absl flags. Flags are written
// --name=value or --name value ('-' and '_' the same in names), booleans also --name and
// --noname; "--" ends the flags. Returns the invocation, or the first usage error: an
// unknown or misplaced subcommand, flag or value.
std::variant<Invocation, UsageError> ParseCommandLine(int argc, char** argv);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_PARSE_H_
