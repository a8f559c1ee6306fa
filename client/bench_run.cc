#include "client/bench_run.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tokensampler::client {

std::string StatusCodeName(int code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat("CODE_", code) : name;
}

BenchRun::BenchRun(const BenchOptions& options, BenchPayloads payloads)
    : options_(options), payloads_(std::move(payloads)) {}

void BenchRun::Start(BenchClock::time_point start) {
  measure_start_ = start + absl::ToChronoNanoseconds(options_.warmup);
  measure_end_ = measure_start_ + absl::ToChronoNanoseconds(options_.duration);
  absl::MutexLock lock(&mu_);
  active_ = options_.concurrency;
}

bool BenchRun::MayIssue(BenchClock::time_point now, bool* measured) {
  if (stopping_.load(std::memory_order_relaxed)) return false;
  if (now < measure_start_) {
    *measured = false;
    return true;
  }
  *measured = true;
  if (options_.requests > 0) {
    if (measured_issued_.fetch_add(1, std::memory_order_relaxed) < options_.requests) {
      return true;
    }
    stopping_.store(true, std::memory_order_relaxed);
    return false;
  }
  if (now < measure_end_) return true;
  stopping_.store(true, std::memory_order_relaxed);
  return false;
}

bool BenchRun::Over(BenchClock::time_point now) const {
  if (stopping_.load(std::memory_order_relaxed)) return true;
  if (now < measure_start_) return false;
  if (options_.requests > 0) {
    return measured_issued_.load(std::memory_order_relaxed) >= options_.requests;
  }
  return now >= measure_end_;
}

void BenchRun::Record(CallerStats* stats, bool measured, BenchClock::time_point start,
                      BenchClock::time_point end, const grpc::Status& status) {
  if (!status.ok() && IsFatal(status)) StopWith(status);
  if (!measured) return;
  stats->last_done = end;
  if (status.ok()) {
    ++stats->ok;
    stats->latency_ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    ok_.fetch_add(1, std::memory_order_relaxed);
  } else {
    ++stats->error_codes[status.error_code()];
    if (stats->first_error.empty()) {
      stats->first_error =
          absl::StrCat(StatusCodeName(status.error_code()), ": ", status.error_message());
    }
    failed_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::string BenchRun::fatal_error() {
  absl::MutexLock lock(&mu_);
  return fatal_error_;
}

void BenchRun::CallerFinished() {
  absl::MutexLock lock(&mu_);
  if (--active_ == 0) cv_.SignalAll();
}

bool BenchRun::WaitFor(std::chrono::milliseconds timeout) {
  const absl::Time deadline = absl::Now() + absl::FromChrono(timeout);
  absl::MutexLock lock(&mu_);
  while (active_ != 0 && !cv_.WaitWithDeadline(&mu_, deadline)) {
  }
  return active_ == 0;
}

const grpc::ByteBuffer& BenchRun::UnaryPayload(uint64_t n) const {
  return payloads_.unary[n % payloads_.unary.size()];
}

grpc::ByteBuffer BenchRun::StreamPayload(uint64_t n, absl::Span<const std::string> ids,
                                         bool end) const {
  return ComposeSampleRequest(payloads_.row_logits[n % payloads_.row_logits.size()],
                              payloads_.params, ids, end);
}

const std::vector<float>& BenchRun::FloatRows(uint64_t n) const {
  return payloads_.float_rows[n % payloads_.float_rows.size()];
}

bool BenchRun::IsFatal(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return true;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return absl::StrContains(status.error_message(), "message larger than max");
    default:
      return false;
  }
}

void BenchRun::StopWith(const grpc::Status& status) {
  stopping_.store(true, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  if (fatal_error_.empty()) {
    fatal_error_ = absl::StrCat(StatusCodeName(status.error_code()), ": ", status.error_message());
  }
}

}  // namespace tokensampler::client
