#include "client/cli_command.h"

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli_bench.h"
#include "client/cli_connection.h"
#include "client/cli_health_info.h"
#include "client/cli_messages.h"
#include "client/cli_sample.h"
#include "client/cli_verify.h"

namespace tokensampler::client {

std::vector<FlagRef> Concat(std::vector<FlagRef> a, const std::vector<FlagRef>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::vector<Subcommand>& Subcommands() {
  static const auto* subs =
      new std::vector<Subcommand>{SampleCommand(), DistCommand(),   VerifyCommand(),
                                  BenchCommand(),  HealthCommand(), InfoCommand()};
  return *subs;
}

absl::StatusOr<const Subcommand*> FindSubcommand(absl::string_view name) {
  std::vector<std::string> known;
  for (const Subcommand& s : Subcommands()) {
    if (name == s.name) return &s;
    known.push_back(s.name);
  }
  known.push_back("help");
  const std::vector<std::string> similar = SimilarNames(name, known);
  if (!similar.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown subcommand '", name, "'; did you mean ",
                                                   absl::StrJoin(similar, " or "), "?"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown subcommand '", name, "' (want ", SubcommandList(), ")"));
}

std::string SubcommandList() {
  std::vector<std::string> names;
  for (const Subcommand& s : Subcommands()) names.push_back(s.name);
  return absl::StrCat(absl::StrJoin(names, ", "), " or help");
}

absl::CommandLineFlag* ResolveFlag(const Subcommand* sub, absl::string_view cli) {
  for (const FlagRef& f : GlobalFlags()) {
    if (cli == f.cli) return absl::FindCommandLineFlag(f.flag);
  }
  if (sub != nullptr) {
    for (const FlagRef& f : sub->flags) {
      if (cli == f.cli) return absl::FindCommandLineFlag(f.flag);
    }
  }
  return nullptr;
}

bool IsBoolFlag(absl::string_view cli) {
  for (const Subcommand& s : Subcommands()) {
    if (absl::CommandLineFlag* f = ResolveFlag(&s, cli); f != nullptr) return f->IsOfType<bool>();
  }
  return false;
}

std::vector<std::string> FlagNames(const Subcommand& sub) {
  std::vector<std::string> names;
  for (const FlagRef& f : GlobalFlags()) names.push_back(f.cli);
  for (const FlagRef& f : sub.flags) names.push_back(f.cli);
  return names;
}

}  // namespace tokensampler::client
