#include "client/cli.h"

#include <iostream>
#include <variant>

#include "client/cli_help.h"
#include "client/cli_parse.h"

namespace tokensampler::client {

int RunCli(int argc, char** argv) {
  auto parsed = ParseCommandLine(argc, argv);
  if (auto* error = std::get_if<UsageError>(&parsed)) {
    std::cerr << "error: " << error->message << "\nrun 'tokensampler help' for usage\n";
    return kExitUsage;
  }
  const Invocation& inv = std::get<Invocation>(parsed);
  if (inv.help) {
    PrintHelp(std::cout, inv.sub);
    return kExitOk;
  }
  return inv.sub->run(inv);
}

}  // namespace tokensampler::client
