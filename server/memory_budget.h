// The server's memory budget (--max_memory): the bytes that requests being parsed and
// sampled and the histories of stream sequences may hold at once. Work reserves its
// bytes before it starts and gets RESOURCE_EXHAUSTED naming max_memory when they do not
// fit; nothing waits. gRPC's transport buffers are bounded separately by a ResourceQuota
// (see docs/SERVER.md, "Memory budget", for the arithmetic).
#ifndef TOKENSAMPLER_SERVER_MEMORY_BUDGET_H_
#define TOKENSAMPLER_SERVER_MEMORY_BUDGET_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/byte_buffer.h"

namespace tokensampler::server {

// Thread-safe.
class MemoryBudget {
 public:
  // `limit` bytes; <= 0 = unlimited (reservations always succeed, still counted).
  explicit MemoryBudget(int64_t limit) : limit_(limit) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Takes `bytes` (>= 0) or returns RESOURCE_EXHAUSTED saying what `what` needed and
  // how much is in use; takes nothing then.
  absl::Status Reserve(int64_t bytes, absl::string_view what);
  void Release(int64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }
  // Release(), and when `bytes` was large (a burst), hands free heap memory back to the
  // kernel (malloc_trim) so that RSS falls back after it.
  void ReleaseAndTrim(int64_t bytes);
  // Counts `bytes` already allocated, even past the limit (later Reserves then fail).
  void Charge(int64_t bytes) { used_.fetch_add(bytes, std::memory_order_relaxed); }

  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  int64_t limit() const { return limit_; }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
};

// Bytes one in-flight request message may cost while parsed and sampled, per byte on
// the wire: the wire bytes until parsed (dropped right after), the parsed message (a
// 1-byte varint token id becomes a 4-byte int32: 4x at worst; floats and raw bytes 1x),
// and the response (at most about the size of the logits).
inline constexpr int64_t kBytesPerWireByte = 5;
// Fixed cost charged per row on top (the Row, Logits and SamplingParams objects, the
// decoded row and its result).
inline constexpr int64_t kBytesPerRow = 1024;
// A stream's history: one int32 per remembered token.
inline constexpr int64_t kBytesPerHistoryToken = 4;

// Counts the `rows` (field 1) of a serialized SampleRequest without parsing it, and
// stops at `max_rows` + 1. Returns the count, or -1 when the bytes are not a valid
// message at the top level (the parser then reports it).
int64_t CountRequestRows(const grpc::ByteBuffer& request, int64_t max_rows);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_MEMORY_BUDGET_H_
