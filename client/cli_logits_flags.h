// The CLI's logits flags (--npy, --logits, --random-vocab, --random-seed, --wire) and the
// SampleRequest that `sample` and `dist` build from them and the sampling flags.
#ifndef TOKENSAMPLER_CLIENT_CLI_LOGITS_FLAGS_H_
#define TOKENSAMPLER_CLIENT_CLI_LOGITS_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cli_command.h"
#include "client/logits.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::client {

// --npy, --logits, --random_vocab, --random_seed and --wire, in help order.
const std::vector<FlagRef>& LogitsFlagRefs();

// --wire as given ("values", "bfloat16", "shm", ...).
std::string WireFlag();
// Whether --wire=shm: rows travel as float32 in a shared memory region (shm_region.h).
bool SharedMemoryWire();
// The encoding of the rows' logits: --wire, or float32 under --wire=shm.
absl::StatusOr<Wire> RowWire();
// --random_seed: the seed of generated logits.
uint64_t RandomSeedFlag();

// The request of `sample` and `dist`: rows from exactly one of --npy, --logits and
// --random-vocab, encoded per RowWire, each with the sampling flags' params, --context,
// --step and the row flags. Errors name the flag.
absl::StatusOr<v1::SampleRequest> RequestFromFlags(const Invocation& inv);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_LOGITS_FLAGS_H_
