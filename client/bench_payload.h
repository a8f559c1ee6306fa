// The requests a bench run sends, generated and serialized before it starts, so that a
// call only hands gRPC shared, reference-counted bytes.
#ifndef TOKENSAMPLER_CLIENT_BENCH_PAYLOAD_H_
#define TOKENSAMPLER_CLIENT_BENCH_PAYLOAD_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/bench.h"

namespace tokensampler::client {

// A few variants of the request (up to 4, fewer when a request is large), each of
// `rows` distinct rows, which the callers cycle through.
struct BenchPayloads {
  std::vector<grpc::ByteBuffer> unary;  // whole Sample or Verify requests
  // Each variant's rows as serialized Logits messages, for stream messages (which add
  // sequence ids); empty under --wire=shm and in verify mode.
  std::vector<std::vector<grpc::Slice>> row_logits;
  std::string params;  // every row's serialized SamplingParams
  // --wire=shm: each variant's rows x vocab float32 logits, to write into a region.
  std::vector<std::vector<float>> float_rows;
};

// The payloads of `options`' run; `request_bytes` is one request's logits bytes.
BenchPayloads MakeBenchPayloads(const BenchOptions& options, size_t request_bytes);

// Serializes a SampleRequest whose rows reuse pre-serialized `Logits` messages (shared
// slices, not copied): row i gets logits[i], the serialized SamplingParams `params`
// (empty = unset), sequence_ids[i] if given, and end_sequence. Equivalent to
// SerializeToString of the same SampleRequest.
// REQUIRES: sequence_ids is empty or has logits.size() entries.
grpc::ByteBuffer ComposeSampleRequest(absl::Span<const grpc::Slice> logits,
                                      absl::string_view params,
                                      absl::Span<const std::string> sequence_ids,
                                      bool end_sequence);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_BENCH_PAYLOAD_H_
