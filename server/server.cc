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
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
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
  service_options.shared_memory = options.shared_memory;
  server->service_ = std::make_unique<SamplerService>(server->pool_.get(), service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::vector<std::string> addresses = *SplitListenAddresses(options.address);
  std::vector<int> ports(addresses.size(), 0);
  for (size_t i = 0; i < addresses.size(); ++i) {
    const std::string path = UnixSocketPath(addresses[i]);
    if (!path.empty()) {
      status = PrepareUnixSocket(path);
      if (!status.ok()) return status;
    }
    builder.AddListeningPort(addresses[i], grpc::InsecureServerCredentials(), &ports[i]);
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
  // No call is left: every mapping goes with the registry's references.
  service_->shared_memory().Unregister("").IgnoreError();
}

Server::~Server() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
  server_.reset();
  service_.reset();
  pool_.reset();
}

}  // namespace tokensampler::server
