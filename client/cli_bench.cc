#include "client/cli_bench.h"

#include <unistd.h>

#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/bench.h"
#include "client/bench_report.h"
#include "client/cli.h"
#include "client/cli_connection.h"
#include "client/cli_logits_flags.h"
#include "client/cli_output.h"
#include "client/cli_sampling_flags.h"

ABSL_FLAG(int32_t, concurrency, 1, "Calls kept in flight (one per simulated caller).");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Measured run time (unless --requests).");
ABSL_FLAG(int64_t, requests, 0,
          "Measured number of calls instead of --duration; 0 = use --duration.");
ABSL_FLAG(int32_t, bench_vocab, 128256, "Vocabulary size of the generated rows.");
ABSL_FLAG(int32_t, rows, 1, "Rows per request (per stream message).");
ABSL_FLAG(std::string, mode, "unary",
          "unary (Sample calls), stream (SampleStream: one open stream per caller, a new "
          "one every 256 messages) or verify (Verify calls, --draft_tokens per row).");
ABSL_FLAG(int32_t, draft_tokens, 4,
          "bench --mode verify: draft tokens (k) per row; each row sends k + 1 target rows.");
ABSL_FLAG(std::string, pipeline, "greedy",
          "greedy (temperature 0) or full (temperature 0.8, top_k 50, top_p 0.95, min_p 0.05); "
          "sampling flags given on top override it.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Unmeasured time before the run.");
ABSL_FLAG(bool, progress, false, "Print progress lines even when stderr is not a terminal.");

namespace tokensampler::client {
namespace {

int RunBenchCommand(const Invocation& inv) {
  BenchOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.requests = absl::GetFlag(FLAGS_requests);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.vocab = absl::GetFlag(FLAGS_bench_vocab);
  options.rows = absl::GetFlag(FLAGS_rows);
  options.random_seed = RandomSeedFlag();
  options.pipeline = absl::GetFlag(FLAGS_pipeline);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "unary" && mode != "stream" && mode != "verify") {
    return Usage(absl::StrCat("--mode: unknown value '", mode, "' (want unary, stream or verify)"));
  }
  options.stream = mode == "stream";
  options.verify = mode == "verify";
  options.draft_tokens = absl::GetFlag(FLAGS_draft_tokens);
  options.shared_memory = SharedMemoryWire();
  absl::StatusOr<Wire> wire = RowWire();
  if (!wire.ok()) return Usage(wire.status().message());
  options.wire = *wire;
  auto base = PipelineParams(options.pipeline);
  if (!base.ok()) return Usage(base.status().message());
  auto params = SamplingFromFlags(inv, *base);
  if (!params.ok()) return Usage(params.status().message());
  options.params = *params;
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  const bool tty = isatty(STDERR_FILENO) == 1;
  const bool show_progress = tty || absl::GetFlag(FLAGS_progress);
  auto result = RunBench(**client, options, show_progress ? &std::cerr : nullptr, tty);
  if (!result.ok()) return Usage(result.status().message());
  if (!result->fatal_error.empty()) {
    std::cerr << "error: " << result->fatal_error
              << "\nbench stopped at the first call the server rejected (every call sends "
                 "the same parameters)\n";
    return kExitFailed;
  }
  const std::string server = ServerFlag();
  if (JsonOutput()) {
    std::cout << BenchResultJson(options, *result, server) << "\n";
  } else {
    std::cout << BenchResultText(options, *result, server);
  }
  // The run itself succeeded even when some calls failed (they are counted); it fails
  // only when nothing got through.
  if (result->requests == 0) {
    std::cerr << "error: no call succeeded"
              << (result->first_error.empty() ? "" : absl::StrCat(": ", result->first_error))
              << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

Subcommand BenchCommand() {
  return {"bench", "[--concurrency N] [--duration D | --requests N] [--vocab V] [--rows R] ...",
          "Load generator: throughput (requests/s, rows/s, MB/s) and latency percentiles.",
          Concat({"concurrency",
                  "duration",
                  "requests",
                  {"vocab", "bench_vocab"},
                  "rows",
                  "wire",
                  "mode",
                  "draft_tokens",
                  "pipeline",
                  "warmup",
                  "random_seed",
                  "progress",
                  "json"},
                 SamplingFlagRefs()),
          RunBenchCommand};
}

}  // namespace tokensampler::client
