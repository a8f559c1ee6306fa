#include "server/tls.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace tokensampler::server {
namespace {

// Reads `path` far enough to give a clear start-up error: the provider itself only logs
// an unreadable file and then fails every handshake.
absl::Status CheckPemFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read \"", path, "\""));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  if (!absl::StrContains(contents.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": \"", path, "\" is not a PEM file (no -----BEGIN line)"));
  }
  return absl::OkStatus();
}

}  // namespace

bool TlsEnabled(const TlsOptions& options) {
  return !options.cert_file.empty() || !options.key_file.empty();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options) {
  if (!TlsEnabled(options)) {
    if (!options.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls_client_ca: needs --tls_cert and --tls_key (mTLS is TLS with client "
          "certificates)");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.cert_file.empty() || options.key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.cert_file.empty() ? "--tls_cert" : "--tls_key", ": must be set together with ",
        options.cert_file.empty() ? "--tls_key" : "--tls_cert"));
  }
  for (auto [flag, path] :
       {std::pair<absl::string_view, const std::string*>{"tls_cert", &options.cert_file},
        {"tls_key", &options.key_file},
        {"tls_client_ca", &options.client_ca_file}}) {
    if (path->empty()) continue;
    absl::Status status = CheckPemFile(flag, *path);
    if (!status.ok()) return status;
  }
  if (options.reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_reload_interval: must be >= 1s, got ",
                                                   absl::FormatDuration(options.reload_interval)));
  }
  const auto interval = static_cast<unsigned int>(
      std::min<int64_t>(absl::ToInt64Seconds(options.reload_interval), 86400));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.client_ca_file, interval);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (!options.client_ca_file.empty()) {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(tls);
}

}  // namespace tokensampler::server
