// Transport security of the listening port: plaintext, TLS, or mutual TLS, with the
// certificate files watched by gRPC's FileWatcherCertificateProvider so that a rotated
// certificate (or client CA bundle) is served without a restart.
#ifndef TOKENSAMPLER_SERVER_TLS_H_
#define TOKENSAMPLER_SERVER_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"

namespace tokensampler::server {

struct TlsOptions {
  std::string cert_file;       // PEM certificate chain; empty (with key_file) = plaintext
  std::string key_file;        // PEM private key matching cert_file
  std::string client_ca_file;  // PEM CA bundle; set = mTLS (client certificates required)
  // How often the files are checked for changes. Replace the key and the certificate
  // together (a rename or a symlink swap, as a Kubernetes Secret volume does), or a
  // check may see a key that does not match its certificate and keep the old pair.
  absl::Duration reload_interval = absl::Seconds(60);
};

// True when `options` asks for TLS (a certificate or key is set).
bool TlsEnabled(const TlsOptions& options);

// Checks the flags (cert and key together; a client CA needs them; every file readable
// and PEM) and returns the credentials of the listening port: insecure when TLS is off.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_TLS_H_
