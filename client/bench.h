// `tokensampler bench`: a closed-loop load generator for the Sampler service.
//
// `concurrency` callers each keep one call outstanding (unary: back-to-back Sample
// calls; stream: one SampleStream at a time per caller, one message in flight, a new
// stream every stream_sequence_steps messages). Calls run on
// gRPC's callback API, so the client needs no thread per caller, and request payloads
// are serialized once before the run: each call sends shared, reference-counted bytes.
//
// The parts: bench_payload.h (the requests), bench_run.h (the measured window shared by
// the callers), bench_callers.h (unary, stream and shared-memory callers),
// bench_report.h (JSON and text).
#ifndef TOKENSAMPLER_CLIENT_BENCH_H_
#define TOKENSAMPLER_CLIENT_BENCH_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/latency.h"
#include "client/logits.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::client {

struct BenchOptions {
  int concurrency = 1;                          // >= 1 callers
  absl::Duration duration = absl::Seconds(10);  // measured time, used when requests == 0
  int64_t requests = 0;                         // > 0: measured calls, instead of duration
  absl::Duration warmup = absl::Seconds(1);     // calls started during warmup are not counted
  int vocab = 128256;                           // >= 1
  int rows = 1;                                 // rows per request (stream message), >= 1
  Wire wire = Wire::kValues;
  // Logits in shared memory instead of the message (--wire=shm): each caller creates one
  // object under the server's prefix, registers it as a region, rewrites its rows there
  // before every call (like a model writing each step's logits; outside the latency
  // clock) and sends float32 SharedMemoryRefs. `wire` is ignored.
  bool shared_memory = false;
  bool stream = false;  // SampleStream instead of unary Sample
  // Unary Verify instead of Sample: each row carries `draft_tokens` one-hot drafts (each
  // the argmax of its target row) and draft_tokens + 1 target rows of `vocab` logits.
  bool verify = false;
  int draft_tokens = 4;             // k, >= 0 (verify only)
  std::string pipeline = "greedy";  // for the report
  v1::SamplingParams params;        // every row's parameters
  uint64_t random_seed = 1;         // seeds the generated logits
  // Stream mode: each stream carries one decode session of this many steps, then ends
  // its sequences and closes; the caller opens a new stream (a new round-robin pick).
  int stream_sequence_steps = 256;
};

struct BenchResult {
  int64_t requests = 0;                        // calls that returned OK within the measured window
  int64_t rows = 0;                            // rows of those calls
  int64_t errors = 0;                          // calls that failed
  std::map<std::string, int64_t> error_codes;  // gRPC code name -> count
  std::string first_error;                     // message of the first failure, if any
  // Set when the run stopped early because a call failed in a way that every call will
  // (INVALID_ARGUMENT, UNIMPLEMENTED, UNAUTHENTICATED, PERMISSION_DENIED, a message over
  // a size limit): "CODE: the server's message".
  std::string fatal_error;
  double seconds = 0;                                       // measured wall time
  double requests_per_s = 0, rows_per_s = 0, mb_per_s = 0;  // MB = 1e6 bytes of logits
  int64_t logits_bytes_per_request = 0;
  LatencySummary latency_ms;  // over successful calls
};

// Runs the benchmark against `client`'s channel. When `progress` is not null a progress
// line is written to it about twice a second ("\r"-rewritten when `progress_tty`).
// Returns an error only for bad options; failed calls are counted and the run goes on,
// except after a call the server rejected as invalid (BenchResult::fatal_error), which
// every further call would repeat: then no new call starts.
absl::StatusOr<BenchResult> RunBench(Client& client, const BenchOptions& options,
                                     std::ostream* progress, bool progress_tty);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_BENCH_H_
