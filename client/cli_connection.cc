#include "client/cli_connection.h"

#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"

namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : std::string(fallback);
}

}  // namespace

ABSL_FLAG(std::string, server, EnvOr("TOKENSAMPLER_SERVER", "127.0.0.1:50051"),
          "Server address: host:port, dns:///host:port (round robin over every address), or "
          "a comma list host:port,host:port (round robin). Environment: TOKENSAMPLER_SERVER.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call, e.g. 500ms, 10s.");
ABSL_FLAG(int32_t, retries, 0,
          "Extra attempts (0..4) of a call that fails with UNAVAILABLE before the server "
          "answered, e.g. when a replica goes away; 0 = fail at once.");
ABSL_FLAG(std::string, tls_ca, EnvOr("TOKENSAMPLER_TLS_CA", ""),
          "PEM CA bundle that the server certificate must chain to; set = TLS. "
          "Environment: TOKENSAMPLER_TLS_CA.");
ABSL_FLAG(std::string, tls_cert, EnvOr("TOKENSAMPLER_CLIENT_CERT", ""),
          "PEM client certificate for mutual TLS (with --tls_key); set = TLS (system roots "
          "unless --tls_ca). Environment: TOKENSAMPLER_CLIENT_CERT.");
ABSL_FLAG(std::string, tls_key, EnvOr("TOKENSAMPLER_CLIENT_KEY", ""),
          "PEM private key of --tls_cert. Environment: TOKENSAMPLER_CLIENT_KEY.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name to check the server certificate against instead of the address's host.");
ABSL_FLAG(std::string, auth_token_file, EnvOr("TOKENSAMPLER_CLIENT_TOKEN_FILE", ""),
          "File whose first line is a bearer token, sent with every call as "
          "'authorization: Bearer <token>'. Environment: TOKENSAMPLER_CLIENT_TOKEN_FILE.");

namespace tokensampler::client {

const std::vector<FlagRef>& GlobalFlags() {
  static const auto* flags =
      new std::vector<FlagRef>{"server",   "timeout", "retries",         "tls_ca",
                               "tls_cert", "tls_key", "tls_server_name", "auth_token_file"};
  return *flags;
}

absl::StatusOr<std::unique_ptr<Client>> MakeClient(const Invocation& inv) {
  ClientOptions options;
  options.timeout = absl::GetFlag(FLAGS_timeout);
  options.retries = absl::GetFlag(FLAGS_retries);
  options.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  auto client = Client::Create(absl::GetFlag(FLAGS_server), options);
  if (!client.ok() && !inv.Given("server") && std::getenv("TOKENSAMPLER_SERVER") != nullptr) {
    // The address came from the environment: name the variable, not the flag.
    return absl::Status(
        client.status().code(),
        absl::StrReplaceAll(client.status().message(), {{"--server", "TOKENSAMPLER_SERVER"}}));
  }
  return client;
}

std::string ServerFlag() { return absl::GetFlag(FLAGS_server); }

}  // namespace tokensampler::client
