// The tokensampler.v1.Sampler service on gRPC's callback API. Reactions decode,
// enqueue and encode; rows are sampled on the WorkerPool, a request's rows split over
// the workers, and the last task to finish completes the RPC. A one-task request may
// be sampled on the reacting thread itself when the pool allows it (TryRunHere).
#ifndef TOKENSAMPLER_SERVER_SERVICE_H_
#define TOKENSAMPLER_SERVER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "server/codec.h"
#include "server/worker_pool.h"
#include "grpcpp/support/byte_buffer.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::server {

struct ServiceOptions {
  Limits limits;
  int64_t max_message_bytes = 256 << 20;  // reported in ServerInfo
};

// The methods take raw bytes and parse them in the service, so that a body that is
// not a valid message gets INVALID_ARGUMENT naming the message type rather than gRPC's
// bare UNIMPLEMENTED.
using SamplerServiceBase = v1::Sampler::WithRawCallbackMethod_Sample<
    v1::Sampler::WithRawCallbackMethod_GetDistribution<
        v1::Sampler::WithRawCallbackMethod_SampleStream<
            v1::Sampler::WithRawCallbackMethod_GetServerInfo<
                v1::Sampler::WithRawCallbackMethod_Verify<v1::Sampler::Service>>>>>;

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
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;
  // VerifyRequest -> VerifyResponse (server/verify_reactor.h).
  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;

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
  // Calls that saw a cancellation (client cancel, deadline, shutdown).
  uint64_t calls_cancelled() const { return calls_cancelled_.load(); }
  void CountCancelled() { calls_cancelled_.fetch_add(1); }

 private:
  WorkerPool* const pool_;
  const ServiceOptions options_;
  const std::string instance_;
  const uint64_t seed_base_;
  std::atomic<uint64_t> seed_counter_{0};
  std::atomic<uint64_t> requests_served_{0};
  std::atomic<uint64_t> rows_served_{0};
  std::atomic<uint64_t> rows_skipped_{0};
  std::atomic<uint64_t> calls_cancelled_{0};
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_SERVICE_H_
