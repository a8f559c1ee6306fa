// --wire=shm (the CLI's sample and dist, and bench): logits rows sent through one POSIX
// shared memory object under the server's prefix, registered as a region while used.
#ifndef TOKENSAMPLER_CLIENT_SHM_REGION_H_
#define TOKENSAMPLER_CLIENT_SHM_REGION_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/client.h"
#include "client/shared_memory.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::client {

// An object registered as a region. Destroying it unregisters the region, then unlinks
// the object, whatever the calls in between returned.
struct ShmRegion {
  std::unique_ptr<SharedMemoryObject> object;
  std::unique_ptr<RegisteredRegion> region;  // declared last: destroyed first
};

// The server's shared_memory_prefix (ServerInfo); FAILED_PRECONDITION if it reports none
// (a server too old for shared memory).
absl::StatusOr<std::string> ServerSharedMemoryPrefix(Client& client);

// A new object of `byte_size` bytes under `prefix`, registered as region
// "<what>-<pid>-<n>".
absl::StatusOr<ShmRegion> CreateShmRegion(Client& client, absl::string_view prefix,
                                          size_t byte_size, absl::string_view what);

// Moves the float32 `raw` bytes of every row of `request` into one new region, in row
// order, and points each row's Logits at its bytes (a SharedMemoryRef). Keep the result
// alive until the call has returned.
// REQUIRES: every row's logits are raw float32 bytes.
absl::StatusOr<ShmRegion> MoveRowsToSharedMemory(Client& client, v1::SampleRequest* request);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_SHM_REGION_H_
