#include "server/stream_reactor.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/codec.h"
#include "server/memory_budget.h"
#include "server/row_job.h"
#include "server/rpc_call.h"
#include "server/rpc_status.h"
#include "server/service.h"
#include "server/stream_session.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::server {
namespace {

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
      absl::MutexLock lock(&mu_);
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
      absl::MutexLock lock(&mu_);
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
      absl::MutexLock lock(&mu_);
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
    grpc::ByteBuffer* read = nullptr;
    bool finish = false;
    absl::Status finish_status;
    {
      absl::MutexLock lock(&mu_);
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
        read = read_buffer_.get();
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
    if (read != nullptr) StartRead(read);
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
    job_ = MakeSampleJob(SampleJob::Kind::kSample, service_, cancelled_, &rows_,
                         [this](absl::Status s) { OnRowsDone(std::move(s)); });
    if (!StartRowJob(service_->pool(), job_)) {
      job_.reset();
      session_.Abort(rows_);
      return EndMessage(QueueFullError(service_->pool()), nullptr);
    }
  }

  void OnRowsDone(absl::Status status) {
    std::shared_ptr<SampleJob> job = std::move(job_);
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
      absl::MutexLock lock(&mu_);
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
  std::shared_ptr<SampleJob> job_;
  const std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);

  absl::Mutex mu_;
  // Target of the read in flight.
  std::unique_ptr<grpc::ByteBuffer> read_buffer_ ABSL_GUARDED_BY(mu_);
  std::deque<std::unique_ptr<grpc::ByteBuffer>> pending_ ABSL_GUARDED_BY(mu_);
  // Front is being written.
  std::deque<std::unique_ptr<grpc::ByteBuffer>> to_write_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool processing_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool can_write_ ABSL_GUARDED_BY(mu_) = true;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StartStreamCall(
    SamplerService* service, grpc::CallbackServerContext* context) {
  return new StreamReactor(service, context);
}

}  // namespace tokensampler::server
