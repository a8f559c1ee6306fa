// The tokensampler.v1.Sampler service on gRPC's callback API. Reactions decode,
// enqueue and encode; rows are sampled on the WorkerPool, a request's rows split over
// the workers, and the last task to finish completes the RPC. A one-task request may
// be sampled on the reacting thread itself when the pool allows it (TryRunHere).
#ifndef TOKENSAMPLER_SERVER_SERVICE_H_
#define TOKENSAMPLER_SERVER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/auth.h"
#include "server/codec.h"
#include "server/limits.h"
#include "server/memory_budget.h"
#include "server/metrics.h"
#include "server/shared_memory.h"
#include "server/worker_pool.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::server {

struct ServiceOptions {
  Limits limits;
  int64_t max_message_bytes = 64 << 20;  // reported in ServerInfo
  // Set: every Sampler RPC needs a valid bearer token (not owned; outlives the service).
  TokenAuthenticator* auth = nullptr;
  // Set: rows are counted by preset and dtype here (not owned; outlives the service).
  Metrics* metrics = nullptr;
  // Bytes that parsed requests and stream histories may hold (not owned; outlives the
  // service); nullptr = unlimited.
  MemoryBudget* budget = nullptr;
  int max_streams = 0;             // open SampleStream calls; 0 = unlimited
  int64_t max_live_sequences = 0;  // sequences over all streams; 0 = unlimited
  SharedMemoryOptions shared_memory;
};

// The methods take raw bytes and parse them in the service, so that a body that is
// not a valid message gets INVALID_ARGUMENT naming the message type rather than gRPC's
// bare UNIMPLEMENTED.
using SamplerServiceBase =
    v1::Sampler::WithRawCallbackMethod_Sample<v1::Sampler::WithRawCallbackMethod_GetDistribution<
        v1::Sampler::WithRawCallbackMethod_SampleStream<
            v1::Sampler::WithRawCallbackMethod_GetServerInfo<
                v1::Sampler::WithRawCallbackMethod_RegisterSharedMemory<
                    v1::Sampler::WithRawCallbackMethod_UnregisterSharedMemory<
                        v1::Sampler::WithRawCallbackMethod_GetSharedMemoryStatus<
                            v1::Sampler::WithRawCallbackMethod_Verify<
                                v1::Sampler::Service>>>>>>>>;

// Thread-safe. `pool` must outlive the service and every call it started.
class SamplerService final : public SamplerServiceBase {
 public:
  SamplerService(WorkerPool* pool, const ServiceOptions& options);
  SamplerService(const SamplerService&) = delete;
  SamplerService& operator=(const SamplerService&) = delete;

  // Wire types: SampleRequest -> SampleResponse, SampleRequest -> DistributionResponse,
  // stream SampleRequest -> stream SampleResponse, GetServerInfoRequest -> ServerInfo.
  grpc::ServerUnaryReactor* Sample(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetDistribution(grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer* request,
                                            grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SampleStream(
      grpc::CallbackServerContext* context) override;
  // Every method first checks the bearer token (AuthenticatedCall, server/rpc_call.h).
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;
  // VerifyRequest -> VerifyResponse (server/verify_reactor.h).
  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  // RegisterSharedMemoryRequest -> RegisterSharedMemoryResponse, and likewise for
  // Unregister and GetSharedMemoryStatus.
  grpc::ServerUnaryReactor* RegisterSharedMemory(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request,
                                                 grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* UnregisterSharedMemory(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request,
                                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetSharedMemoryStatus(grpc::CallbackServerContext* context,
                                                  const grpc::ByteBuffer* request,
                                                  grpc::ByteBuffer* response) override;

  // Whether the caller behind `context` may use shared memory (--shared_memory):
  // PERMISSION_DENIED naming the mode (and the peer, in local mode) otherwise.
  absl::Status CheckSharedMemoryAccess(grpc::CallbackServerContext* context) const;
  SharedMemoryRegistry& shared_memory() { return shared_memory_; }

  // A seed for a row that gave none: distinct per call, unpredictable across processes.
  uint64_t PickSeed();

  WorkerPool& pool() { return *pool_; }
  const ServiceOptions& options() const { return options_; }

  // Counters since start. requests: unary calls and stream messages answered OK.
  uint64_t requests_served() const { return requests_served_.load(); }
  uint64_t rows_served() const { return rows_served_.load(); }
  // Rows never sampled because their call was cancelled or failed first.
  uint64_t rows_skipped() const { return rows_skipped_.load(); }
  void CountServed(uint64_t rows) {
    requests_served_.fetch_add(1);
    rows_served_.fetch_add(rows);
  }
  void CountSkipped(uint64_t rows) { rows_skipped_.fetch_add(rows); }
  // Admission of one serialized request message before it is parsed: more rows than
  // max_rows, or more bytes than the memory budget has free, give RESOURCE_EXHAUSTED.
  // On OK `*reserved` bytes of the budget are held; give them back with ReleaseBytes.
  absl::Status Admit(const grpc::ByteBuffer& request, int64_t* reserved);
  // Reserves (delta > 0) or releases (delta < 0) budget bytes for `what`.
  absl::Status ReserveBytes(int64_t bytes, absl::string_view what);
  void ReleaseBytes(int64_t bytes);
  // Counts bytes already allocated (a history that grew past its reservation).
  void ChargeBytes(int64_t bytes);
  // A SampleStream may open (OK, counted in open_streams()) or RESOURCE_EXHAUSTED.
  absl::Status OpenStream();
  // Counts `delta` more live sequences unless that passes max_live_sequences.
  absl::Status AddSequences(int64_t delta);

  // Counts the sampled rows of a successful message by preset and dtype (metrics).
  void CountSampled(const std::vector<DecodedRow>& rows);
  // Rows handed to the pool and not finished yet.
  int64_t rows_in_flight() const { return rows_in_flight_.load(); }
  void AddRowsInFlight(int64_t delta) { rows_in_flight_.fetch_add(delta); }
  // Open SampleStream calls and the live sequences of all of them.
  int64_t open_streams() const { return open_streams_.load(); }
  int64_t live_sequences() const { return live_sequences_.load(); }
  void AddOpenStreams(int64_t delta) { open_streams_.fetch_add(delta); }
  void AddLiveSequences(int64_t delta) { live_sequences_.fetch_add(delta); }
  // Calls that saw a cancellation (client cancel, deadline, shutdown).
  uint64_t calls_cancelled() const { return calls_cancelled_.load(); }
  void CountCancelled() { calls_cancelled_.fetch_add(1); }

 private:
  // A shared-memory RPC: authenticated, parsed, answered on the gRPC thread by `handle`
  // when the caller may use shared memory (CheckSharedMemoryAccess).
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* AnswerSharedMemoryCall(
      absl::string_view rpc, grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
      grpc::ByteBuffer* response,
      absl::FunctionRef<absl::Status(const Request&, Response*)> handle);

  WorkerPool* const pool_;
  const ServiceOptions options_;
  const std::string instance_;
  const uint64_t seed_base_;
  SharedMemoryRegistry shared_memory_;
  std::atomic<uint64_t> seed_counter_{0};
  std::atomic<uint64_t> requests_served_{0};
  std::atomic<uint64_t> rows_served_{0};
  std::atomic<uint64_t> rows_skipped_{0};
  std::atomic<uint64_t> calls_cancelled_{0};
  std::atomic<int64_t> rows_in_flight_{0};
  std::atomic<int64_t> open_streams_{0};
  std::atomic<int64_t> live_sequences_{0};
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_SERVICE_H_
