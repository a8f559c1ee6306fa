// Protocol-buffer base-128 varints and length-delimited fields, for the few messages
// the client writes or reads by hand (the load generator's pre-encoded requests, the
// grpc.health.v1 messages).
#ifndef TOKENSAMPLER_CLIENT_VARINT_H_
#define TOKENSAMPLER_CLIENT_VARINT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace tokensampler::client {

// Appends `v`, 7 bits a byte, low bits first.
inline void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// The bytes AppendVarint writes for `v` (1..10).
inline size_t VarintSize(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// Appends field `field` with wire type 2: key, length, bytes.
inline void AppendLengthDelimited(std::string* out, int field, absl::string_view bytes) {
  AppendVarint(out, (static_cast<uint64_t>(field) << 3) | 2);
  AppendVarint(out, bytes.size());
  out->append(bytes.data(), bytes.size());
}

// Reads the varint at bytes[*pos] into `*v` and moves *pos past it; false when the
// input ends first or the varint is longer than 64 bits.
inline bool ReadVarint(absl::string_view bytes, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int shift = 0; *pos < bytes.size() && shift < 64; shift += 7) {
    const uint8_t b = static_cast<uint8_t>(bytes[(*pos)++]);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_VARINT_H_
