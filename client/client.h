// A small typed client for the tokensampler.v1.Sampler service.
//
//   auto client = tokensampler::client::Client::Create("127.0.0.1:50051");
//   absl::StatusOr<v1::SampleResponse> r = (*client)->Sample(request);
//
// Errors are absl::Status with the gRPC code kept; a server that cannot be reached gives
// UNAVAILABLE "cannot reach server at ADDRESS: ...". Thread-safe: one Client may be used
// from many threads (it owns one gRPC channel).
#ifndef TOKENSAMPLER_CLIENT_CLIENT_H_
#define TOKENSAMPLER_CLIENT_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::client {

struct ClientOptions {
  // Deadline of every call (and of each stream as a whole). <= 0 = none.
  absl::Duration timeout = absl::Seconds(10);
  // Largest message sent or received. A batch of 128k-vocab float32 rows is ~0.5 MB a row.
  int max_message_bytes = 256 << 20;
  // Extra attempts of a call that failed with UNAVAILABLE before the server answered
  // (a replica went away), through gRPC's retry policy; 0 = none, at most 4. Every
  // Sampler RPC may be retried: Sample and GetDistribution are pure functions of the
  // request, and a stream is only retried before its first response.
  int retries = 0;
  // TLS: on when tls_ca or tls_cert is set. tls_ca: PEM bundle the server certificate
  // must chain to (empty = the system roots); tls_cert + tls_key: this client's PEM
  // certificate and key for mutual TLS. tls_server_name overrides the name checked
  // against the server certificate (default: the host of the address).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  // File whose first token line (blank and '#' lines skipped) is sent with every call
  // as "authorization: Bearer <token>".
  std::string auth_token_file;
};

// The default service config of a channel: round_robin when asked, and the retry
// policy for `retries` > 0. Empty when neither applies.
std::string ServiceConfigJson(bool round_robin, int retries);

// grpc.health.v1 serving status.
enum class HealthStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };
absl::string_view HealthStatusName(HealthStatus status);

// Converts a gRPC status into an absl::Status with the same code; `address` appears in
// the message of connection failures, `method` in deadline errors.
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view address,
                            absl::string_view method);

class SampleStream;

class Client {
 public:
  // Parses `address` (see ParseServerAddress) and creates the channel. Does not connect:
  // an unreachable server shows up as the first call's error.
  static absl::StatusOr<std::unique_ptr<Client>> Create(absl::string_view address,
                                                        ClientOptions options = {});

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  absl::StatusOr<v1::SampleResponse> Sample(const v1::SampleRequest& request);
  absl::StatusOr<v1::DistributionResponse> GetDistribution(const v1::SampleRequest& request);
  absl::StatusOr<v1::ServerInfo> GetServerInfo();
  // Shared memory regions (see SharedMemoryObject in client/shared_memory.h).
  absl::Status RegisterSharedMemory(const v1::RegisterSharedMemoryRequest& request);
  absl::Status UnregisterSharedMemory(absl::string_view name);
  absl::StatusOr<v1::GetSharedMemoryStatusResponse> GetSharedMemoryStatus(
      absl::string_view name = "");
  // grpc.health.v1.Health/Check for `service` ("" = the server as a whole). A server that
  // does not know `service` gives kServiceUnknown (gRPC's NOT_FOUND), not an error.
  absl::StatusOr<HealthStatus> Health(absl::string_view service = "");

  // Opens a SampleStream decode session; the stream's deadline is the call timeout
  // times `timeout_multiplier` counted from now.
  std::unique_ptr<SampleStream> OpenStream(double timeout_multiplier = 1.0);

  const std::string& address() const { return address_; }
  const ChannelTarget& target() const { return target_; }
  const ClientOptions& options() const { return options_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // Sets the call deadline from the options and the bearer token, if any.
  void PrepareContext(grpc::ClientContext* context, double timeout_multiplier = 1.0) const;

 private:
  Client(std::string address, ChannelTarget target, ClientOptions options,
         std::shared_ptr<grpc::Channel> channel, std::string authorization);

  std::string address_;
  ChannelTarget target_;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string authorization_;  // "Bearer <token>", or empty
  std::unique_ptr<v1::Sampler::Stub> stub_;
};

// A synchronous SampleStream: each Step sends one request message and waits for its
// response. Not thread-safe. Destroying an unfinished stream cancels it.
class SampleStream {
 public:
  SampleStream(const Client* client, v1::Sampler::Stub* stub, double timeout_multiplier);
  ~SampleStream();
  SampleStream(const SampleStream&) = delete;
  SampleStream& operator=(const SampleStream&) = delete;

  absl::StatusOr<v1::SampleResponse> Step(const v1::SampleRequest& request);
  // Half-closes the stream and returns the server's final status.
  absl::Status Finish();

 private:
  const Client* client_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SampleRequest, v1::SampleResponse>> stream_;
  bool finished_ = false;
  bool failed_ = false;
};

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLIENT_H_
