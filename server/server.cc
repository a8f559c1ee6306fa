#include "server/server.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "sampler/params.h"

namespace tokensampler::server {
namespace {

// "host:port" with the port replaced by `port` ("[::1]:0" -> "[::1]:43121").
std::string WithPort(const std::string& address, int port) {
  const size_t colon = address.rfind(':');
  const size_t bracket = address.rfind(']');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) {
    return absl::StrCat(address, ":", port);
  }
  return absl::StrCat(address.substr(0, colon), ":", port);
}

absl::Status Positive(absl::string_view flag, int64_t value) {
  if (value >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": must be >= 1, got ", value));
}

// A duration as a gRPC millisecond channel argument (at least 1 ms, at most INT_MAX).
int MillisecondsArg(absl::Duration d) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  return static_cast<int>(std::clamp<int64_t>(ms, 1, std::numeric_limits<int>::max()));
}

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& o) {
  if (o.address.empty()) return absl::InvalidArgumentError("--address: must not be empty");
  if (o.workers < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--workers: must be >= 0 (0 = number of CPUs), got ", o.workers));
  }
  for (auto [flag, value] : {std::pair<absl::string_view, int64_t>{"queue_depth", o.queue_depth},
                             {"max_vocab", o.limits.max_vocab},
                             {"max_rows", o.limits.max_rows},
                             {"max_message_bytes", o.max_message_bytes},
                             {"max_sequences", o.limits.max_sequences},
                             {"max_history_tokens", o.limits.max_history_tokens},
                             {"max_num_samples", o.limits.max_num_samples}}) {
    absl::Status status = Positive(flag, value);
    if (!status.ok()) return status;
  }
  if (o.limits.max_draft_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_draft_tokens: must be >= 0, got ", o.limits.max_draft_tokens));
  }
  if (o.limits.max_vocab > sampler::kMaxVocab) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_vocab: must be <= ", sampler::kMaxVocab, ", got ", o.limits.max_vocab));
  }
  if (o.max_connection_age < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_connection_age: must be >= 0 (0 = off), got ",
                     absl::FormatDuration(o.max_connection_age)));
  }
  if (o.max_connection_age_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_connection_age_grace: must be >= 0, got ",
                     absl::FormatDuration(o.max_connection_age_grace)));
  }
  if (o.max_message_bytes > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_message_bytes: must be <= ", std::numeric_limits<int>::max(),
                     ", got ", o.max_message_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  absl::Status status = ValidateServerOptions(options);
  if (!status.ok()) return status;

  std::unique_ptr<Server> server(new Server());
  server->pool_ = std::make_unique<WorkerPool>(options.workers, options.queue_depth,
                                               options.sample_on_grpc_threads);
  ServiceOptions service_options;
  service_options.limits = options.limits;
  service_options.max_message_bytes = options.max_message_bytes;
  server->service_ = std::make_unique<SamplerService>(server->pool_.get(), service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  if (options.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               MillisecondsArg(options.max_connection_age));
    if (options.max_connection_age_grace != absl::InfiniteDuration()) {
      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                                 MillisecondsArg(options.max_connection_age_grace));
    }
  }
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("--address: cannot listen on ", options.address));
  }
  server->address_ = WithPort(options.address, server->port_);
  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(true);
    health->SetServingStatus(kServiceName, true);
  }
  return server;
}

void Server::EnterLameDuck() {
  if (lame_duck_.exchange(true)) return;
  // SetServingStatus(bool) sets every service, the overall "" and kServiceName alike;
  // open Watch streams (client-side health checking) hear it at once.
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(false);
}

void Server::Shutdown(absl::Duration drain) {
  if (shut_down_) return;
  shut_down_ = true;
  EnterLameDuck();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + drain));
  server_->Wait();
}

Server::~Server() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
  server_.reset();
  service_.reset();
  pool_.reset();
}

}  // namespace tokensampler::server
