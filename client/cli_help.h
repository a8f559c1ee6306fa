// `tokensampler help`: the text of every subcommand and flag, drawn from the subcommand
// table and the flags' own defaults and help strings.
#ifndef TOKENSAMPLER_CLIENT_CLI_HELP_H_
#define TOKENSAMPLER_CLIENT_CLI_HELP_H_

#include <ostream>

#include "client/cli_command.h"

namespace tokensampler::client {

// With `only` null: every subcommand with its own flags, the global flags once and the
// sampling flags once. Otherwise that subcommand with all its flags (sampling flags
// included), then the global flags.
void PrintHelp(std::ostream& out, const Subcommand* only);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_HELP_H_
