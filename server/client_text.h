// Client-supplied text inside error messages and log lines, bounded: a 1 MiB
// sequence_id must not become a 1 MB log line or a status over gRPC's metadata limit.
// No gRPC or protobuf here (the fuzzers and TSan units use it).
#ifndef TOKENSAMPLER_SERVER_CLIENT_TEXT_H_
#define TOKENSAMPLER_SERVER_CLIENT_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace tokensampler::server {

// Client-supplied strings quoted inside a message keep at most this many bytes.
inline constexpr size_t kMaxQuotedClientBytes = 64;

// `text` if it has at most `max_bytes` bytes, else its first bytes (cut at a UTF-8
// character boundary) and "... (N bytes)".
std::string TruncateForStatus(absl::string_view text, size_t max_bytes);

// A client-supplied string for an error message: double-quoted, control characters and
// quotes escaped, at most kMaxQuotedClientBytes of it, e.g. "abc" or "aaaa"... (8192 bytes).
std::string QuoteClientString(absl::string_view text);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_CLIENT_TEXT_H_
