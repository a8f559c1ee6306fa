// Bearer-token authentication of the Sampler RPCs. Calls must carry the metadata
// `authorization: Bearer <token>` with one of the tokens of --auth_token_file (one per
// line); anything else gets UNAUTHENTICATED. Tokens are compared in constant time and
// never logged. grpc.health.v1 and server reflection are other services and do not
// check tokens, so probes need none.
#ifndef TOKENSAMPLER_SERVER_AUTH_H_
#define TOKENSAMPLER_SERVER_AUTH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"

namespace tokensampler::server {

// The tokens of a token file: one per line; blank lines, lines starting with '#' and
// surrounding whitespace are ignored. Error (naming the file) when it holds none.
absl::StatusOr<std::vector<std::string>> ParseTokenFile(absl::string_view path,
                                                        absl::string_view contents);

// True when `presented` equals `expected`; the time taken depends only on their
// lengths, not on where they differ.
bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected);

// Thread-safe. The file is re-read when its modification time or size changes
// (checked at most once per `recheck`), so tokens rotate without a restart; a re-read
// that fails keeps the previous tokens.
class TokenAuthenticator {
 public:
  static absl::StatusOr<std::unique_ptr<TokenAuthenticator>> FromFile(
      const std::string& path, absl::Duration recheck = absl::Seconds(1));

  // OK when `authorization` is "Bearer <token>" (scheme case-insensitive) with a known
  // token; else UNAUTHENTICATED with a message that never contains what was sent.
  absl::Status Check(absl::string_view authorization);
  // Check() on the call's `authorization` metadata (missing = UNAUTHENTICATED).
  absl::Status CheckCall(const grpc::CallbackServerContext& context);

 private:
  TokenAuthenticator(std::string path, absl::Duration recheck)
      : path_(std::move(path)), recheck_(recheck) {}
  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<const std::vector<std::string>> Tokens();

  const std::string path_;
  const absl::Duration recheck_;
  absl::Mutex mu_;
  std::shared_ptr<const std::vector<std::string>> tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t mtime_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t size_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_AUTH_H_
