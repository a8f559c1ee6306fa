#include "client/bench_callers.h"

#include <grpcpp/support/client_callback.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tokensampler::client {
namespace {

constexpr char kSampleMethod[] = "/tokensampler.v1.Sampler/Sample";
constexpr char kStreamMethod[] = "/tokensampler.v1.Sampler/SampleStream";
constexpr char kVerifyMethod[] = "/tokensampler.v1.Sampler/Verify";
// A failed call is retried after this pause, so a down server is not hammered.
constexpr auto kErrorBackoff = std::chrono::milliseconds(20);

}  // namespace

void CallerRegion::Rewrite(const BenchRun& run, uint64_t n) {
  const std::vector<float>& rows = run.FloatRows(n);
  std::memcpy(shm.object->data(), rows.data(), rows.size() * sizeof(float));
}

absl::StatusOr<std::unique_ptr<CallerRegion>> CreateCallerRegion(Client& client,
                                                                 absl::string_view prefix, int rows,
                                                                 int vocab) {
  auto out = std::make_unique<CallerRegion>();
  const size_t row_bytes = static_cast<size_t>(vocab) * sizeof(float);
  auto shm = CreateShmRegion(client, prefix, row_bytes * rows, "bench");
  if (!shm.ok()) return shm.status();
  out->shm = *std::move(shm);
  v1::Logits logits;
  logits.set_dtype(v1::DTYPE_FLOAT32);
  for (int r = 0; r < rows; ++r) {
    v1::SharedMemoryRef* ref = logits.mutable_shared_memory();
    ref->set_region(out->shm.region->name());
    ref->set_offset(static_cast<uint64_t>(r) * row_bytes);
    ref->set_byte_size(row_bytes);
    out->row_refs.emplace_back(logits.SerializeAsString());
  }
  return out;
}

void RetryPause::Then(std::function<void()> callback) {
  alarms_.push_back(std::make_unique<grpc::Alarm>());
  if (alarms_.size() > 4) alarms_.pop_front();
  alarms_.back()->Set(std::chrono::system_clock::now() + kErrorBackoff,
                      [callback = std::move(callback)](bool) { callback(); });
}

UnaryCaller::UnaryCaller(BenchRun* run, grpc::GenericStub* stub, const Client* client,
                         uint64_t index, std::unique_ptr<CallerRegion> region)
    : run_(run), stub_(stub), client_(client), next_payload_(index), region_(std::move(region)) {
  if (region_ != nullptr) {
    shm_payload_ = ComposeSampleRequest(region_->row_refs, run_->params(), {}, false);
  }
}

void UnaryCaller::Issue() {
  const BenchClock::time_point now = BenchClock::now();
  bool measured = false;
  if (!run_->MayIssue(now, &measured)) {
    run_->CallerFinished();
    return;
  }
  // gRPC's own callback benchmark replaces the context from the completion callback
  // too: the finished call no longer uses it.
  context_ = std::make_unique<grpc::ClientContext>();
  client_->PrepareContext(context_.get());
  response_.Clear();
  const grpc::ByteBuffer* payload = &shm_payload_;
  if (region_ != nullptr) {
    region_->Rewrite(*run_, next_payload_++);
  } else {
    payload = &run_->UnaryPayload(next_payload_++);
  }
  const BenchClock::time_point start = BenchClock::now();
  stub_->UnaryCall(context_.get(), run_->options().verify ? kVerifyMethod : kSampleMethod,
                   grpc::StubOptions(), payload, &response_,
                   [this, measured, start](grpc::Status status) {
                     const BenchClock::time_point end = BenchClock::now();
                     run_->Record(&stats_, measured, start, end, status);
                     if (status.ok()) {
                       Issue();
                     } else {
                       retry_.Then([this] { Issue(); });
                     }
                   });
}

// One SampleStream call: ping-pong of one message at a time. Deletes itself when done
// and asks its caller to open a new stream if the run goes on.
class StreamCall : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit StreamCall(StreamCaller* caller) : caller_(caller) {}
  void Begin(grpc::GenericStub* stub);

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;
  void Cancel() { context_.TryCancel(); }

 private:
  // Sends the next message, or half-closes when the run is over.
  void Next();
  void OpDone();

  StreamCaller* caller_;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::atomic<int> pending_ops_{0};
  bool measured_ = false;
  bool in_flight_ = false;
  bool sent_last_ = false;  // the message in flight ends the stream's sequences
  BenchClock::time_point start_;
};

void StreamCall::Begin(grpc::GenericStub* stub) {
  stub->PrepareBidiStreamingCall(&context_, kStreamMethod, grpc::StubOptions(), this);
  // Without a hold, a call that fails at once (no server) may run OnDone, which deletes
  // this reactor, on a gRPC thread between StartCall and the first read and write that
  // Next starts here. gRPC's callback API: operations started outside a reaction need a
  // hold until they are started.
  AddHold();
  StartCall();
  Next();
  RemoveHold();  // may run OnDone (and delete this) at once: nothing after it
}

void StreamCall::Next() {
  if (sent_last_) {
    // The sequence ended: close this stream; the caller opens a new one (a new pick
    // of backend under round robin, like a new decode session).
    in_flight_ = false;
    StartWritesDone();
    return;
  }
  bool measured = false;
  if (!caller_->run()->MayIssue(BenchClock::now(), &measured)) {
    in_flight_ = false;
    StartWritesDone();
    return;
  }
  measured_ = measured;
  request_ = caller_->NextMessage(&sent_last_);
  in_flight_ = true;
  pending_ops_.store(2, std::memory_order_relaxed);
  start_ = BenchClock::now();
  StartRead(&response_);
  StartWrite(&request_);
}

void StreamCall::OpDone() {
  if (pending_ops_.fetch_sub(1, std::memory_order_acq_rel) == 1) Next();
}

void StreamCall::OnWriteDone(bool ok) {
  // A failed write ends the call; OnDone reports it.
  if (ok) OpDone();
}

void StreamCall::OnReadDone(bool ok) {
  if (!ok) return;  // the stream ended; OnDone has the status
  in_flight_ = false;
  caller_->run()->Record(&caller_->stats(), measured_, start_, BenchClock::now(), grpc::Status::OK);
  OpDone();
}

void StreamCall::OnDone(const grpc::Status& status) {
  bool failed = !status.ok();
  if (in_flight_) {
    // The message in flight is lost: count it as failed even if the status is OK.
    caller_->run()->Record(
        &caller_->stats(), measured_, start_, BenchClock::now(),
        failed ? status : grpc::Status(grpc::StatusCode::INTERNAL, "stream ended early"));
    failed = true;
  }
  const bool run_over = caller_->run()->Over(BenchClock::now());
  StreamCaller* caller = caller_;
  caller->CallDone();
  delete this;
  caller->StreamEnded(run_over, failed);
}

StreamCaller::StreamCaller(BenchRun* run, grpc::GenericStub* stub, int index,
                           std::unique_ptr<CallerRegion> region)
    : run_(run),
      stub_(stub),
      next_payload_(static_cast<uint64_t>(index)),
      region_(std::move(region)) {
  for (int r = 0; r < run->options().rows; ++r) {
    ids_.push_back(absl::StrCat("bench-", index, "-", r));
  }
}

void StreamCaller::OpenStream() {
  auto* call = new StreamCall(this);
  {
    absl::MutexLock lock(&mu_);
    current_ = call;
  }
  call->Begin(stub_);
}

void StreamCaller::CancelCurrent() {
  absl::MutexLock lock(&mu_);
  if (current_ != nullptr) current_->Cancel();
}

void StreamCaller::CallDone() {
  absl::MutexLock lock(&mu_);
  current_ = nullptr;
}

void StreamCaller::StreamEnded(bool run_over, bool failed) {
  if (run_over) {
    run_->CallerFinished();
    return;
  }
  steps_ = 0;
  if (!failed) {
    OpenStream();
    return;
  }
  retry_.Then([this] { OpenStream(); });
}

grpc::ByteBuffer StreamCaller::NextMessage(bool* last) {
  *last = ++steps_ >= run_->options().stream_sequence_steps;
  if (region_ != nullptr) {
    region_->Rewrite(*run_, next_payload_++);
    return ComposeSampleRequest(region_->row_refs, run_->params(), ids_, *last);
  }
  return run_->StreamPayload(next_payload_++, ids_, *last);
}

}  // namespace tokensampler::client
