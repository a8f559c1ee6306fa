#include "server/auth.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/log.h"

namespace tokensampler::server {
namespace {

constexpr absl::string_view kBearer = "bearer ";

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseTokenFile(absl::string_view path,
                                                        absl::string_view contents) {
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    tokens.emplace_back(line);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth_token_file: \"", path, "\" holds no token (one per line)"));
  }
  return tokens;
}

bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected) {
  if (expected.empty()) return false;
  // Walk all of `presented` whatever the lengths; every byte costs the same.
  unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < presented.size(); ++i) {
    diff |= static_cast<unsigned char>(presented[i] ^ expected[i % expected.size()]);
  }
  return diff == 0;
}

absl::StatusOr<std::unique_ptr<TokenAuthenticator>> TokenAuthenticator::FromFile(
    const std::string& path, absl::Duration recheck) {
  std::unique_ptr<TokenAuthenticator> auth(new TokenAuthenticator(path, recheck));
  absl::Status status;
  {
    absl::MutexLock lock(&auth->mu_);
    status = auth->Load();
  }
  if (!status.ok()) return status;
  return auth;
}

absl::Status TokenAuthenticator::Load() {
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth_token_file: cannot read \"", path_, "\""));
  }
  const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  if (tokens_ != nullptr && mtime_ns == mtime_ns_ && st.st_size == size_) {
    return absl::OkStatus();
  }
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth_token_file: cannot read \"", path_, "\""));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  absl::StatusOr<std::vector<std::string>> tokens = ParseTokenFile(path_, contents.str());
  if (!tokens.ok()) return tokens.status();
  const bool reload = tokens_ != nullptr;
  tokens_ = std::make_shared<const std::vector<std::string>>(*std::move(tokens));
  mtime_ns_ = mtime_ns;
  size_ = st.st_size;
  if (reload) {
    LogEvent(LogLevel::kInfo, "auth_tokens_reloaded",
             {{"file", path_}, {"tokens", absl::StrCat(tokens_->size())}});
  }
  return absl::OkStatus();
}

std::shared_ptr<const std::vector<std::string>> TokenAuthenticator::Tokens() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (now >= next_check_) {
    next_check_ = now + recheck_;
    absl::Status status = Load();
    if (!status.ok()) {
      LogEvent(LogLevel::kWarn, "auth_tokens_reload_failed",
               {{"message", std::string(status.message())}, {"kept", "previous tokens"}});
    }
  }
  return tokens_;
}

absl::Status TokenAuthenticator::Check(absl::string_view authorization) {
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing authorization metadata: send \"authorization: Bearer <token>\"");
  }
  if (authorization.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError(
        "authorization metadata: expected the Bearer scheme (\"Bearer <token>\")");
  }
  const absl::string_view presented = authorization.substr(kBearer.size());
  bool match = false;
  for (const std::string& token : *Tokens()) match |= ConstantTimeEquals(presented, token);
  if (!match) return absl::UnauthenticatedError("authorization metadata: unknown bearer token");
  return absl::OkStatus();
}

absl::Status TokenAuthenticator::CheckCall(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return Check("");
  return Check(absl::string_view(it->second.data(), it->second.size()));
}

}  // namespace tokensampler::server
