// A token bucket for log lines a client can trigger (one warn line per failed call):
// a client retrying a bad call must not fill the disk. At most `burst` lines pass at
// once and `per_second` on average; the lines dropped in between are counted and
// reported with the next line that passes (`suppressed=N`).
#ifndef TOKENSAMPLER_SERVER_LOG_LIMITER_H_
#define TOKENSAMPLER_SERVER_LOG_LIMITER_H_

#include <cstdint>
#include <mutex>

#include "absl/time/time.h"

namespace tokensampler::server {

class LogLimiter {
 public:
  // REQUIRES: per_second > 0, burst >= 1.
  LogLimiter(double per_second, double burst);
  LogLimiter(const LogLimiter&) = delete;
  LogLimiter& operator=(const LogLimiter&) = delete;

  // Whether a line may be written at `now`. When it may, `*suppressed` is the number of
  // lines refused since the last one that passed (then reset to 0). Thread-safe.
  bool Admit(absl::Time now, uint64_t* suppressed);

 private:
  const double per_second_;
  const double burst_;
  std::mutex mu_;
  double tokens_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t suppressed_ = 0;
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_LOG_LIMITER_H_
