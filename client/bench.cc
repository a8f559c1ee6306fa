#include "client/bench.h"

#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/bench_callers.h"
#include "client/bench_payload.h"
#include "client/bench_run.h"
#include "client/shm_region.h"

namespace tokensampler::client {
namespace {

absl::Status CheckOptions(const BenchOptions& options) {
  if (options.concurrency < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--concurrency: must be >= 1, got ", options.concurrency));
  }
  if (options.vocab < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--vocab: must be >= 1, got ", options.vocab));
  }
  if (options.rows < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--rows: must be >= 1, got ", options.rows));
  }
  if (options.requests < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--requests: must be >= 0, got ", options.requests));
  }
  if (options.verify && options.shared_memory) {
    return absl::InvalidArgumentError(
        "--mode=verify: send --wire values, float32, bfloat16 or "
        "float16 (shm is not generated for Verify rows)");
  }
  if (options.verify && options.draft_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--draft_tokens: must be >= 0 in verify mode, got ", options.draft_tokens));
  }
  if (options.requests == 0 && options.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--duration: must be > 0 (or give --requests)");
  }
  if (options.warmup < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--warmup: must be >= 0");
  }
  return absl::OkStatus();
}

// Writes a progress line: "warming up (0.4s left)" or the measured calls so far.
void WriteProgress(const BenchRun& run, BenchClock::time_point now, double rows_per_request,
                   std::ostream& progress, bool tty) {
  const double elapsed = std::chrono::duration<double>(now - run.measure_start()).count();
  std::string line;
  if (elapsed < 0) {
    line = absl::StrFormat("warming up (%.1fs left)", -elapsed);
  } else {
    const int64_t ok = run.ok();
    line = absl::StrFormat("%6.1fs  %9d requests  %10.0f rows/s  %6d errors", elapsed, ok,
                           elapsed > 0 ? ok * rows_per_request / elapsed : 0.0, run.failed());
  }
  if (tty) {
    progress << "\r\033[K" << line << std::flush;
  } else {
    progress << line << "\n" << std::flush;
  }
}

}  // namespace

absl::StatusOr<BenchResult> RunBench(Client& client, const BenchOptions& options,
                                     std::ostream* progress, bool progress_tty) {
  if (absl::Status status = CheckOptions(options); !status.ok()) return status;
  // Logit rows per request row: the k + 1 target positions of a Verify row.
  const int positions = options.verify ? options.draft_tokens + 1 : 1;
  const Wire wire = options.shared_memory ? Wire::kFloat32 : options.wire;
  const double total_bytes =
      static_cast<double>(options.vocab) * options.rows * positions * WireBytesPerLogit(wire);
  if (!options.shared_memory && total_bytes > client.options().max_message_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--vocab x --rows: a request of %.0f bytes of logits exceeds the %d-byte message limit",
        total_bytes, client.options().max_message_bytes));
  }
  const size_t row_bytes = static_cast<size_t>(options.vocab) * WireBytesPerLogit(wire);
  const size_t request_bytes = row_bytes * options.rows * positions;
  BenchPayloads payloads = MakeBenchPayloads(options, request_bytes);
  std::vector<std::unique_ptr<CallerRegion>> regions(options.concurrency);
  if (options.shared_memory) {
    auto prefix = ServerSharedMemoryPrefix(client);
    if (!prefix.ok()) return prefix.status();
    for (auto& region : regions) {
      auto created = CreateCallerRegion(client, *prefix, options.rows, options.vocab);
      if (!created.ok()) return created.status();
      region = *std::move(created);
    }
  }

  BenchRun run(options, std::move(payloads));
  grpc::GenericStub stub(client.channel());
  std::vector<std::unique_ptr<UnaryCaller>> unary;
  std::vector<std::unique_ptr<StreamCaller>> streams;
  run.Start(BenchClock::now());
  for (int i = 0; i < options.concurrency; ++i) {
    if (options.stream) {
      streams.push_back(std::make_unique<StreamCaller>(&run, &stub, i, std::move(regions[i])));
    } else {
      unary.push_back(
          std::make_unique<UnaryCaller>(&run, &stub, &client, i, std::move(regions[i])));
    }
  }
  for (auto& c : unary) c->Issue();
  for (auto& c : streams) c->OpenStream();

  // Unary calls end by their deadline; streams have none, so streams still open this
  // long after the run is over are cancelled (and counted as failed).
  const auto grace = absl::ToChronoNanoseconds(client.options().timeout) + std::chrono::seconds(1);
  std::optional<BenchClock::time_point> over_since;
  while (!run.WaitFor(std::chrono::milliseconds(500))) {
    const BenchClock::time_point now = BenchClock::now();
    if (!over_since.has_value() && run.Over(now)) over_since = now;
    if (over_since.has_value() && now - *over_since > grace) {
      for (auto& c : streams) c->CancelCurrent();
    }
    if (progress != nullptr) WriteProgress(run, now, options.rows, *progress, progress_tty);
  }
  if (progress != nullptr && progress_tty) *progress << "\r\033[K" << std::flush;

  BenchResult result;
  std::vector<double> latencies;
  BenchClock::time_point last = run.measure_start();
  auto merge = [&](CallerStats& s) {
    result.requests += s.ok;
    latencies.insert(latencies.end(), s.latency_ms.begin(), s.latency_ms.end());
    for (const auto& [code, n] : s.error_codes) {
      result.errors += n;
      result.error_codes[StatusCodeName(code)] += n;
    }
    if (result.first_error.empty()) result.first_error = s.first_error;
    last = std::max(last, s.last_done);
  };
  for (auto& c : unary) merge(c->stats());
  for (auto& c : streams) merge(c->stats());
  result.rows = result.requests * options.rows;
  result.seconds = std::chrono::duration<double>(last - run.measure_start()).count();
  result.logits_bytes_per_request = static_cast<int64_t>(request_bytes);
  if (result.seconds > 0) {
    result.requests_per_s = result.requests / result.seconds;
    result.rows_per_s = result.rows / result.seconds;
    result.mb_per_s = result.requests * static_cast<double>(request_bytes) / 1e6 / result.seconds;
  }
  result.latency_ms = Summarize(latencies);
  result.fatal_error = run.fatal_error();
  return result;
}

}  // namespace tokensampler::client
