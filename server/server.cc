#include "server/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
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

// The part of --max_memory for the server's own accounting; gRPC's ResourceQuota gets
// the rest.
int64_t RequestBudget(int64_t max_memory) { return max_memory / 4 * 3; }
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

// Before gRPC binds a Unix socket path (gRPC unlinks whatever file is there): refuses a
// path another server still listens on, or that is not a socket; removes a stale socket
// file (nobody accepts on it).
absl::Status PrepareUnixSocket(const std::string& path) {
  struct stat info;
  if (lstat(path.c_str(), &info) != 0) {
    if (errno != ENOENT) {
      return absl::FailedPreconditionError(
          absl::StrCat("--address: unix:", path, ": ", std::strerror(errno)));
    }
    const size_t slash = path.rfind('/');
    const std::string dir =
        slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
    if (stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat("--address: unix:", path, ": directory ",
                                                        dir, " does not exist (create it first)"));
    }
    return absl::OkStatus();
  }
  if (!S_ISSOCK(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--address: unix:", path, " exists and is not a socket; not removing it"));
  }
  sockaddr_un address;
  std::memset(&address, 0, sizeof(address));
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("--address: unix:", path, ": path longer than ",
                                                   sizeof(address.sun_path) - 1, " bytes"));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const int connected = connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int error = errno;
  close(fd);
  if (connected == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--address: unix:", path, ": another process is listening on it"));
  }
  if (error != ECONNREFUSED) {
    return absl::FailedPreconditionError(
        absl::StrCat("--address: unix:", path, ": ", std::strerror(error)));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--address: unix:", path, ": cannot remove the stale socket: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitListenAddresses(absl::string_view address) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(address, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--address: empty entry in \"", address, "\""));
    }
    if (absl::StartsWith(part, "unix:") && UnixSocketPath(part).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--address: no socket path in \"", part, "\""));
    }
    out.emplace_back(part);
  }
  return out;
}

std::string UnixSocketPath(absl::string_view address) {
  if (!absl::ConsumePrefix(&address, "unix:")) return "";
  // unix:///abs/path (URI form) and unix:/abs/path or unix:relative (gRPC's path form).
  if (absl::StartsWith(address, "//")) address.remove_prefix(2);
  return std::string(address);
}

absl::Status ValidateServerOptions(const ServerOptions& o) {
  if (o.address.empty()) return absl::InvalidArgumentError("--address: must not be empty");
  absl::StatusOr<std::vector<std::string>> addresses = SplitListenAddresses(o.address);
  if (!addresses.ok()) return addresses.status();
  for (const std::string& address : *addresses) {
    if (absl::Status status = ValidateListenAddress(address); !status.ok()) return status;
  }
  if (o.unix_socket_mode < 0 || o.unix_socket_mode > 0777) {
    char octal[24];
    std::snprintf(octal, sizeof(octal), "0%o", static_cast<unsigned>(o.unix_socket_mode));
    return absl::InvalidArgumentError(absl::StrCat(
        "--unix_socket_mode: must be octal permission bits in [0, 0777], got ", octal));
  }
  absl::Status shared = ValidateSharedMemoryOptions(o.shared_memory);
  if (!shared.ok()) return shared;
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
  if (o.max_memory < 0 || o.max_streams < 0 || o.max_live_sequences < 0) {
    return absl::InvalidArgumentError(absl::StrCat(o.max_memory < 0    ? "--max_memory"
                                                   : o.max_streams < 0 ? "--max_streams"
                                                                       : "--max_live_sequences",
                                                   ": must be >= 0 (0 = unlimited), got ",
                                                   o.max_memory < 0    ? o.max_memory
                                                   : o.max_streams < 0 ? o.max_streams
                                                                       : o.max_live_sequences));
  }
  if (o.max_memory > 0 && RequestBudget(o.max_memory) < o.max_message_bytes * kBytesPerWireByte) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_memory: ", o.max_memory, " bytes leave ", RequestBudget(o.max_memory),
        " for requests, less than one message of --max_message_bytes=", o.max_message_bytes,
        " costs (", kBytesPerWireByte, "x its size); raise --max_memory to at least ",
        o.max_message_bytes * kBytesPerWireByte * 4 / 3, " or lower --max_message_bytes"));
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

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();

  std::unique_ptr<Server> server(new Server());
  server->metrics_ = std::make_unique<Metrics>();
  server->budget_ = std::make_unique<MemoryBudget>(RequestBudget(options.max_memory));
  if (!options.auth_token_file.empty()) {
    absl::StatusOr<std::unique_ptr<TokenAuthenticator>> auth =
        TokenAuthenticator::FromFile(options.auth_token_file);
    if (!auth.ok()) return auth.status();
    server->auth_ = *std::move(auth);
  }
  server->pool_ = std::make_unique<WorkerPool>(options.workers, options.queue_depth,
                                               options.sample_on_grpc_threads);
  ServiceOptions service_options;
  service_options.limits = options.limits;
  service_options.max_message_bytes = options.max_message_bytes;
  service_options.auth = server->auth_.get();
  service_options.metrics = server->metrics_.get();
  service_options.budget = server->budget_.get();
  service_options.max_streams = options.max_streams;
  service_options.max_live_sequences = options.max_live_sequences;
  service_options.shared_memory = options.shared_memory;
  server->service_ = std::make_unique<SamplerService>(server->pool_.get(), service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<ReflectionOption>(options.reflection));
  // gRPC sets SO_REUSEPORT by default: a second server on a busy port would then start
  // and share the port's connections with the first. Refuse the port instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  const std::vector<std::string> addresses = *SplitListenAddresses(options.address);
  std::vector<int> ports(addresses.size(), 0);
  for (size_t i = 0; i < addresses.size(); ++i) {
    const std::string path = UnixSocketPath(addresses[i]);
    if (!path.empty()) {
      status = PrepareUnixSocket(path);
      if (!status.ok()) return status;
    }
    builder.AddListeningPort(addresses[i], *credentials, &ports[i]);
  }
  if (options.max_memory > 0) {
    grpc::ResourceQuota quota("tokensampler");
    quota.Resize(static_cast<size_t>(options.max_memory - RequestBudget(options.max_memory)));
    builder.SetResourceQuota(quota);
  }
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
  if (!options.metrics_address.empty()) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(server->metrics_->MakeInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("--address: cannot listen on ", options.address));
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    const std::string path = UnixSocketPath(addresses[i]);
    if (!path.empty()) {
      // gRPC binds with the process umask; the socket's mode decides who may connect.
      if (chmod(path.c_str(), static_cast<mode_t>(options.unix_socket_mode)) != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("--unix_socket_mode: chmod ", path, ": ", std::strerror(errno)));
      }
      server->addresses_.push_back(addresses[i]);
      continue;
    }
    if (ports[i] == 0) {
      return absl::UnavailableError(absl::StrCat("--address: cannot listen on ", addresses[i]));
    }
    if (server->port_ == 0) server->port_ = ports[i];
    server->addresses_.push_back(WithPort(addresses[i], ports[i]));
  }
  if (!options.health_address.empty()) {
    grpc::ServerBuilder health_builder;
    health_builder.SetOption(std::make_unique<ReflectionOption>(options.reflection));
    health_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    health_builder.AddListeningPort(options.health_address, grpc::InsecureServerCredentials(),
                                    &server->health_port_);
    server->health_server_ = health_builder.BuildAndStart();
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("--health_address: cannot listen on ", options.health_address));
    }
    server->health_address_ = WithPort(options.health_address, server->health_port_);
  }
  if (!options.metrics_address.empty()) {
    server->RegisterGauges(options);
    auto http = MetricsHttpServer::Start(options.metrics_address, server->metrics_.get());
    if (!http.ok()) return http.status();
    server->metrics_http_ = *std::move(http);
  }
  for (grpc::Server* s : server->grpc_servers()) {
    grpc::HealthCheckServiceInterface* health = s->GetHealthCheckService();
    if (health != nullptr) {
      health->SetServingStatus(true);
      health->SetServingStatus(kServiceName, true);
    }
  }
  return server;
}

void Server::RegisterGauges(const ServerOptions& options) {
  WorkerPool* pool = pool_.get();
  SamplerService* service = service_.get();
  Metrics& m = *metrics_;
  m.RegisterGauge("tokensampler_queue_tasks", "Row tasks waiting for a worker.",
                  [pool] { return static_cast<double>(pool->queued()); });
  m.RegisterGauge("tokensampler_queue_capacity_tasks",
                  "Row tasks that may wait for a worker (--queue_depth).",
                  [depth = options.queue_depth] { return static_cast<double>(depth); });
  m.RegisterGauge("tokensampler_workers", "Sampling worker threads.",
                  [pool] { return static_cast<double>(pool->threads()); });
  m.RegisterGauge("tokensampler_rows_in_flight", "Rows handed to the workers, not finished.",
                  [service] { return static_cast<double>(service->rows_in_flight()); });
  m.RegisterGauge("tokensampler_streams", "Open SampleStream calls.",
                  [service] { return static_cast<double>(service->open_streams()); });
  m.RegisterGauge("tokensampler_stream_sequences", "Live sequences over all open streams.",
                  [service] { return static_cast<double>(service->live_sequences()); });
  const MemoryBudget* budget = budget_.get();
  m.RegisterGauge("tokensampler_memory_budget_used_bytes",
                  "Bytes of the request memory budget held by requests and histories.",
                  [budget] { return static_cast<double>(budget->used()); });
  m.RegisterGauge("tokensampler_memory_budget_limit_bytes",
                  "The request memory budget (3/4 of --max_memory); 0 = unlimited.",
                  [budget] { return static_cast<double>(budget->limit()); });
  m.RegisterGauge("tokensampler_shared_memory_regions", "Registered shared memory regions.",
                  [service] { return static_cast<double>(service->shared_memory().regions()); });
  m.RegisterGauge("tokensampler_shared_memory_bytes",
                  "Bytes of the registered shared memory regions (mapped read-only).",
                  [service] { return static_cast<double>(service->shared_memory().bytes()); });
  m.RegisterGauge("tokensampler_serving",
                  "1 while health says SERVING, 0 in the lame duck and the drain.",
                  [this] { return lame_duck() ? 0.0 : 1.0; });
}

std::vector<grpc::Server*> Server::grpc_servers() const {
  std::vector<grpc::Server*> servers = {server_.get()};
  if (health_server_ != nullptr) servers.push_back(health_server_.get());
  return servers;
}

void Server::EnterLameDuck() {
  if (lame_duck_.exchange(true)) return;
  // SetServingStatus(bool) sets every service, the overall "" and kServiceName alike;
  // open Watch streams (client-side health checking) hear it at once.
  for (grpc::Server* s : grpc_servers()) {
    grpc::HealthCheckServiceInterface* health = s->GetHealthCheckService();
    if (health != nullptr) health->SetServingStatus(false);
  }
}

void Server::Shutdown(absl::Duration drain) {
  if (shut_down_) return;
  shut_down_ = true;
  EnterLameDuck();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + drain));
  server_->Wait();
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
  }
  // No call is left: every mapping goes with the registry's references.
  service_->shared_memory().Unregister("").IgnoreError();
}

Server::~Server() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
  metrics_http_.reset();
  health_server_.reset();
  server_.reset();
  service_.reset();
  auth_.reset();
  pool_.reset();
  budget_.reset();
  metrics_.reset();
}

}  // namespace tokensampler::server
