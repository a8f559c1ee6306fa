// The CLI's global flags (server address, deadline, retries, TLS, bearer token), which
// every subcommand takes, and the Client they describe.
#ifndef TOKENSAMPLER_CLIENT_CLI_CONNECTION_H_
#define TOKENSAMPLER_CLIENT_CLI_CONNECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cli_command.h"
#include "client/client.h"

namespace tokensampler::client {

// The global flags, in help order.
const std::vector<FlagRef>& GlobalFlags();

// A Client for --server with the deadline, retry, TLS and token flags. Errors name the
// flag, or TOKENSAMPLER_SERVER when the address came from the environment.
absl::StatusOr<std::unique_ptr<Client>> MakeClient(const Invocation& inv);

// The --server flag as given (or from the environment), for reports.
std::string ServerFlag();

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_CONNECTION_H_
