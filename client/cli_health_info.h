// `tokensampler health` (grpc.health.v1 check) and `tokensampler info` (GetServerInfo).
#ifndef TOKENSAMPLER_CLIENT_CLI_HEALTH_INFO_H_
#define TOKENSAMPLER_CLIENT_CLI_HEALTH_INFO_H_

#include "client/cli_command.h"

namespace tokensampler::client {

Subcommand HealthCommand();
Subcommand InfoCommand();

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_HEALTH_INFO_H_
