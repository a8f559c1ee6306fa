// The closed-loop callers of a bench run, on gRPC's callback API: a unary caller keeps
// one Sample (or Verify) call outstanding, a stream caller one SampleStream message; a
// failed call is retried after a short pause. Under --wire=shm each caller owns a region
// and rewrites its rows before every call.
#ifndef TOKENSAMPLER_CLIENT_BENCH_CALLERS_H_
#define TOKENSAMPLER_CLIENT_BENCH_CALLERS_H_

#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "client/bench_run.h"
#include "client/client.h"
#include "client/shm_region.h"

namespace tokensampler::client {

// --wire=shm: one caller's region and the Logits messages that point into it (row r at
// offset r * V * 4).
struct CallerRegion {
  ShmRegion shm;
  std::vector<grpc::Slice> row_refs;

  // Writes variant n's rows into the region, as a model writes a step's logits.
  void Rewrite(const BenchRun& run, uint64_t n);
};

// A region of `rows` x `vocab` float32 logits under the server's `prefix`.
absl::StatusOr<std::unique_ptr<CallerRegion>> CreateCallerRegion(Client& client,
                                                                 absl::string_view prefix, int rows,
                                                                 int vocab);

// Runs a callback a short pause after a failed call, so that a down server is not
// hammered. Used from one call chain at a time.
class RetryPause {
 public:
  void Then(std::function<void()> callback);

 private:
  // Alarms are kept a few rounds so none is destroyed inside its own callback.
  std::deque<std::unique_ptr<grpc::Alarm>> alarms_;
};

// One closed-loop caller of unary Sample, or Verify in verify mode.
class UnaryCaller {
 public:
  // `region` is null unless --wire=shm.
  UnaryCaller(BenchRun* run, grpc::GenericStub* stub, const Client* client, uint64_t index,
              std::unique_ptr<CallerRegion> region);

  // Starts the next call, or finishes this caller when the run is over.
  void Issue();
  CallerStats& stats() { return stats_; }

 private:
  BenchRun* run_;
  grpc::GenericStub* stub_;
  const Client* client_;
  uint64_t next_payload_;
  std::unique_ptr<CallerRegion> region_;  // --wire=shm, else null
  grpc::ByteBuffer shm_payload_;          // the same refs every call
  std::unique_ptr<grpc::ClientContext> context_;
  grpc::ByteBuffer response_;
  RetryPause retry_;
  CallerStats stats_;
};

class StreamCall;

// One closed-loop caller of SampleStream: one open stream at a time, one message in
// flight; after options.stream_sequence_steps messages the stream ends its sequences and
// closes, and the caller opens a new one.
class StreamCaller {
 public:
  // `region` is null unless --wire=shm.
  StreamCaller(BenchRun* run, grpc::GenericStub* stub, int index,
               std::unique_ptr<CallerRegion> region);

  void OpenStream();
  // Cancels the open stream, if any (streams have no per-message deadline).
  void CancelCurrent();

  BenchRun* run() { return run_; }
  CallerStats& stats() { return stats_; }

 private:
  friend class StreamCall;
  // Called by the current call just before it deletes itself.
  void CallDone();
  // Called by the current call after it deleted itself: finishes this caller if the run
  // is over, else opens the next stream (after a pause if this one failed).
  void StreamEnded(bool run_over, bool failed);
  // The next message of the current stream; the stream_sequence_steps-th ends its
  // rows' sequences (*last = true).
  grpc::ByteBuffer NextMessage(bool* last);

  BenchRun* run_;
  grpc::GenericStub* stub_;
  uint64_t next_payload_;
  std::unique_ptr<CallerRegion> region_;  // --wire=shm, else null
  std::vector<std::string> ids_;
  int64_t steps_ = 0;
  RetryPause retry_;
  CallerStats stats_;
  absl::Mutex mu_;
  StreamCall* current_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_BENCH_CALLERS_H_
