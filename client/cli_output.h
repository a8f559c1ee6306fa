// How the CLI's subcommands end: a usage error or a failed call on stderr with its exit
// code, or a response on stdout as text or, with --json, as the message's JSON.
#ifndef TOKENSAMPLER_CLIENT_CLI_OUTPUT_H_
#define TOKENSAMPLER_CLIENT_CLI_OUTPUT_H_

#include <google/protobuf/message.h>

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tokensampler::client {

// Prints "error: MESSAGE"; returns kExitUsage.
int Usage(absl::string_view message);

// Prints "error: CODE: message" (with a hint for a message over a size limit); returns
// kExitFailed.
int Fail(absl::Status status);

// Whether --json was given true.
bool JsonOutput();

// `message` as JSON with the proto field names and every field, also those at default.
std::string ToJson(const google::protobuf::Message& message);

// With --json prints `response` as one JSON line, else runs `print_text`; returns kExitOk.
int PrintResponse(const google::protobuf::Message& response,
                  const std::function<void()>& print_text);

// A logprob as text: "-0.5000", "-inf".
std::string FormatLogprob(float lp);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_OUTPUT_H_
