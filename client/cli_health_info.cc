#include "client/cli_health_info.h"

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli.h"
#include "client/cli_connection.h"
#include "client/cli_output.h"

ABSL_FLAG(std::string, service, "",
          "Service to check: \"\" = the whole server, or e.g. tokensampler.v1.Sampler.");

namespace tokensampler::client {
namespace {

int RunHealth(const Invocation& inv) {
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  const std::string service = absl::GetFlag(FLAGS_service);
  auto status = (*client)->Health(service);
  if (!status.ok()) return Fail(status.status());
  std::cout << HealthStatusName(*status) << "\n";
  return *status == HealthStatus::kServing ? kExitOk : kExitFailed;
}

void PrintServerInfo(const v1::ServerInfo& info) {
  std::vector<std::string> presets, dtypes;
  for (int p : info.presets()) presets.push_back(v1::Preset_Name(static_cast<v1::Preset>(p)));
  for (int d : info.dtypes()) dtypes.push_back(v1::Dtype_Name(static_cast<v1::Dtype>(d)));
  std::cout << absl::StrFormat(
      "server          %s\n"
      "instance        %s\n"
      "version         %s\n"
      "simd_target     %s\n"
      "worker_threads  %d\n"
      "presets         %s\n"
      "dtypes          %s\n"
      "samplers        %s\n"
      "limits          max_vocab %d, max_rows_per_request %d, max_message_bytes %d,\n"
      "                max_sequences_per_stream %d, max_history_tokens %d,\n"
      "                max_num_samples %d, max_top_logprobs %d, max_draft_tokens %d\n"
      "served          %d requests, %d rows\n"
      "shared_memory   %s, prefix \"%s\", max %d regions, max %d bytes\n",
      ServerFlag(), info.instance(), info.version(), info.simd_target(), info.worker_threads(),
      absl::StrJoin(presets, ", "), absl::StrJoin(dtypes, ", "),
      absl::StrJoin(info.samplers(), ", "), info.max_vocab(), info.max_rows_per_request(),
      info.max_message_bytes(), info.max_sequences_per_stream(), info.max_history_tokens(),
      info.max_num_samples(), info.max_top_logprobs(), info.max_draft_tokens(),
      info.requests_served(), info.rows_served(),
      v1::SharedMemoryMode_Name(info.shared_memory_mode()), info.shared_memory_prefix(),
      info.max_shared_memory_regions(), info.max_shared_memory_bytes());
}

int RunInfo(const Invocation& inv) {
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  auto info = (*client)->GetServerInfo();
  if (!info.ok()) return Fail(info.status());
  return PrintResponse(*info, [&] { PrintServerInfo(*info); });
}

}  // namespace

Subcommand HealthCommand() {
  return {"health",
          "[--service NAME]",
          "grpc.health.v1 check; exit 0 only when the server reports SERVING.",
          {"service"},
          RunHealth};
}

Subcommand InfoCommand() {
  return {"info",
          "[--json]",
          "Server version, SIMD target, limits and counters (GetServerInfo).",
          {"json"},
          RunInfo};
}

}  // namespace tokensampler::client
