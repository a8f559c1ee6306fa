#include "server/log_limiter.h"

#include <algorithm>

namespace tokensampler::server {

LogLimiter::LogLimiter(double per_second, double burst)
    : per_second_(per_second), burst_(burst), tokens_(burst) {}

bool LogLimiter::Admit(absl::Time now, uint64_t* suppressed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (last_ != absl::InfinitePast() && now > last_) {
    tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * per_second_);
  }
  if (now > last_) last_ = now;
  if (tokens_ < 1) {
    ++suppressed_;
    return false;
  }
  tokens_ -= 1;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace tokensampler::server
