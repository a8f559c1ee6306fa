#include "client/cli_parse.h"

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/cli_messages.h"

namespace tokensampler::client {

std::variant<Invocation, UsageError> ParseCommandLine(int argc, char** argv) {
  Invocation inv;
  std::vector<std::string> positional;
  struct GivenFlag {
    std::string written;  // as typed, e.g. "-t" or "--temprature"
    std::string name;     // normalised: no dashes, '-' -> '_'
    std::optional<std::string> value;
  };
  std::vector<GivenFlag> flags;
  bool only_positional = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string name;
    std::optional<std::string> value;
    const std::string written(arg.substr(0, arg.find('=')));
    if (const size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
    } else {
      name = std::string(body);
    }
    absl::StrReplaceAll({{"-", "_"}}, &name);
    if (name == "help" || name == "h" || name == "helpfull") {
      inv.help = true;
      continue;
    }
    if (!value.has_value()) {
      if (IsBoolFlag(name)) {
        value = "true";
      } else if (absl::StartsWith(name, "no") && IsBoolFlag(name.substr(2))) {
        name = name.substr(2);
        value = "false";
      } else if (i + 1 < argc) {
        value = std::string(argv[++i]);
      } else {
        return UsageError{absl::StrCat(Dashed(name), ": missing value")};
      }
    }
    flags.push_back({written, std::move(name), std::move(value)});
  }
  if (!positional.empty()) {
    const bool help = positional[0] == "help";
    if (help) {
      inv.help = true;
      if (positional.size() == 1) return inv;
      positional.erase(positional.begin());
    }
    absl::StatusOr<const Subcommand*> sub = FindSubcommand(positional[0]);
    if (!sub.ok()) return UsageError{std::string(sub.status().message())};
    inv.sub = *sub;
    if (help) return inv;
    if (positional.size() > 1) {
      return UsageError{absl::StrCat("unexpected argument '", positional[1], "'")};
    }
  }
  if (inv.help) return inv;
  if (inv.sub == nullptr) {
    return UsageError{absl::StrCat("missing subcommand (", SubcommandList(), ")")};
  }
  for (const auto& [written, name, value] : flags) {
    absl::CommandLineFlag* flag = ResolveFlag(inv.sub, name);
    if (flag == nullptr) {
      for (const Subcommand& s : Subcommands()) {
        if (ResolveFlag(&s, name) != nullptr) {
          return UsageError{absl::StrCat(Dashed(name), " does not apply to '", inv.sub->name,
                                         "' (see: tokensampler help ", inv.sub->name, ")")};
        }
      }
      return UsageError{UnknownFlagMessage(written, name, FlagNames(*inv.sub))};
    }
    if (absl::Status set = SetFlagValue(*flag, Dashed(name), *value); !set.ok()) {
      return UsageError{std::string(set.message())};
    }
    inv.given.insert(std::string(flag->Name()));
  }
  return inv;
}

}  // namespace tokensampler::client
