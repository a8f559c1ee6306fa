// The `tokensampler` subcommand table: each subcommand's name, usage line, summary, the
// flags it takes and the function that runs it; and what one command line said
// (Invocation). Subcommands are looked up here, and a flag's CLI name is resolved here
// to the absl flag that stores it.
#ifndef TOKENSAMPLER_CLIENT_CLI_COMMAND_H_
#define TOKENSAMPLER_CLIENT_CLI_COMMAND_H_

#include <set>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tokensampler::client {

// A flag as the CLI spells it (`cli`), and the name of the absl flag that stores it
// (`flag`): the same unless two subcommands give one CLI name different flags (--vocab).
struct FlagRef {
  FlagRef(const char* name) : cli(name), flag(name) {}  // NOLINT(runtime/explicit)
  explicit FlagRef(absl::string_view name) : cli(name), flag(name) {}
  FlagRef(const char* cli_name, const char* flag_name) : cli(cli_name), flag(flag_name) {}
  std::string cli;
  std::string flag;
};

// Concatenation of flag lists, for a subcommand that takes a shared group of flags.
std::vector<FlagRef> Concat(std::vector<FlagRef> a, const std::vector<FlagRef>& b);

struct Subcommand;

// What the command line said, once parsed into the absl flags.
struct Invocation {
  const Subcommand* sub = nullptr;  // null only with help
  std::set<std::string> given;      // absl names of the flags given (FlagRef::flag)
  bool help = false;

  bool Given(absl::string_view absl_name) const { return given.count(std::string(absl_name)) > 0; }
};

struct Subcommand {
  const char* name;
  const char* args;     // usage after "tokensampler NAME"
  const char* summary;  // one line
  std::vector<FlagRef> flags;
  // Runs the subcommand on the parsed flags; returns the process exit code.
  int (*run)(const Invocation& inv);
};

// Every subcommand, in the order help lists them ("help" itself is not one).
const std::vector<Subcommand>& Subcommands();

// The subcommand called `name`. Otherwise an error naming it and, if one is close (a
// typo), the subcommand meant: "unknown subcommand 'smaple'; did you mean sample?",
// else the list of subcommands.
absl::StatusOr<const Subcommand*> FindSubcommand(absl::string_view name);

// The subcommand names and "help" for a message: "sample, dist, ... or help".
std::string SubcommandList();

// The absl flag behind CLI name `cli` for `sub` (or a global flag, cli_connection.h); nullptr if it
// has none. `sub` may be null: then only the global flags.
absl::CommandLineFlag* ResolveFlag(const Subcommand* sub, absl::string_view cli);

// Whether `cli` names a boolean flag in any subcommand (decides if "--x value" takes the
// next argument).
bool IsBoolFlag(absl::string_view cli);

// The CLI names of the flags `sub` takes, globals first (for "did you mean").
std::vector<std::string> FlagNames(const Subcommand& sub);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_COMMAND_H_
