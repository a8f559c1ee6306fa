#include "client/cli_help.h"

#include <string>

#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_connection.h"
#include "client/cli_messages.h"
#include "client/cli_sampling_flags.h"

namespace tokensampler::client {
namespace {

void PrintFlagHelp(std::ostream& out, const FlagRef& ref) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(ref.flag);
  if (flag == nullptr) return;
  std::string def = flag->DefaultValue();
  if (flag->IsOfType<std::string>()) def = absl::StrCat("\"", def, "\"");
  out << "  " << Dashed(ref.cli) << "  (default " << def << ")\n      " << flag->Help() << "\n";
}

bool IsSamplingFlag(const FlagRef& ref) {
  for (const FlagRef& f : SamplingFlagRefs()) {
    if (f.cli == ref.cli) return true;
  }
  return false;
}

// The subcommand's line, summary and flags; with `own_only`, its sampling flags are
// left out (the full help lists them once, under "Sampling flags").
void PrintSubcommandHelp(std::ostream& out, const Subcommand& s, bool own_only) {
  out << "tokensampler " << s.name << " " << s.args << "\n  " << s.summary << "\n";
  bool takes_sampling = false;
  for (const FlagRef& f : s.flags) {
    if (IsSamplingFlag(f)) {
      takes_sampling = true;
      if (own_only) continue;
    }
    PrintFlagHelp(out, f);
  }
  if (own_only && takes_sampling) out << "  and the sampling flags below\n";
}

}  // namespace

void PrintHelp(std::ostream& out, const Subcommand* only) {
  if (only != nullptr) {
    PrintSubcommandHelp(out, *only, /*own_only=*/false);
    out << "Global flags:\n";
    for (const FlagRef& f : GlobalFlags()) PrintFlagHelp(out, f);
    return;
  }
  out << "usage: tokensampler <subcommand> [flags]\n\n"
         "A client for the tokensampler gRPC service.\n\nSubcommands:\n";
  for (const Subcommand& s : Subcommands()) {
    out << absl::StrFormat("  %-8s %s\n", s.name, s.summary);
  }
  out << absl::StrFormat("  %-8s %s\n", "help", "This text; 'help SUBCOMMAND' for one.");
  out << "\nGlobal flags (any subcommand):\n";
  for (const FlagRef& f : GlobalFlags()) PrintFlagHelp(out, f);
  for (const Subcommand& s : Subcommands()) {
    out << "\n";
    PrintSubcommandHelp(out, s, /*own_only=*/true);
  }
  out << "\nSampling flags (sample, dist, verify, bench):\n";
  for (const FlagRef& f : SamplingFlagRefs()) PrintFlagHelp(out, f);
  out << "\nFlags are written --name=value or --name value; '-' and '_' are the same in "
         "names.\nExit codes: 0 ok, 1 a call failed (or health is not SERVING), 2 usage "
         "error (bad flag, value or file).\n";
}

}  // namespace tokensampler::client
