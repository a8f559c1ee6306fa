// The state every caller of one bench run shares: the measured window (by time or by
// call count), the stop after a call no repetition can fix, the live ok/failed counters
// and the payloads; and what each caller accumulates on its own.
#ifndef TOKENSAMPLER_CLIENT_BENCH_RUN_H_
#define TOKENSAMPLER_CLIENT_BENCH_RUN_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "client/bench.h"
#include "client/bench_payload.h"

namespace tokensampler::client {

using BenchClock = std::chrono::steady_clock;

// The gRPC code name ("UNAVAILABLE") of a numeric status code; "CODE_99" if unknown.
std::string StatusCodeName(int code);

// Everything one caller accumulates; touched only by that caller's call chain, which
// runs one callback at a time.
struct CallerStats {
  std::vector<double> latency_ms;
  std::map<int, int64_t> error_codes;
  std::string first_error;
  int64_t ok = 0;
  BenchClock::time_point last_done{};
};

// Thread-safe: callers on gRPC's threads call MayIssue, Over, Record and CallerFinished
// concurrently.
class BenchRun {
 public:
  // `options` must outlive the run.
  BenchRun(const BenchOptions& options, BenchPayloads payloads);
  BenchRun(const BenchRun&) = delete;
  BenchRun& operator=(const BenchRun&) = delete;

  const BenchOptions& options() const { return options_; }

  // Starts the clock: warmup from `start`, then the measured window; every caller
  // (options.concurrency) counts as active until CallerFinished.
  void Start(BenchClock::time_point start);

  // Decides whether a caller may start another call now, and whether it is measured.
  // With options.requests > 0 each measured call uses up one request.
  bool MayIssue(BenchClock::time_point now, bool* measured);

  // True once no more calls may start (does not use up a request like MayIssue).
  bool Over(BenchClock::time_point now) const;

  // Counts a finished call into `stats` if `measured`; a call the server rejected in a
  // way every call repeats (IsFatal) stops the run.
  void Record(CallerStats* stats, bool measured, BenchClock::time_point start,
              BenchClock::time_point end, const grpc::Status& status);

  // The first call that failed in a way no repetition fixes, as "CODE: message"; empty
  // if none did. Read after the run.
  std::string fatal_error();

  void CallerFinished();
  // Waits up to `timeout` for every caller to finish; true when they have.
  bool WaitFor(std::chrono::milliseconds timeout);

  // Payload n (callers count their own n up), cycling through the variants.
  const grpc::ByteBuffer& UnaryPayload(uint64_t n) const;
  grpc::ByteBuffer StreamPayload(uint64_t n, absl::Span<const std::string> ids, bool end) const;
  // --wire=shm: the rows x vocab float32 logits of variant n, to write into a region.
  const std::vector<float>& FloatRows(uint64_t n) const;
  const std::string& params() const { return payloads_.params; }

  BenchClock::time_point measure_start() const { return measure_start_; }
  int64_t ok() const { return ok_.load(std::memory_order_relaxed); }
  int64_t failed() const { return failed_.load(std::memory_order_relaxed); }

  // Every call sends the same kind of request: one the server rejects as invalid (a
  // parameter out of range, a vocabulary over its max_vocab, a message over its size
  // limit, no or a wrong token) will be rejected again.
  static bool IsFatal(const grpc::Status& status);

 private:
  void StopWith(const grpc::Status& status);

  const BenchOptions& options_;
  const BenchPayloads payloads_;
  BenchClock::time_point measure_start_, measure_end_;
  std::atomic<int64_t> measured_issued_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> ok_{0}, failed_{0};
  absl::Mutex mu_;
  absl::CondVar cv_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  std::string fatal_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_BENCH_RUN_H_
