// What one request may ask of the server: the limits set by its flags, checked by the
// codec (INVALID_ARGUMENT or RESOURCE_EXHAUSTED naming the limit) and reported in
// ServerInfo.
#ifndef TOKENSAMPLER_SERVER_LIMITS_H_
#define TOKENSAMPLER_SERVER_LIMITS_H_

#include <cstdint>

#include "sampler/params.h"

namespace tokensampler::server {

// Most draws one row may ask for on this server (SamplingParams.num_samples); the
// sampler library itself allows up to sampler::kMaxNumSamples.
inline constexpr int32_t kMaxNumSamples = 64;

// Server-wide limits on what one request may ask for.
struct Limits {
  int32_t max_vocab = sampler::kMaxVocab;    // V per row; INVALID_ARGUMENT above
  int32_t max_rows = 1024;                   // rows per message; RESOURCE_EXHAUSTED above
  int32_t max_num_samples = kMaxNumSamples;  // per row; INVALID_ARGUMENT above
  int32_t max_sequences = 4096;              // live sequences per stream
  int32_t max_history_tokens = 131072;       // remembered tokens per stream sequence
  int32_t max_draft_tokens = 64;             // k per Verify row; INVALID_ARGUMENT above
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_LIMITS_H_
