// `tokensampler bench`: the load generator's flags, run and report (bench.h).
#ifndef TOKENSAMPLER_CLIENT_CLI_BENCH_H_
#define TOKENSAMPLER_CLIENT_CLI_BENCH_H_

#include "client/cli_command.h"

namespace tokensampler::client {

Subcommand BenchCommand();

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_BENCH_H_
