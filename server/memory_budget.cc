#include "server/memory_budget.h"

#include <malloc.h>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "grpcpp/support/proto_buffer_reader.h"

namespace tokensampler::server {

absl::Status MemoryBudget::Reserve(int64_t bytes, absl::string_view what) {
  const int64_t before = used_.fetch_add(bytes, std::memory_order_relaxed);
  if (limit_ <= 0 || before + bytes <= limit_) return absl::OkStatus();
  used_.fetch_sub(bytes, std::memory_order_relaxed);
  return absl::ResourceExhaustedError(absl::StrCat(
      "server busy: ", what, " needs ", bytes, " bytes of the memory budget max_memory=", limit_,
      " (", before, " in use); retry later, send smaller messages, or raise --max_memory"));
}

void MemoryBudget::ReleaseAndTrim(int64_t bytes) {
  constexpr int64_t kTrimAfter = 16 << 20;
  Release(bytes);
  if (bytes >= kTrimAfter) malloc_trim(0);
}

int64_t CountRequestRows(const grpc::ByteBuffer& request, int64_t max_rows) {
  using google::protobuf::internal::WireFormatLite;
  grpc::ByteBuffer copy(request);  // shares the slices; the reader consumes its input
  grpc::ProtoBufferReader reader(&copy);
  google::protobuf::io::CodedInputStream in(&reader);
  int64_t rows = 0;
  while (uint32_t tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) == 1 &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (++rows > max_rows) return rows;
    }
    if (!WireFormatLite::SkipField(&in, tag)) return -1;
  }
  return in.ConsumedEntireMessage() ? rows : -1;
}

}  // namespace tokensampler::server
