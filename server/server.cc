#include "server/server.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
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

// gRPC reads an address without a port as port 443 ("localhost" listened on 443), so the
// port is required: host:port, [v6]:port, or a unix: socket path.
absl::Status ValidateListenAddress(const std::string& address) {
  if (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:")) {
    return absl::OkStatus();
  }
  const size_t colon = address.rfind(':');
  const size_t bracket = address.rfind(']');
  const bool has_port =
      colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  const absl::string_view port =
      has_port ? absl::string_view(address).substr(colon + 1) : absl::string_view();
  uint32_t number = 0;
  if (!has_port || port.empty() || !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &number) || number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--address: '", address,
                     "' has no valid port; want host:port, e.g. 127.0.0.1:50051 or [::]:50051 "
                     "(port 0 picks a free port)"));
  }
  return absl::OkStatus();
}

// Gives one builder the server reflection service, or takes it away. Linking gRPC's
// reflection library registers its plugin for every ServerBuilder of the process (a
// static initializer calls InitProtoReflectionServerBuilderPlugin), so "off" has to
// remove it; "on" makes sure there is exactly one.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enabled) : enabled_(enabled) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    auto reflection = std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>();
    const std::string name = reflection->name();
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [&name](const auto& p) { return p->name() == name; }),
                   plugins->end());
    if (enabled_) plugins->push_back(std::move(reflection));
  }

 private:
  const bool enabled_;
};

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
  if (absl::Status status = ValidateListenAddress(o.address); !status.ok()) return status;
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
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<ReflectionOption>(options.reflection));
  // gRPC sets SO_REUSEPORT by default: a second server on a busy port would then start
  // and share the port's connections with the first. Refuse the port instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
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
