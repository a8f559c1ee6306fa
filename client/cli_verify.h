// `tokensampler verify`: speculative verification of draft tokens against target logits
// from .npy files (the Verify RPC).
#ifndef TOKENSAMPLER_CLIENT_CLI_VERIFY_H_
#define TOKENSAMPLER_CLIENT_CLI_VERIFY_H_

#include "client/cli_command.h"

namespace tokensampler::client {

Subcommand VerifyCommand();

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_VERIFY_H_
