#include "server/service.h"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/log.h"
#include "server/log_limiter.h"
#include "server/rpc_status.h"
#include "server/stream_session.h"

#ifndef TOKENSAMPLER_VERSION
#define TOKENSAMPLER_VERSION "0.0.0"
#endif

namespace tokensampler::server {
namespace {

std::string InstanceName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] ? host : "unknown", ":", getpid());
}

uint64_t RandomBase() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

// SplitMix64 finaliser: a bijection, so distinct counters give distinct seeds.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// One warn line per failed call, at most kRpcErrorBurst at once and kRpcErrorsPerSecond
// on average: a client repeating a bad call must not fill the disk. The message is
// already capped (ToGrpcStatus); a line after dropped ones says how many.
constexpr double kRpcErrorsPerSecond = 10;
constexpr double kRpcErrorBurst = 50;

void LogRpcError(absl::string_view rpc, grpc::CallbackServerContext* context,
                 const grpc::Status& status) {
  static LogLimiter* const limiter = new LogLimiter(kRpcErrorsPerSecond, kRpcErrorBurst);
  uint64_t suppressed = 0;
  if (!limiter->Admit(absl::Now(), &suppressed)) return;
  const std::string peer = context->peer();
  if (suppressed == 0) {
    LogEvent(LogLevel::kWarn, "rpc_error",
             {{"rpc", std::string(rpc)},
              {"code", GrpcCodeName(status.error_code())},
              {"message", status.error_message()},
              {"peer", peer}});
  } else {
    LogEvent(LogLevel::kWarn, "rpc_error",
             {{"rpc", std::string(rpc)},
              {"code", GrpcCodeName(status.error_code())},
              {"message", status.error_message()},
              {"peer", peer},
              {"suppressed", absl::StrCat(suppressed)}});
  }
}

// Requests arrive as raw bytes so that a body that is not a valid message gets a clear
// INVALID_ARGUMENT (gRPC's typed handler would answer UNIMPLEMENTED with no message).
template <typename Message>
absl::Status ParseMessage(const grpc::ByteBuffer& bytes, Message* message) {
  grpc::ByteBuffer copy(bytes);  // shares the slices; Deserialize consumes its input
  if (!grpc::SerializationTraits<Message>::Deserialize(&copy, message).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request: not a valid ", Message::descriptor()->full_name(),
        " (protobuf parse failed; string fields must be UTF-8)"));
  }
  return absl::OkStatus();
}

template <typename Message>
absl::Status SerializeMessage(const Message& message, grpc::ByteBuffer* bytes) {
  bool own_buffer = false;
  grpc::Status status =
      grpc::SerializationTraits<Message>::Serialize(message, bytes, &own_buffer);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("response: ", status.error_message()));
  }
  return absl::OkStatus();
}

absl::Status QueueFullError(const WorkerPool& pool) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "server busy: the work queue is full (queue_depth=", pool.queue_depth(),
      " tasks); retry later"));
}

// The rows of one request message on their way through the pool. Shared by the tasks;
// `done` runs exactly once, on the worker that finishes last.
struct RowJob {
  enum class Kind { kSample, kDistribution };

  Kind kind = Kind::kSample;
  SamplerService* service = nullptr;
  // Set by the reactor's OnCancel (client cancel, deadline, shutdown); checked before
  // every row.
  std::shared_ptr<const std::atomic<bool>> cancelled;
  const std::vector<DecodedRow>* rows = nullptr;   // alive until `done` returns
  std::vector<sampler::SampleResult> samples;
  std::vector<sampler::DistributionResult> distributions;
  absl::AnyInvocable<void(absl::Status)> done;

  std::atomic<size_t> next_row{0};   // the next row a task takes
  std::atomic<size_t> remaining{0};  // tasks still running
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status error;  // of the lowest failing row index
  size_t error_row = std::numeric_limits<size_t>::max();

  // One task: takes rows one at a time until none is left, so a slow row holds up
  // only the worker sampling it while the others take the rest.
  void Run(sampler::Sampler& sampler) {
    size_t skipped = 0;
    const size_t n = rows->size();
    for (size_t i; (i = next_row.fetch_add(1, std::memory_order_relaxed)) < n;) {
      const DecodedRow& row = (*rows)[i];
      if (!row.has_logits) continue;
      if (failed.load(std::memory_order_relaxed) || cancelled->load()) {
        ++skipped;
        continue;
      }
      // A row in shared memory is read once, here on the worker, into this thread's
      // private buffer; the sampler never reads the owner's mapping (shared_memory.h).
      sampler::LogitsView logits = row.logits;
      absl::Status status;
      if (row.shared_memory != nullptr) {
        status = CopyRowToPrivate(*row.shared_memory, row.logits, "logits.shared_memory", &logits);
      }
      if (status.ok()) {
        status = kind == Kind::kSample
                     ? sampler.Sample(logits, row.params, row.step, &samples[i])
                     : sampler.Distribution(logits, row.params, &distributions[i]);
      }
      if (!status.ok()) {
        failed.store(true, std::memory_order_relaxed);
        std::lock_guard<std::mutex> lock(mu);
        if (i < error_row) {
          error_row = i;
          error = RowError(i, status);
        }
      }
    }
    if (skipped > 0) service->CountSkipped(skipped);
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      service->AddRowsInFlight(-static_cast<int64_t>(n));
      absl::Status status;
      {
        std::lock_guard<std::mutex> lock(mu);
        status = error;
      }
      if (status.ok() && cancelled->load()) {
        status = absl::CancelledError("call cancelled before its rows were sampled");
      }
      done(std::move(status));
    }
  }
};

// Logits.shared_memory.region -> mapping for one call: checks the caller's access once,
// on the first row that names a region.
class RegionResolver {
 public:
  RegionResolver(SamplerService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  // const for absl::FunctionRef; the check's result is a cache.
  absl::StatusOr<std::shared_ptr<const SharedMemoryMapping>> operator()(
      absl::string_view region) const {
    if (!checked_) {
      access_ = service_->CheckSharedMemoryAccess(context_);
      checked_ = true;
    }
    if (!access_.ok()) return access_;
    return service_->shared_memory().Find(region);
  }

 private:
  SamplerService* const service_;
  grpc::CallbackServerContext* const context_;
  mutable bool checked_ = false;
  mutable absl::Status access_;
};

// Queues min(rows, workers) tasks that share out the job's rows. Returns false, without
// calling `done`, when the queue has no room for them. A single task may run (and call
// `done`) on the calling thread before this returns (WorkerPool::TryRunHere): callers
// must not touch their reactor after a true return. REQUIRES: at least one row.
bool StartRowJob(WorkerPool& pool, std::shared_ptr<RowJob> job) {
  const size_t n = job->rows->size();
  if (job->kind == RowJob::Kind::kSample) {
    job->samples.resize(n);
  } else {
    job->distributions.resize(n);
  }
  const size_t tasks = pool.TasksFor(n);
  job->remaining.store(tasks);
  std::vector<WorkerPool::Task> batch;
  batch.reserve(tasks);
  for (size_t t = 0; t < tasks; ++t) {
    batch.push_back([job](sampler::Sampler& sampler) { job->Run(sampler); });
  }
  SamplerService* service = job->service;
  job.reset();  // the tasks hold the job
  service->AddRowsInFlight(static_cast<int64_t>(n));
  if (tasks == 1 && pool.TryRunHere(batch[0])) return true;
  if (pool.TrySubmit(std::move(batch))) return true;
  service->AddRowsInFlight(-static_cast<int64_t>(n));
  return false;
}

// Sample and GetDistribution: decode, sample on the pool (or here, see StartRowJob),
// encode, finish.
class BatchReactor final : public grpc::ServerUnaryReactor {
 public:
  BatchReactor(SamplerService* service, grpc::CallbackServerContext* context,
               bool distribution, grpc::ByteBuffer* response)
      : service_(service),
        context_(context),
        response_(response),
        samples_(distribution ? nullptr : &sample_response_),
        distributions_(distribution ? &distribution_response_ : nullptr) {}

  // `request_bytes` belongs to gRPC's per-call holder, which would keep it (about 0.5 MB
  // for one V=128256 row) until OnDone; once parsed it is dropped here, so that a call
  // waiting for a worker holds one copy of its logits, not two.
  ~BatchReactor() override { service_->ReleaseBytes(reserved_); }

  void Start(grpc::ByteBuffer* request_bytes) {
    absl::Status status = service_->Admit(*request_bytes, &reserved_);
    if (status.ok()) status = ParseMessage(*request_bytes, &request_);
    request_bytes->Clear();
    if (!status.ok()) return FinishWith(status);
    RegionResolver resolve_region(service_, context_);
    status = DecodeRequest(
        request_, service_->options().limits, RequestKind::kStateless,
        [this] { return service_->PickSeed(); }, &rows_, resolve_region);
    if (!status.ok()) return FinishWith(status);
    if (rows_.empty()) {
      service_->CountServed(0);
      return FinishWith(Serialize());
    }
    job_ = std::make_shared<RowJob>();
    job_->kind = samples_ != nullptr ? RowJob::Kind::kSample : RowJob::Kind::kDistribution;
    job_->service = service_;
    job_->cancelled = cancelled_;
    job_->rows = &rows_;
    job_->done = [this](absl::Status s) { OnRowsDone(std::move(s)); };
    if (!StartRowJob(service_->pool(), job_)) {
      job_.reset();
      return FinishWith(QueueFullError(service_->pool()));
    }
  }

  void OnCancel() override {
    cancelled_->store(true);
    service_->CountCancelled();
  }
  void OnDone() override { delete this; }

 private:
  // On the worker that finished the last row.
  void OnRowsDone(absl::Status status) {
    if (status.ok()) {
      for (const DecodedRow& row : rows_) {
        if (samples_ != nullptr) {
          EncodeSampleResult(job_->samples[row.index], row.params.seed, row.step,
                             row.sequence_id, samples_->add_results());
        } else {
          EncodeDistribution(job_->distributions[row.index], row.sequence_id,
                             distributions_->add_distributions());
        }
      }
      service_->CountServed(rows_.size());
      service_->CountSampled(rows_);
      status = Serialize();
    }
    // The logits are not needed any more: free them now rather than when gRPC is done
    // sending the response and calls OnDone.
    rows_.clear();
    request_.Clear();
    sample_response_.Clear();        // serialized into response_ already
    distribution_response_.Clear();
    // The job keeps itself alive through its tasks; drop our reference (and the cycle
    // through `done`) before the reactor can be deleted.
    std::shared_ptr<RowJob> job = std::move(job_);
    FinishWith(status);
  }

  absl::Status Serialize() {
    return samples_ != nullptr ? SerializeMessage(*samples_, response_)
                               : SerializeMessage(*distributions_, response_);
  }

  void FinishWith(const absl::Status& status) {
    grpc::Status grpc_status = ToGrpcStatus(status);
    if (!grpc_status.ok()) {
      LogRpcError(samples_ != nullptr ? "Sample" : "GetDistribution", context_, grpc_status);
    }
    Finish(std::move(grpc_status));
  }

  SamplerService* const service_;
  grpc::CallbackServerContext* const context_;
  grpc::ByteBuffer* const response_;
  v1::SampleRequest request_;
  v1::SampleResponse sample_response_;
  v1::DistributionResponse distribution_response_;
  v1::SampleResponse* const samples_;              // Sample, else nullptr
  v1::DistributionResponse* const distributions_;  // GetDistribution, else nullptr
  std::vector<DecodedRow> rows_;
  std::shared_ptr<RowJob> job_;
  const std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  int64_t reserved_ = 0;  // memory budget bytes held until OnDone
};

// SampleStream. Messages are read one ahead of the one being sampled, sampled strictly
// in order (a step may depend on the previous step's tokens), and answered in order,
// with at most kMaxQueuedWrites responses waiting for a slow reader. An error ends the
// stream with its status after the responses of the earlier messages.
class StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamReactor(SamplerService* service, grpc::CallbackServerContext* context)
      : service_(service),
        context_(context),
        session_(service->options().limits),
        read_buffer_(std::make_unique<grpc::ByteBuffer>()) {
    Pump();
  }
  // The stream was counted by SamplerService::OpenStream before it was built.
  ~StreamReactor() override {
    service_->AddOpenStreams(-1);
    service_->AddLiveSequences(-static_cast<int64_t>(counted_sequences_));
    service_->ReleaseBytes(message_reserved_ + history_reserved_);
  }

  void OnReadDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      reading_ = false;
      if (ok) {
        pending_.push_back(std::move(read_buffer_));
        read_buffer_ = std::make_unique<grpc::ByteBuffer>();
      } else {
        reads_done_ = true;
      }
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      to_write_.pop_front();
      if (!ok) can_write_ = false;
    }
    Pump();
  }

  void OnCancel() override {
    cancelled_->store(true);
    service_->CountCancelled();
    {
      std::lock_guard<std::mutex> lock(mu_);
      can_write_ = false;
      reads_done_ = true;
      if (error_.ok()) error_ = absl::CancelledError("stream cancelled");
    }
    Pump();
  }

  void OnDone() override { delete this; }

 private:
  static constexpr size_t kReadAhead = 1;
  static constexpr size_t kMaxQueuedWrites = 2;

  // Starts whatever can start now: a write, a message, a read, or the final Finish.
  // Called after every state change; never holds mu_ while calling into gRPC.
  void Pump() {
    const grpc::ByteBuffer* write = nullptr;
    std::unique_ptr<grpc::ByteBuffer> message;
    bool read = false;
    bool finish = false;
    absl::Status finish_status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      if (!writing_ && can_write_ && !to_write_.empty()) {
        writing_ = true;
        write = to_write_.front().get();
      }
      if (error_.ok() && !processing_ && !pending_.empty() &&
          to_write_.size() < kMaxQueuedWrites) {
        processing_ = true;
        message = std::move(pending_.front());
        pending_.pop_front();
      }
      if (error_.ok() && !reading_ && !reads_done_ && pending_.size() < kReadAhead) {
        reading_ = true;
        read = true;
      }
      const bool writes_settled = !writing_ && (to_write_.empty() || !can_write_);
      if (!processing_ && writes_settled &&
          (!error_.ok() || (reads_done_ && pending_.empty()))) {
        finished_ = true;
        finish = true;
        finish_status = error_;
      }
    }
    if (write != nullptr) StartWrite(write);
    if (read) StartRead(read_buffer_.get());
    if (message != nullptr) Process(std::move(message));
    if (finish) {
      grpc::Status status = ToGrpcStatus(finish_status);
      if (!status.ok()) LogRpcError("SampleStream", context_, status);
      Finish(std::move(status));
    }
  }

  // Validates and stages one message, then hands its rows to the pool.
  void Process(std::unique_ptr<grpc::ByteBuffer> message) {
    absl::Status status = service_->Admit(*message, &message_reserved_);
    if (status.ok()) status = ParseMessage(*message, &current_);
    message.reset();
    if (status.ok()) status = ReserveHistory();
    if (status.ok()) {
      RegionResolver resolve_region(service_, context_);
      status = DecodeRequest(
          current_, service_->options().limits, RequestKind::kStream,
          [this] { return service_->PickSeed(); }, &rows_, resolve_region);
    }
    if (status.ok()) status = session_.Prepare(&rows_);
    if (status.ok()) {
      // New sequences count against the server-wide cap before any row is sampled.
      const size_t live = session_.live_sequences();
      status = service_->AddSequences(static_cast<int64_t>(live) -
                                      static_cast<int64_t>(counted_sequences_));
      if (status.ok()) {
        counted_sequences_ = live;
      } else {
        session_.Abort(rows_);
      }
    }
    if (!status.ok()) return EndMessage(status, nullptr);
    bool any_logits = false;
    for (const DecodedRow& row : rows_) any_logits |= row.has_logits;
    if (!any_logits) {
      session_.Commit(rows_, {});
      return Respond(nullptr);
    }
    job_ = std::make_shared<RowJob>();
    job_->kind = RowJob::Kind::kSample;
    job_->service = service_;
    job_->cancelled = cancelled_;
    job_->rows = &rows_;
    job_->done = [this](absl::Status s) { OnRowsDone(std::move(s)); };
    if (!StartRowJob(service_->pool(), job_)) {
      job_.reset();
      session_.Abort(rows_);
      return EndMessage(QueueFullError(service_->pool()), nullptr);
    }
  }

  void OnRowsDone(absl::Status status) {
    std::shared_ptr<RowJob> job = std::move(job_);
    if (!status.ok()) {
      session_.Abort(rows_);
      return EndMessage(status, nullptr);
    }
    session_.Commit(rows_, job->samples);
    Respond(&job->samples);
  }

  // Encodes the response of a committed message and queues it for writing.
  void Respond(const std::vector<sampler::SampleResult>* samples) {
    v1::SampleResponse response;
    const sampler::SampleResult empty;
    for (const DecodedRow& row : rows_) {
      const sampler::SampleResult& result =
          row.has_logits && samples != nullptr ? (*samples)[row.index] : empty;
      EncodeSampleResult(result, row.has_logits ? row.params.seed : 0,
                         row.has_logits ? row.step : 0, row.sequence_id,
                         response.add_results());
    }
    auto bytes = std::make_unique<grpc::ByteBuffer>();
    absl::Status status = SerializeMessage(response, bytes.get());
    if (!status.ok()) return EndMessage(status, nullptr);
    service_->CountServed(rows_.size());
    service_->CountSampled(rows_);
    EndMessage(absl::OkStatus(), std::move(bytes));
  }

  // Reserves budget for what this message may add to the histories: its context
  // tokens and one drawn token per row, twice over for vector growth.
  absl::Status ReserveHistory() {
    int64_t tokens = 0;
    for (const v1::Row& row : current_.rows()) tokens += row.context_token_ids_size() + 1;
    const int64_t bytes = 2 * tokens * kBytesPerHistoryToken;
    absl::Status status = service_->ReserveBytes(bytes, "the stream's token history");
    if (status.ok()) history_reserved_ += bytes;
    return status;
  }

  void EndMessage(const absl::Status& status, std::unique_ptr<grpc::ByteBuffer> response) {
    const size_t live = session_.live_sequences();
    service_->AddLiveSequences(static_cast<int64_t>(live) -
                               static_cast<int64_t>(counted_sequences_));
    counted_sequences_ = live;
    // The histories now hold what they hold: keep exactly that much of the budget.
    const int64_t history =
        static_cast<int64_t>(session_.HistoryCapacity()) * kBytesPerHistoryToken;
    if (history < history_reserved_) service_->ReleaseBytes(history_reserved_ - history);
    if (history > history_reserved_) service_->ChargeBytes(history - history_reserved_);
    history_reserved_ = history;
    rows_.clear();
    // Frees this message's logits (Clear deletes each row's Logits) while the stream
    // waits for its next message. Clear keeps the capacity of cleared repeated fields,
    // so a large message's message object is dropped whole.
    if (message_reserved_ >= kLargeMessageBytes) {
      current_ = v1::SampleRequest();
    } else {
      current_.Clear();
    }
    service_->ReleaseBytes(message_reserved_);
    message_reserved_ = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      processing_ = false;
      if (!status.ok() && error_.ok()) error_ = status;
      if (response != nullptr) to_write_.push_back(std::move(response));
    }
    Pump();
  }

  SamplerService* const service_;
  grpc::CallbackServerContext* const context_;

  // Owned by the message being processed (one at a time).
  StreamSession session_;
  size_t counted_sequences_ = 0;  // session_'s live sequences in service_->live_sequences()
  int64_t message_reserved_ = 0;  // budget bytes of the message being processed
  int64_t history_reserved_ = 0;  // budget bytes of session_'s histories
  static constexpr int64_t kLargeMessageBytes = 1 << 20;
  v1::SampleRequest current_;  // the message being processed; cleared when it ends
  std::vector<DecodedRow> rows_;
  std::shared_ptr<RowJob> job_;
  const std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);

  std::mutex mu_;
  std::unique_ptr<grpc::ByteBuffer> read_buffer_;  // target of the read in flight
  std::deque<std::unique_ptr<grpc::ByteBuffer>> pending_;
  std::deque<std::unique_ptr<grpc::ByteBuffer>> to_write_;  // front is being written
  bool reading_ = false;
  bool reads_done_ = false;
  bool processing_ = false;
  bool writing_ = false;
  bool can_write_ = true;
  bool finished_ = false;
  absl::Status error_;
};

// A unary call answered on the gRPC thread: parse, `handle`, serialize, finish.
template <typename Request, typename Response>
grpc::ServerUnaryReactor* AnswerUnary(
    absl::string_view rpc, grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response, absl::FunctionRef<absl::Status(const Request&, Response*)> handle) {
  Request parsed;
  absl::Status status = ParseMessage(*request, &parsed);
  if (status.ok()) {
    Response out;
    status = handle(parsed, &out);
    if (status.ok()) status = SerializeMessage(out, response);
  }
  grpc::Status grpc_status = ToGrpcStatus(status);
  if (!grpc_status.ok()) LogRpcError(rpc, context, grpc_status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(grpc_status));
  return reactor;
}

}  // namespace

SamplerService::SamplerService(WorkerPool* pool, const ServiceOptions& options)
    : pool_(pool),
      options_(options),
      instance_(InstanceName()),
      seed_base_(RandomBase()),
      shared_memory_(options.shared_memory) {}

absl::Status SamplerService::CheckSharedMemoryAccess(grpc::CallbackServerContext* context) const {
  switch (options_.shared_memory.mode) {
    case SharedMemoryMode::kAny:
      return absl::OkStatus();
    case SharedMemoryMode::kLocal: {
      const std::string peer = context->peer();
      if (IsLocalPeer(peer)) return absl::OkStatus();
      return absl::PermissionDeniedError(
          absl::StrCat("shared memory: peer \"", peer,
                       "\" is not on this host; --shared_memory=local "
                       "allows Unix-socket and loopback callers only"));
    }
    case SharedMemoryMode::kOff:
      break;
  }
  return absl::PermissionDeniedError("shared memory: off on this server (--shared_memory=off)");
}

grpc::ServerUnaryReactor* SamplerService::RegisterSharedMemory(grpc::CallbackServerContext* context,
                                                               const grpc::ByteBuffer* request,
                                                               grpc::ByteBuffer* response) {
  return AnswerUnary<v1::RegisterSharedMemoryRequest, v1::RegisterSharedMemoryResponse>(
      "RegisterSharedMemory", context, request, response,
      [&](const v1::RegisterSharedMemoryRequest& r, v1::RegisterSharedMemoryResponse*) {
        absl::Status status = Authenticate(*context);
        if (status.ok()) status = CheckSharedMemoryAccess(context);
        if (!status.ok()) return status;
        status = shared_memory_.Register(r.name(), r.key(), r.offset(), r.byte_size());
        if (status.ok()) {
          LogEvent(LogLevel::kInfo, "shared_memory_registered",
                   {{"name", r.name()},
                    {"key", r.key()},
                    {"offset", absl::StrCat(r.offset())},
                    {"byte_size", absl::StrCat(r.byte_size())},
                    {"peer", context->peer()}});
        }
        return status;
      });
}

grpc::ServerUnaryReactor* SamplerService::UnregisterSharedMemory(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return AnswerUnary<v1::UnregisterSharedMemoryRequest, v1::UnregisterSharedMemoryResponse>(
      "UnregisterSharedMemory", context, request, response,
      [&](const v1::UnregisterSharedMemoryRequest& r, v1::UnregisterSharedMemoryResponse*) {
        absl::Status status = Authenticate(*context);
        if (status.ok()) status = CheckSharedMemoryAccess(context);
        if (!status.ok()) return status;
        return shared_memory_.Unregister(r.name());
      });
}

grpc::ServerUnaryReactor* SamplerService::GetSharedMemoryStatus(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return AnswerUnary<v1::GetSharedMemoryStatusRequest, v1::GetSharedMemoryStatusResponse>(
      "GetSharedMemoryStatus", context, request, response,
      [&](const v1::GetSharedMemoryStatusRequest& r, v1::GetSharedMemoryStatusResponse* out) {
        absl::Status status = Authenticate(*context);
        if (status.ok()) status = CheckSharedMemoryAccess(context);
        if (!status.ok()) return status;
        auto regions = shared_memory_.Status(r.name());
        if (!regions.ok()) return regions.status();
        for (const SharedMemoryStatus& region : *regions) {
          v1::SharedMemoryRegionStatus* entry = out->add_regions();
          entry->set_name(region.name);
          entry->set_key(region.key);
          entry->set_offset(region.offset);
          entry->set_byte_size(region.byte_size);
        }
        return absl::OkStatus();
      });
}

absl::Status SamplerService::Authenticate(const grpc::CallbackServerContext& context) const {
  return options_.auth == nullptr ? absl::OkStatus() : options_.auth->CheckCall(context);
}

absl::Status SamplerService::Admit(const grpc::ByteBuffer& request, int64_t* reserved) {
  *reserved = 0;
  const int64_t max_rows = options_.limits.max_rows;
  const int64_t rows = CountRequestRows(request, max_rows);
  if (rows > max_rows) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "rows: more than ", max_rows, " rows exceed the server limit max_rows=", max_rows));
  }
  const int64_t bytes = static_cast<int64_t>(request.Length()) * kBytesPerWireByte +
                        std::max<int64_t>(rows, 0) * kBytesPerRow;
  absl::Status status =
      ReserveBytes(bytes, absl::StrCat("a request message of ", request.Length(), " bytes"));
  if (status.ok()) *reserved = bytes;
  return status;
}

absl::Status SamplerService::ReserveBytes(int64_t bytes, absl::string_view what) {
  if (options_.budget == nullptr) return absl::OkStatus();
  return options_.budget->Reserve(bytes, what);
}

void SamplerService::ReleaseBytes(int64_t bytes) {
  if (options_.budget != nullptr && bytes > 0) options_.budget->ReleaseAndTrim(bytes);
}

void SamplerService::ChargeBytes(int64_t bytes) {
  if (options_.budget != nullptr && bytes > 0) options_.budget->Charge(bytes);
}

absl::Status SamplerService::OpenStream() {
  const int64_t open = open_streams_.fetch_add(1) + 1;
  if (options_.max_streams > 0 && open > options_.max_streams) {
    open_streams_.fetch_sub(1);
    return absl::ResourceExhaustedError(absl::StrCat(
        "server busy: ", options_.max_streams,
        " SampleStream calls are open, the server limit max_streams=", options_.max_streams,
        "; retry later"));
  }
  return absl::OkStatus();
}

absl::Status SamplerService::AddSequences(int64_t delta) {
  const int64_t live = live_sequences_.fetch_add(delta) + delta;
  if (delta > 0 && options_.max_live_sequences > 0 && live > options_.max_live_sequences) {
    live_sequences_.fetch_sub(delta);
    return absl::ResourceExhaustedError(absl::StrCat(
        "server busy: ", live - delta, " live sequences over all streams, ", delta,
        " more would exceed the server limit max_live_sequences=", options_.max_live_sequences,
        "; end finished sequences (end_sequence) or retry later"));
  }
  return absl::OkStatus();
}

void SamplerService::CountSampled(const std::vector<DecodedRow>& rows) {
  if (options_.metrics == nullptr) return;
  for (const DecodedRow& row : rows) {
    if (row.has_logits) options_.metrics->CountRows(row.params.preset, row.logits.dtype, 1);
  }
}

uint64_t SamplerService::PickSeed() {
  return Mix(seed_base_ + seed_counter_.fetch_add(1, std::memory_order_relaxed));
}

grpc::ServerUnaryReactor* SamplerService::Sample(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request,
                                                 grpc::ByteBuffer* response) {
  if (absl::Status denied = Authenticate(*context); !denied.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(denied));
    return reactor;
  }
  auto* reactor = new BatchReactor(this, context, /*distribution=*/false, response);
  // The holder's request is not const (gRPC gives a const view); Start drops its bytes.
  reactor->Start(const_cast<grpc::ByteBuffer*>(request));
  return reactor;
}

grpc::ServerUnaryReactor* SamplerService::GetDistribution(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  if (absl::Status denied = Authenticate(*context); !denied.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(denied));
    return reactor;
  }
  auto* reactor = new BatchReactor(this, context, /*distribution=*/true, response);
  // The holder's request is not const (gRPC gives a const view); Start drops its bytes.
  reactor->Start(const_cast<grpc::ByteBuffer*>(request));
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SamplerService::SampleStream(
    grpc::CallbackServerContext* context) {
  if (absl::Status denied = Authenticate(*context); !denied.ok()) {
    return FinishedStream(ToGrpcStatus(denied));
  }
  if (absl::Status busy = OpenStream(); !busy.ok()) {
    grpc::Status status = ToGrpcStatus(busy);
    LogRpcError("SampleStream", context, status);
    return FinishedStream(status);
  }
  return new StreamReactor(this, context);
}

grpc::ServerUnaryReactor* SamplerService::GetServerInfo(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  v1::GetServerInfoRequest parsed;
  absl::Status status = Authenticate(*context);
  if (status.ok()) status = ParseMessage(*request, &parsed);
  if (status.ok()) {
    v1::ServerInfo info;
    info.set_version(TOKENSAMPLER_VERSION);
    EncodeServerLimits(options_.limits, options_.max_message_bytes, pool_->threads(),
                       options_.shared_memory, &info);
    info.set_requests_served(requests_served());
    info.set_rows_served(rows_served());
    info.set_instance(instance_);
    status = SerializeMessage(info, response);
  }
  grpc::Status grpc_status = ToGrpcStatus(status);
  // Refused tokens are not logged per call (a scanner would fill the log); they show in
  // the metrics by code.
  if (!grpc_status.ok() && grpc_status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
    LogRpcError("GetServerInfo", context, grpc_status);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(grpc_status));
  return reactor;
}

}  // namespace tokensampler::server
