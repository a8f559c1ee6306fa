#include "client/bench.h"

#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/client_callback.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/shared_memory.h"

namespace tokensampler::client {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kSampleMethod[] = "/tokensampler.v1.Sampler/Sample";
constexpr char kStreamMethod[] = "/tokensampler.v1.Sampler/SampleStream";
// Payload variants cycled through, bounded so that big batches don't use much memory.
constexpr int kMaxVariants = 4;
constexpr size_t kVariantBudgetBytes = size_t{64} << 20;
// A failed call is retried after this pause, so a down server is not hammered.
constexpr auto kErrorBackoff = std::chrono::milliseconds(20);

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void AppendLengthDelimited(std::string* out, int field, absl::string_view bytes) {
  AppendVarint(out, (static_cast<uint64_t>(field) << 3) | 2);
  AppendVarint(out, bytes.size());
  out->append(bytes.data(), bytes.size());
}

// Everything one caller accumulates; touched only by that caller's call chain, which
// runs one callback at a time.
struct CallerStats {
  std::vector<double> latency_ms;
  std::map<int, int64_t> error_codes;
  std::string first_error;
  int64_t ok = 0;
  Clock::time_point last_done{};
};

// State shared by every caller of one run.
class Run {
 public:
  Run(const BenchOptions& options, std::vector<grpc::ByteBuffer> unary_payloads,
      std::vector<std::vector<grpc::Slice>> row_logits, std::string params,
      std::vector<std::vector<float>> float_variants)
      : options_(options),
        unary_payloads_(std::move(unary_payloads)),
        row_logits_(std::move(row_logits)),
        params_(std::move(params)),
        float_variants_(std::move(float_variants)) {}

  const BenchOptions& options() const { return options_; }

  void Start(Clock::time_point start) {
    measure_start_ = start + absl::ToChronoNanoseconds(options_.warmup);
    measure_end_ = measure_start_ + absl::ToChronoNanoseconds(options_.duration);
    active_ = options_.concurrency;
  }

  // Decides whether a caller may start another call now, and whether it is measured.
  bool MayIssue(Clock::time_point now, bool* measured) {
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

  // True once no more calls may start (does not use up a request like MayIssue).
  bool Over(Clock::time_point now) const {
    if (stopping_.load(std::memory_order_relaxed)) return true;
    if (now < measure_start_) return false;
    if (options_.requests > 0) {
      return measured_issued_.load(std::memory_order_relaxed) >= options_.requests;
    }
    return now >= measure_end_;
  }

  void Record(CallerStats* stats, bool measured, Clock::time_point start, Clock::time_point end,
              const grpc::Status& status) {
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

  // The first call that failed in a way no repetition fixes, as "CODE: message"; empty
  // if none did. Read after the run.
  std::string fatal_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return fatal_error_;
  }

  void CallerFinished() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--active_ == 0) cv_.notify_all();
  }

  // Waits up to `timeout` for every caller to finish; true when they have.
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return active_ == 0; });
  }

  const grpc::ByteBuffer& UnaryPayload(uint64_t n) const {
    return unary_payloads_[n % unary_payloads_.size()];
  }
  grpc::ByteBuffer StreamPayload(uint64_t n, absl::Span<const std::string> ids, bool end) const {
    return ComposeSampleRequest(row_logits_[n % row_logits_.size()], params_, ids, end);
  }
  const std::string& params() const { return params_; }
  // --wire=shm: the rows x vocab float32 logits of variant n, to write into a region.
  const std::vector<float>& FloatVariant(uint64_t n) const {
    return float_variants_[n % float_variants_.size()];
  }

  Clock::time_point measure_start() const { return measure_start_; }
  int64_t ok() const { return ok_.load(std::memory_order_relaxed); }
  int64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 private:
  const BenchOptions& options_;
  const std::vector<grpc::ByteBuffer> unary_payloads_;
  const std::vector<std::vector<grpc::Slice>> row_logits_;
  const std::string params_;
  const std::vector<std::vector<float>> float_variants_;
  Clock::time_point measure_start_, measure_end_;
  std::atomic<int64_t> measured_issued_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> ok_{0}, failed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  std::string fatal_error_;  // guarded by mu_

  // Every call sends the same kind of request: one the server rejects as invalid (a
  // parameter out of range, a vocabulary over its max_vocab, a message over its size
  // limit) will be rejected again, and a run of them only floods the server's log.
  static bool IsFatal(const grpc::Status& status) {
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

  void StopWith(const grpc::Status& status) {
    stopping_.store(true, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    if (fatal_error_.empty()) {
      fatal_error_ =
          absl::StrCat(StatusCodeName(status.error_code()), ": ", status.error_message());
    }
  }
};

// --wire=shm: one caller's region and the Logits messages that point into it (row r at
// offset r * V * 4).
struct CallerRegion {
  std::unique_ptr<SharedMemoryObject> object;
  std::unique_ptr<RegisteredRegion> region;  // destroyed (unregistered) before `object`
  std::vector<grpc::Slice> row_refs;

  // Writes variant n's rows into the region, as a model writes a step's logits.
  void Rewrite(const Run& run, uint64_t n) {
    const std::vector<float>& rows = run.FloatVariant(n);
    std::memcpy(object->data(), rows.data(), rows.size() * sizeof(float));
  }
};

absl::StatusOr<std::unique_ptr<CallerRegion>> CreateCallerRegion(Client& client,
                                                                 absl::string_view prefix, int rows,
                                                                 int vocab) {
  auto out = std::make_unique<CallerRegion>();
  const size_t row_bytes = static_cast<size_t>(vocab) * sizeof(float);
  auto object = SharedMemoryObject::Create(prefix, row_bytes * rows);
  if (!object.ok()) return object.status();
  out->object = *std::move(object);
  auto region = RegisteredRegion::Register(client, *out->object, UniqueRegionName("bench"));
  if (!region.ok()) return region.status();
  out->region = *std::move(region);
  v1::Logits logits;
  logits.set_dtype(v1::DTYPE_FLOAT32);
  for (int r = 0; r < rows; ++r) {
    v1::SharedMemoryRef* ref = logits.mutable_shared_memory();
    ref->set_region(out->region->name());
    ref->set_offset(static_cast<uint64_t>(r) * row_bytes);
    ref->set_byte_size(row_bytes);
    out->row_refs.emplace_back(logits.SerializeAsString());
  }
  return out;
}

// One closed-loop caller of unary Sample.
class UnaryCaller {
 public:
  UnaryCaller(Run* run, grpc::GenericStub* stub, const Client* client, uint64_t index,
              std::unique_ptr<CallerRegion> region)
      : run_(run), stub_(stub), client_(client), next_payload_(index), region_(std::move(region)) {
    if (region_ != nullptr) {
      shm_payload_ = ComposeSampleRequest(region_->row_refs, run_->params(), {}, false);
    }
  }

  void Issue() {
    const Clock::time_point now = Clock::now();
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
    const Clock::time_point start = Clock::now();
    stub_->UnaryCall(context_.get(), kSampleMethod, grpc::StubOptions(), payload, &response_,
                     [this, measured, start](grpc::Status status) {
                       const Clock::time_point end = Clock::now();
                       run_->Record(&stats_, measured, start, end, status);
                       if (status.ok()) {
                         Issue();
                       } else {
                         Backoff();
                       }
                     });
  }

  CallerStats& stats() { return stats_; }

 private:
  void Backoff() {
    alarms_.push_back(std::make_unique<grpc::Alarm>());
    // Alarms are kept a few rounds so none is destroyed inside its own callback.
    if (alarms_.size() > 4) alarms_.pop_front();
    alarms_.back()->Set(std::chrono::system_clock::now() + kErrorBackoff,
                        [this](bool) { Issue(); });
  }

  Run* run_;
  grpc::GenericStub* stub_;
  const Client* client_;
  uint64_t next_payload_;
  std::unique_ptr<CallerRegion> region_;  // --wire=shm, else null
  grpc::ByteBuffer shm_payload_;          // the same refs every call
  std::unique_ptr<grpc::ClientContext> context_;
  grpc::ByteBuffer response_;
  std::deque<std::unique_ptr<grpc::Alarm>> alarms_;
  CallerStats stats_;
};

class StreamCaller;

// One SampleStream call: ping-pong of one message at a time. Deletes itself when done
// and asks its caller to open a new stream if the run goes on.
class StreamCall : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit StreamCall(StreamCaller* caller);
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
  Clock::time_point start_;
};

class StreamCaller {
 public:
  StreamCaller(Run* run, grpc::GenericStub* stub, int index, std::unique_ptr<CallerRegion> region)
      : run_(run),
        stub_(stub),
        next_payload_(static_cast<uint64_t>(index)),
        region_(std::move(region)) {
    for (int r = 0; r < run->options().rows; ++r) {
      ids_.push_back(absl::StrCat("bench-", index, "-", r));
    }
  }

  void OpenStream() {
    auto* call = new StreamCall(this);
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_ = call;
    }
    call->Begin(stub_);
  }

  // Cancels the open stream, if any (streams have no per-message deadline).
  void CancelCurrent() {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ != nullptr) current_->Cancel();
  }

  // Called by the current call just before it deletes itself.
  void CallDone() {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = nullptr;
  }

  void StreamEnded(bool run_over, bool failed) {
    if (run_over) {
      run_->CallerFinished();
      return;
    }
    steps_ = 0;
    if (!failed) {
      OpenStream();
      return;
    }
    alarms_.push_back(std::make_unique<grpc::Alarm>());
    if (alarms_.size() > 4) alarms_.pop_front();
    alarms_.back()->Set(std::chrono::system_clock::now() + kErrorBackoff,
                        [this](bool) { OpenStream(); });
  }

  // The next message of the current stream; the stream_sequence_steps-th ends its
  // rows' sequences (*last = true).
  grpc::ByteBuffer NextMessage(bool* last) {
    *last = ++steps_ >= run_->options().stream_sequence_steps;
    if (region_ != nullptr) {
      region_->Rewrite(*run_, next_payload_++);
      return ComposeSampleRequest(region_->row_refs, run_->params(), ids_, *last);
    }
    return run_->StreamPayload(next_payload_++, ids_, *last);
  }

  Run* run() { return run_; }
  CallerStats& stats() { return stats_; }

 private:
  Run* run_;
  grpc::GenericStub* stub_;
  uint64_t next_payload_;
  std::unique_ptr<CallerRegion> region_;  // --wire=shm, else null
  std::vector<std::string> ids_;
  int64_t steps_ = 0;
  std::deque<std::unique_ptr<grpc::Alarm>> alarms_;
  CallerStats stats_;
  std::mutex mu_;
  StreamCall* current_ = nullptr;
};

StreamCall::StreamCall(StreamCaller* caller) : caller_(caller) {}

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
  if (!caller_->run()->MayIssue(Clock::now(), &measured)) {
    in_flight_ = false;
    StartWritesDone();
    return;
  }
  measured_ = measured;
  request_ = caller_->NextMessage(&sent_last_);
  in_flight_ = true;
  pending_ops_.store(2, std::memory_order_relaxed);
  start_ = Clock::now();
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
  caller_->run()->Record(&caller_->stats(), measured_, start_, Clock::now(), grpc::Status::OK);
  OpDone();
}

void StreamCall::OnDone(const grpc::Status& status) {
  bool failed = !status.ok();
  if (in_flight_) {
    // The message in flight is lost: count it as failed even if the status is OK.
    caller_->run()->Record(
        &caller_->stats(), measured_, start_, Clock::now(),
        failed ? status : grpc::Status(grpc::StatusCode::INTERNAL, "stream ended early"));
    failed = true;
  }
  const bool run_over = caller_->run()->Over(Clock::now());
  StreamCaller* caller = caller_;
  caller->CallDone();
  delete this;
  caller->StreamEnded(run_over, failed);
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<int>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

}  // namespace

std::string StatusCodeName(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return absl::StrCat("CODE_", code);
}

grpc::ByteBuffer ComposeSampleRequest(absl::Span<const grpc::Slice> logits,
                                      absl::string_view params,
                                      absl::Span<const std::string> sequence_ids,
                                      bool end_sequence) {
  std::vector<grpc::Slice> slices;
  slices.reserve(logits.size() * 3);
  for (size_t i = 0; i < logits.size(); ++i) {
    // Row { logits = 1; params = 2; sequence_id = 5; end_sequence = 6; }
    std::string tail;
    if (!params.empty()) AppendLengthDelimited(&tail, 2, params);
    if (!sequence_ids.empty() && !sequence_ids[i].empty()) {
      AppendLengthDelimited(&tail, 5, sequence_ids[i]);
    }
    if (end_sequence) {
      AppendVarint(&tail, (6 << 3) | 0);
      AppendVarint(&tail, 1);
    }
    const size_t logits_len = logits[i].size();
    const size_t row_len = 1 + VarintSize(logits_len) + logits_len + tail.size();
    std::string head;
    AppendVarint(&head, (1 << 3) | 2);  // SampleRequest.rows
    AppendVarint(&head, row_len);
    AppendVarint(&head, (1 << 3) | 2);  // Row.logits
    AppendVarint(&head, logits_len);
    slices.emplace_back(head);
    slices.push_back(logits[i]);
    if (!tail.empty()) slices.emplace_back(tail);
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

absl::StatusOr<BenchResult> RunBench(Client& client, const BenchOptions& options,
                                     std::ostream* progress, bool progress_tty) {
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
  if (options.requests == 0 && options.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--duration: must be > 0 (or give --requests)");
  }
  if (options.warmup < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--warmup: must be >= 0");
  }

  const Wire wire = options.shared_memory ? Wire::kFloat32 : options.wire;
  const double total_bytes =
      static_cast<double>(options.vocab) * options.rows * WireBytesPerLogit(wire);
  if (!options.shared_memory && total_bytes > client.options().max_message_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--vocab x --rows: a request of %.0f bytes of logits exceeds the %d-byte message limit",
        total_bytes, client.options().max_message_bytes));
  }
  // Payloads, generated and serialized once: `variants` requests of `rows` distinct rows.
  const size_t row_bytes = static_cast<size_t>(options.vocab) * WireBytesPerLogit(wire);
  const size_t request_bytes = row_bytes * options.rows;
  const int variants = static_cast<int>(std::clamp<size_t>(
      kVariantBudgetBytes / std::max<size_t>(request_bytes, 1), 1, kMaxVariants));
  const std::string params = options.params.SerializeAsString();
  std::vector<std::vector<grpc::Slice>> row_logits(variants);
  std::vector<grpc::ByteBuffer> unary_payloads;
  std::vector<std::vector<float>> float_variants;
  v1::Logits encoded;
  for (int v = 0; v < variants; ++v) {
    std::vector<float> logits = RandomNormalLogits(options.rows, options.vocab,
                                                   options.random_seed + static_cast<uint64_t>(v));
    if (options.shared_memory) {
      float_variants.push_back(std::move(logits));
      continue;
    }
    for (int r = 0; r < options.rows; ++r) {
      EncodeLogits(absl::MakeConstSpan(logits).subspan(static_cast<size_t>(r) * options.vocab,
                                                       options.vocab),
                   options.wire, &encoded);
      row_logits[v].emplace_back(encoded.SerializeAsString());
    }
    unary_payloads.push_back(ComposeSampleRequest(row_logits[v], params, {}, false));
  }
  std::vector<std::unique_ptr<CallerRegion>> regions(options.concurrency);
  if (options.shared_memory) {
    auto info = client.GetServerInfo();
    if (!info.ok()) return info.status();
    if (info->shared_memory_prefix().empty()) {
      return absl::FailedPreconditionError(
          "--wire=shm: the server reports no shared_memory_prefix (too old for shared memory)");
    }
    for (auto& region : regions) {
      auto created =
          CreateCallerRegion(client, info->shared_memory_prefix(), options.rows, options.vocab);
      if (!created.ok()) return created.status();
      region = *std::move(created);
    }
  }

  Run run(options, std::move(unary_payloads), std::move(row_logits), params,
          std::move(float_variants));
  grpc::GenericStub stub(client.channel());
  std::vector<std::unique_ptr<UnaryCaller>> unary;
  std::vector<std::unique_ptr<StreamCaller>> streams;
  const Clock::time_point start = Clock::now();
  run.Start(start);
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

  const double per_request_rows = options.rows;
  // Unary calls end by their deadline; streams have none, so streams still open this
  // long after the run is over are cancelled (and counted as failed).
  const auto grace = absl::ToChronoNanoseconds(client.options().timeout) + std::chrono::seconds(1);
  std::optional<Clock::time_point> over_since;
  while (!run.WaitFor(std::chrono::milliseconds(500))) {
    const Clock::time_point now = Clock::now();
    if (!over_since.has_value() && run.Over(now)) over_since = now;
    if (over_since.has_value() && now - *over_since > grace) {
      for (auto& c : streams) c->CancelCurrent();
    }
    if (progress == nullptr) continue;
    const double elapsed = std::chrono::duration<double>(now - run.measure_start()).count();
    std::string line;
    if (elapsed < 0) {
      line = absl::StrFormat("warming up (%.1fs left)", -elapsed);
    } else {
      const int64_t ok = run.ok();
      line = absl::StrFormat("%6.1fs  %9d requests  %10.0f rows/s  %6d errors", elapsed, ok,
                             elapsed > 0 ? ok * per_request_rows / elapsed : 0.0, run.failed());
    }
    if (progress_tty) {
      *progress << "\r\033[K" << line << std::flush;
    } else {
      *progress << line << "\n" << std::flush;
    }
  }
  if (progress != nullptr && progress_tty) *progress << "\r\033[K" << std::flush;

  BenchResult result;
  std::vector<double> latencies;
  Clock::time_point last = run.measure_start();
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

std::string BenchResultJson(const BenchOptions& options, const BenchResult& r,
                            absl::string_view server) {
  std::string codes;
  for (const auto& [name, n] : r.error_codes) {
    absl::StrAppend(&codes, codes.empty() ? "" : ", ", "\"", name, "\": ", n);
  }
  return absl::StrFormat(
      "{\"server\": \"%s\", \"mode\": \"%s\", \"pipeline\": \"%s\", \"wire\": \"%s\", "
      "\"concurrency\": %d, \"vocab\": %d, \"rows_per_request\": %d, "
      "\"requests\": %d, \"rows\": %d, \"errors\": %d, \"error_codes\": {%s}, "
      "\"first_error\": \"%s\", \"seconds\": %.3f, \"requests_per_s\": %.1f, "
      "\"rows_per_s\": %.1f, \"mb_per_s\": %.1f, \"logits_bytes_per_request\": %d, "
      "\"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f, "
      "\"mean\": %.3f}}",
      JsonEscape(server), options.stream ? "stream" : "unary", JsonEscape(options.pipeline),
      options.shared_memory ? "shm" : WireName(options.wire), options.concurrency, options.vocab,
      options.rows, r.requests, r.rows, r.errors, codes, JsonEscape(r.first_error), r.seconds,
      r.requests_per_s, r.rows_per_s, r.mb_per_s, r.logits_bytes_per_request, r.latency_ms.p50,
      r.latency_ms.p90, r.latency_ms.p99, r.latency_ms.max, r.latency_ms.mean);
}

std::string BenchResultText(const BenchOptions& options, const BenchResult& r,
                            absl::string_view server) {
  std::string out = absl::StrFormat(
      "server %s  mode %s  pipeline %s  wire %s  concurrency %d  vocab %d  rows/request %d\n"
      "requests   %d ok, %d failed in %.2fs\n"
      "throughput %.1f requests/s  %.1f rows/s  %.1f MB/s of logits\n"
      "latency    p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n",
      server, options.stream ? "stream" : "unary", options.pipeline,
      options.shared_memory ? "shm" : WireName(options.wire), options.concurrency, options.vocab,
      options.rows, r.requests, r.errors, r.seconds, r.requests_per_s, r.rows_per_s, r.mb_per_s,
      r.latency_ms.p50, r.latency_ms.p90, r.latency_ms.p99, r.latency_ms.max);
  if (r.errors > 0) {
    std::string codes;
    for (const auto& [name, n] : r.error_codes) absl::StrAppend(&codes, " ", name, "=", n);
    absl::StrAppend(&out, "errors    ", codes, "\nfirst error: ", r.first_error, "\n");
  }
  return out;
}

}  // namespace tokensampler::client
