#include "server/service.h"

#include <unistd.h>

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sampler/splitmix64.h"
#include "server/batch_reactor.h"
#include "server/log.h"
#include "server/rpc_call.h"
#include "server/rpc_status.h"
#include "server/stream_reactor.h"
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

template <typename Request, typename Response>
grpc::ServerUnaryReactor* SamplerService::AnswerSharedMemoryCall(
    absl::string_view rpc, grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response, absl::FunctionRef<absl::Status(const Request&, Response*)> handle) {
  return AuthenticatedCall<grpc::ServerUnaryReactor>(options_.auth, context, [&] {
    return AnswerUnary<Request, Response>(rpc, context, request, response,
                                          [&](const Request& r, Response* out) {
                                            absl::Status status = CheckSharedMemoryAccess(context);
                                            return status.ok() ? handle(r, out) : status;
                                          });
  });
}

grpc::ServerUnaryReactor* SamplerService::RegisterSharedMemory(grpc::CallbackServerContext* context,
                                                               const grpc::ByteBuffer* request,
                                                               grpc::ByteBuffer* response) {
  return AnswerSharedMemoryCall<v1::RegisterSharedMemoryRequest, v1::RegisterSharedMemoryResponse>(
      "RegisterSharedMemory", context, request, response,
      [&](const v1::RegisterSharedMemoryRequest& r, v1::RegisterSharedMemoryResponse*) {
        absl::Status status = shared_memory_.Register(r.name(), r.key(), r.offset(), r.byte_size());
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
  return AnswerSharedMemoryCall<v1::UnregisterSharedMemoryRequest,
                                v1::UnregisterSharedMemoryResponse>(
      "UnregisterSharedMemory", context, request, response,
      [&](const v1::UnregisterSharedMemoryRequest& r, v1::UnregisterSharedMemoryResponse*) {
        return shared_memory_.Unregister(r.name());
      });
}

grpc::ServerUnaryReactor* SamplerService::GetSharedMemoryStatus(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return AnswerSharedMemoryCall<v1::GetSharedMemoryStatusRequest,
                                v1::GetSharedMemoryStatusResponse>(
      "GetSharedMemoryStatus", context, request, response,
      [&](const v1::GetSharedMemoryStatusRequest& r, v1::GetSharedMemoryStatusResponse* out) {
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
  // A SplitMix64 step is a bijection of its state: distinct counters, distinct seeds.
  uint64_t state = seed_base_ + seed_counter_.fetch_add(1, std::memory_order_relaxed);
  return sampler::SplitMix64(state);
}

grpc::ServerUnaryReactor* SamplerService::Sample(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request,
                                                 grpc::ByteBuffer* response) {
  return AuthenticatedCall<grpc::ServerUnaryReactor>(options_.auth, context, [&] {
    return StartBatchCall(this, context, /*distribution=*/false, request, response);
  });
}

grpc::ServerUnaryReactor* SamplerService::GetDistribution(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return AuthenticatedCall<grpc::ServerUnaryReactor>(options_.auth, context, [&] {
    return StartBatchCall(this, context, /*distribution=*/true, request, response);
  });
}

BidiStreamReactor* SamplerService::SampleStream(grpc::CallbackServerContext* context) {
  return AuthenticatedCall<BidiStreamReactor>(options_.auth, context, [&] {
    if (absl::Status busy = OpenStream(); !busy.ok()) {
      grpc::Status status = ToGrpcStatus(busy);
      LogRpcError("SampleStream", context, status);
      return RefusedStreamCall(status);
    }
    return StartStreamCall(this, context);
  });
}

grpc::ServerUnaryReactor* SamplerService::Verify(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request,
                                                 grpc::ByteBuffer* response) {
  return AuthenticatedCall<grpc::ServerUnaryReactor>(options_.auth, context, [&] {
    // The holder's request is not const (gRPC gives a const view); the reactor drops its
    // bytes once parsed.
    return StartVerify(this, context, const_cast<grpc::ByteBuffer*>(request), response);
  });
}

grpc::ServerUnaryReactor* SamplerService::GetServerInfo(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return AuthenticatedCall<grpc::ServerUnaryReactor>(options_.auth, context, [&] {
    return AnswerUnary<v1::GetServerInfoRequest, v1::ServerInfo>(
        "GetServerInfo", context, request, response,
        [&](const v1::GetServerInfoRequest&, v1::ServerInfo* info) {
          info->set_version(TOKENSAMPLER_VERSION);
          EncodeServerLimits(options_.limits, options_.max_message_bytes, pool_->threads(),
                             options_.shared_memory, info);
          info->set_requests_served(requests_served());
          info->set_rows_served(rows_served());
          info->set_instance(instance_);
          return absl::OkStatus();
        });
  });
}

}  // namespace tokensampler::server
