// Logits and sampling-flag values as the CLI reads them, and their wire encodings.
#ifndef TOKENSAMPLER_CLIENT_LOGITS_H_
#define TOKENSAMPLER_CLIENT_LOGITS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::client {

// How logits travel in Logits: `values` (repeated float) or `raw` bytes of a dtype.
enum class Wire { kValues, kFloat32, kBfloat16, kFloat16 };

// "values", "float32", "bfloat16" or "float16" (also "fp32", "bf16", "fp16").
absl::StatusOr<Wire> ParseWire(absl::string_view text);
absl::string_view WireName(Wire wire);
// Bytes per logit on the wire (4 for values: a packed float).
size_t WireBytesPerLogit(Wire wire);

// Fills `out` with `logits` in the chosen encoding. bfloat16 and float16 round to
// nearest, ties to even.
void EncodeLogits(absl::Span<const float> logits, Wire wire, v1::Logits* out);

// "2.0,1.0,-inf" -> floats. Accepts inf/-inf/nan spellings (the server decides what is
// allowed). `what` names the flag in errors.
absl::StatusOr<std::vector<float>> ParseFloatList(absl::string_view text, absl::string_view what);
// "1,2,3" -> int32 ids (any int32; range checks are the server's). Empty text -> {}.
absl::StatusOr<std::vector<int32_t>> ParseIdList(absl::string_view text, absl::string_view what);
// "id:value,..." -> pairs, e.g. "50256:-inf,13:2.5". Duplicate ids are an error.
absl::StatusOr<std::vector<std::pair<int32_t, float>>> ParseLogitBias(absl::string_view text);

// `rows` x `vocab` logits drawn from a normal distribution with standard deviation
// `sigma`, fully determined by `seed` (same numbers on every platform).
std::vector<float> RandomNormalLogits(size_t rows, size_t vocab, uint64_t seed, float sigma = 3.0f);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_LOGITS_H_
