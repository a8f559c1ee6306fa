#include "client/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "client/varint.h"

namespace tokensampler::client {
namespace {

// grpc.health.v1 messages are tiny; they are encoded by hand so that this library does
// not register a second copy of health.proto next to whatever a server links in.
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }
std::string EncodeHealthRequest(absl::string_view service) {
  std::string out;
  if (!service.empty()) AppendLengthDelimited(&out, 1, service);
  return out;
}

// Returns the status field of a HealthCheckResponse, skipping unknown fields.
absl::StatusOr<int> DecodeHealthResponse(const std::string& bytes) {
  size_t i = 0;
  int status = 0;
  auto read_varint = [&](uint64_t* v) { return ReadVarint(bytes, &i, v); };
  while (i < bytes.size()) {
    uint64_t key;
    if (!read_varint(&key)) return absl::DataLossError("malformed health response");
    const int field = static_cast<int>(key >> 3);
    const int type = static_cast<int>(key & 7);
    uint64_t v;
    if (type == 0) {
      if (!read_varint(&v)) return absl::DataLossError("malformed health response");
      if (field == 1) status = static_cast<int>(v);
    } else if (type == 2) {
      if (!read_varint(&v) || v > bytes.size() - i) {
        return absl::DataLossError("malformed health response");
      }
      i += v;
    } else if (type == 5) {
      i += 4;
    } else if (type == 1) {
      i += 8;
    } else {
      return absl::DataLossError("malformed health response");
    }
  }
  return status;
}

absl::StatusOr<std::string> ReadFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read \"", path, "\""));
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// TLS credentials from the options, or insecure ones when TLS is off.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.tls_cert.empty() ? "--tls_key" : "--tls_cert", ": must be set together with ",
        options.tls_cert.empty() ? "--tls_cert" : "--tls_key"));
  }
  if (options.tls_ca.empty() && options.tls_cert.empty()) {
    if (!options.tls_server_name.empty()) {
      return absl::InvalidArgumentError("--tls_server_name: needs --tls_ca or --tls_cert");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  for (auto [flag, path, pem] : {std::tuple<absl::string_view, const std::string*, std::string*>{
                                     "tls_ca", &options.tls_ca, &ssl.pem_root_certs},
                                 {"tls_cert", &options.tls_cert, &ssl.pem_cert_chain},
                                 {"tls_key", &options.tls_key, &ssl.pem_private_key}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> contents = ReadFile(flag, *path);
    if (!contents.ok()) return contents.status();
    *pem = *std::move(contents);
  }
  return grpc::SslCredentials(ssl);
}

// "Bearer <token>" from the first token line of `path`; "" when `path` is empty.
absl::StatusOr<std::string> ReadAuthorization(const std::string& path) {
  if (path.empty()) return std::string();
  absl::StatusOr<std::string> contents = ReadFile("auth_token_file", path);
  if (!contents.ok()) return contents.status();
  for (absl::string_view line : absl::StrSplit(*contents, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty() && line[0] != '#') return absl::StrCat("Bearer ", line);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--auth_token_file: \"", path, "\" holds no token"));
}

}  // namespace

absl::string_view HealthStatusName(HealthStatus status) {
  switch (status) {
    case HealthStatus::kUnknown:
      return "UNKNOWN";
    case HealthStatus::kServing:
      return "SERVING";
    case HealthStatus::kNotServing:
      return "NOT_SERVING";
    case HealthStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
  }
  return "UNKNOWN";
}

absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view address,
                            absl::string_view method) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::Status(
          code, absl::StrCat("cannot reach server at ", address, ": ", status.error_message()));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::Status(
          code, absl::StrCat(method, " on ", address,
                             ": deadline exceeded (raise --timeout): ", status.error_message()));
    default:
      return absl::Status(code, status.error_message());
  }
}

std::string ServiceConfigJson(bool round_robin, int retries) {
  std::vector<std::string> parts;
  if (round_robin) {
    parts.push_back(R"("loadBalancingConfig": [{"round_robin": {}}])");
    // Client-side health checking: each subchannel watches grpc.health.v1 for the
    // Sampler service and round_robin picks only SERVING replicas, so a replica in its
    // lame-duck phase (SIGTERM, health NOT_SERVING) gets no new calls before its port
    // closes. A server without the health service (UNIMPLEMENTED) counts as healthy.
    parts.push_back(R"("healthCheckConfig": {"serviceName": "tokensampler.v1.Sampler"})");
  }
  if (retries > 0) {
    parts.push_back(absl::StrCat(
        R"("methodConfig": [{"name": [{"service": "tokensampler.v1.Sampler"}], )",
        R"("retryPolicy": {"maxAttempts": )", std::min(retries, 4) + 1,
        R"(, "initialBackoff": "0.01s", "maxBackoff": "0.2s", "backoffMultiplier": 2, )",
        R"("retryableStatusCodes": ["UNAVAILABLE"]}}])"));
  }
  if (parts.empty()) return "";
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(absl::string_view address,
                                                       ClientOptions options) {
  auto target = ParseServerAddress(address);
  if (!target.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--server: ", target.status().message()));
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  if (options.retries < 0 || options.retries > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("--retries: must be in [0, 4], got ", options.retries));
  }
  const std::string config = ServiceConfigJson(target->round_robin, options.retries);
  if (!config.empty()) args.SetServiceConfigJSON(config);
  // A retried call keeps its request buffered until it commits; let whole batches fit.
  if (options.retries > 0) {
    args.SetInt(GRPC_ARG_PER_RPC_RETRY_BUFFER_SIZE, options.max_message_bytes);
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(options);
  if (!credentials.ok()) return credentials.status();
  if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  absl::StatusOr<std::string> authorization = ReadAuthorization(options.auth_token_file);
  if (!authorization.ok()) return authorization.status();
  auto channel = grpc::CreateCustomChannel(target->target, *credentials, args);
  return std::unique_ptr<Client>(new Client(std::string(address), *std::move(target), options,
                                            std::move(channel), *std::move(authorization)));
}

Client::Client(std::string address, ChannelTarget target, ClientOptions options,
               std::shared_ptr<grpc::Channel> channel, std::string authorization)
    : address_(std::move(address)),
      target_(std::move(target)),
      options_(std::move(options)),
      channel_(std::move(channel)),
      authorization_(std::move(authorization)),
      stub_(v1::Sampler::NewStub(channel_)) {}

void Client::PrepareContext(grpc::ClientContext* context, double timeout_multiplier) const {
  if (!authorization_.empty()) context->AddMetadata("authorization", authorization_);
  if (options_.timeout > absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout * timeout_multiplier));
  }
}

namespace {

// One unary call of the Sampler service with `client`'s deadline and token; errors as
// FromGrpcStatus names them.
template <typename Request, typename Response>
absl::StatusOr<Response> CallUnary(
    const Client& client, v1::Sampler::Stub* stub,
    grpc::Status (v1::Sampler::Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
    const Request& request, absl::string_view method) {
  grpc::ClientContext context;
  client.PrepareContext(&context);
  Response response;
  grpc::Status status = (stub->*rpc)(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status, client.address(), method);
  return response;
}

}  // namespace

absl::StatusOr<v1::SampleResponse> Client::Sample(const v1::SampleRequest& request) {
  return CallUnary(*this, stub_.get(), &v1::Sampler::Stub::Sample, request, "Sample");
}

absl::StatusOr<v1::VerifyResponse> Client::Verify(const v1::VerifyRequest& request) {
  return CallUnary(*this, stub_.get(), &v1::Sampler::Stub::Verify, request, "Verify");
}

absl::StatusOr<v1::DistributionResponse> Client::GetDistribution(const v1::SampleRequest& request) {
  return CallUnary(*this, stub_.get(), &v1::Sampler::Stub::GetDistribution, request,
                   "GetDistribution");
}

absl::StatusOr<v1::ServerInfo> Client::GetServerInfo() {
  return CallUnary(*this, stub_.get(), &v1::Sampler::Stub::GetServerInfo,
                   v1::GetServerInfoRequest(), "GetServerInfo");
}

absl::Status Client::RegisterSharedMemory(const v1::RegisterSharedMemoryRequest& request) {
  return CallUnary(*this, stub_.get(), &v1::Sampler::Stub::RegisterSharedMemory, request,
                   "RegisterSharedMemory")
      .status();
}

absl::Status Client::UnregisterSharedMemory(absl::string_view name) {
  v1::UnregisterSharedMemoryRequest request;
  request.set_name(std::string(name));
  return CallUnary(*this, stub_.get(), &v1::Sampler::Stub::UnregisterSharedMemory, request,
                   "UnregisterSharedMemory")
      .status();
}

absl::StatusOr<v1::GetSharedMemoryStatusResponse> Client::GetSharedMemoryStatus(
    absl::string_view name) {
  v1::GetSharedMemoryStatusRequest request;
  request.set_name(std::string(name));
  return CallUnary(*this, stub_.get(), &v1::Sampler::Stub::GetSharedMemoryStatus, request,
                   "GetSharedMemoryStatus");
}

absl::StatusOr<HealthStatus> Client::Health(absl::string_view service) {
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  PrepareContext(&context);
  const std::string body = EncodeHealthRequest(service);
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return HealthStatus::kServiceUnknown;
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return absl::UnimplementedError(
        absl::StrCat("server at ", address_, " has no grpc.health.v1 service"));
  }
  if (!status.ok()) return FromGrpcStatus(status, address_, "Health/Check");
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::DataLossError("unreadable health response");
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  auto code = DecodeHealthResponse(bytes);
  if (!code.ok()) return code.status();
  if (*code < 0 || *code > 3) return HealthStatus::kUnknown;
  return static_cast<HealthStatus>(*code);
}

std::unique_ptr<SampleStream> Client::OpenStream(double timeout_multiplier) {
  return std::make_unique<SampleStream>(this, stub_.get(), timeout_multiplier);
}

SampleStream::SampleStream(const Client* client, v1::Sampler::Stub* stub, double timeout_multiplier)
    : client_(client) {
  client_->PrepareContext(&context_, timeout_multiplier);
  stream_ = stub->SampleStream(&context_);
}

SampleStream::~SampleStream() {
  if (!finished_) {
    context_.TryCancel();
    stream_->Finish();
  }
}

absl::StatusOr<v1::SampleResponse> SampleStream::Step(const v1::SampleRequest& request) {
  if (finished_ || failed_) {
    return absl::FailedPreconditionError("the stream is finished or broken");
  }
  v1::SampleResponse response;
  if (!stream_->Write(request) || !stream_->Read(&response)) {
    // The stream broke: the server's status says why.
    failed_ = true;
    finished_ = true;
    grpc::Status status = stream_->Finish();
    if (status.ok()) return absl::InternalError("the server closed the stream early");
    return FromGrpcStatus(status, client_->address(), "SampleStream");
  }
  return response;
}

absl::Status SampleStream::Finish() {
  if (finished_) return absl::FailedPreconditionError("the stream is already finished");
  finished_ = true;
  stream_->WritesDone();
  v1::SampleResponse extra;
  while (stream_->Read(&extra)) {
  }
  return FromGrpcStatus(stream_->Finish(), client_->address(), "SampleStream");
}

}  // namespace tokensampler::client
