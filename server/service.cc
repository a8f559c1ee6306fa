#include "server/service.h"

#include <unistd.h>

#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/call_util.h"
#include "server/log.h"
#include "server/rpc_status.h"
#include "server/stream_session.h"
#include "server/verify_reactor.h"

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
      absl::Status status =
          kind == Kind::kSample
              ? sampler.Sample(row.logits, row.params, row.step, &samples[i])
              : sampler.Distribution(row.logits, row.params, &distributions[i]);
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
  job.reset();  // the tasks hold the job
  if (tasks == 1 && pool.TryRunHere(batch[0])) return true;
  return pool.TrySubmit(std::move(batch));
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
  void Start(grpc::ByteBuffer* request_bytes) {
    absl::Status status = ParseMessage(*request_bytes, &request_);
    request_bytes->Clear();
    if (!status.ok()) return FinishWith(status);
    status = DecodeRequest(request_, service_->options().limits, RequestKind::kStateless,
                           [this] { return service_->PickSeed(); }, &rows_);
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
    absl::Status status = ParseMessage(*message, &current_);
    message.reset();
    if (status.ok()) {
      status = DecodeRequest(current_, service_->options().limits, RequestKind::kStream,
                             [this] { return service_->PickSeed(); }, &rows_);
    }
    if (status.ok()) status = session_.Prepare(&rows_);
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
    EndMessage(absl::OkStatus(), std::move(bytes));
  }

  void EndMessage(const absl::Status& status, std::unique_ptr<grpc::ByteBuffer> response) {
    rows_.clear();
    // Frees this message's logits (Clear deletes each row's Logits) while the stream
    // waits for its next message.
    current_.Clear();
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

}  // namespace

SamplerService::SamplerService(WorkerPool* pool, const ServiceOptions& options)
    : pool_(pool), options_(options), instance_(InstanceName()), seed_base_(RandomBase()) {}

uint64_t SamplerService::PickSeed() {
  return Mix(seed_base_ + seed_counter_.fetch_add(1, std::memory_order_relaxed));
}

grpc::ServerUnaryReactor* SamplerService::Sample(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request,
                                                 grpc::ByteBuffer* response) {
  auto* reactor = new BatchReactor(this, context, /*distribution=*/false, response);
  // The holder's request is not const (gRPC gives a const view); Start drops its bytes.
  reactor->Start(const_cast<grpc::ByteBuffer*>(request));
  return reactor;
}

grpc::ServerUnaryReactor* SamplerService::GetDistribution(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  auto* reactor = new BatchReactor(this, context, /*distribution=*/true, response);
  // The holder's request is not const (gRPC gives a const view); Start drops its bytes.
  reactor->Start(const_cast<grpc::ByteBuffer*>(request));
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SamplerService::SampleStream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(this, context);
}

grpc::ServerUnaryReactor* SamplerService::Verify(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request,
                                                 grpc::ByteBuffer* response) {
  // The holder's request is not const (gRPC gives a const view); the reactor drops its
  // bytes once parsed.
  return StartVerify(this, context, const_cast<grpc::ByteBuffer*>(request), response);
}

grpc::ServerUnaryReactor* SamplerService::GetServerInfo(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  v1::GetServerInfoRequest parsed;
  absl::Status status = ParseMessage(*request, &parsed);
  if (status.ok()) {
    v1::ServerInfo info;
    info.set_version(TOKENSAMPLER_VERSION);
    EncodeServerLimits(options_.limits, options_.max_message_bytes, pool_->threads(),
                       &info);
    info.set_requests_served(requests_served());
    info.set_rows_served(rows_served());
    info.set_instance(instance_);
    status = SerializeMessage(info, response);
  }
  grpc::Status grpc_status = ToGrpcStatus(status);
  if (!grpc_status.ok()) LogRpcError("GetServerInfo", context, grpc_status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(grpc_status));
  return reactor;
}

}  // namespace tokensampler::server
