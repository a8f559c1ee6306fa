#include "client/cli_output.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "client/cli.h"
#include "client/cli_messages.h"
#include "client/client.h"

ABSL_FLAG(bool, json, false, "Print machine-readable JSON instead of text.");

namespace tokensampler::client {

int Usage(absl::string_view message) {
  std::cerr << "error: " << message << "\n";
  return kExitUsage;
}

int Fail(absl::Status status) {
  status = ExplainCallError(status, ClientOptions().max_message_bytes);
  std::cerr << "error: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
            << "\n";
  return kExitFailed;
}

bool JsonOutput() { return absl::GetFlag(FLAGS_json); }

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return "{}";
  }
  return out;
}

int PrintResponse(const google::protobuf::Message& response,
                  const std::function<void()>& print_text) {
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
  } else {
    print_text();
  }
  return kExitOk;
}

std::string FormatLogprob(float lp) {
  if (std::isinf(lp)) return lp < 0 ? "-inf" : "inf";
  return absl::StrFormat("%.4f", lp);
}

}  // namespace tokensampler::client
