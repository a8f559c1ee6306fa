// Shared memory regions for zero-copy logits (RegisterSharedMemory and
// Logits.shared_memory): the registry of read-only mappings of POSIX shared memory
// objects, the peer check of --shared_memory=local, and the guarded copy that turns a row
// in a mapping the owner may shrink or rewrite at any time into a private, stable row.
//
// Why a copy (docs/SERVER.md, "Shared memory"): the sampler reads a row several times
// (max, exp-sum, cut, draw) and relies on the values staying put between passes; a
// backend may rewrite the region during a call, and an ftruncate makes the mapped pages
// past the new end raise SIGBUS. So each row is copied once, by the worker that samples
// it, into that thread's private buffer, under a SIGBUS guard; the sampler then reads
// only the copy, with the same NaN/inf checks as an inline row.
#ifndef TOKENSAMPLER_SERVER_SHARED_MEMORY_H_
#define TOKENSAMPLER_SERVER_SHARED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "sampler/params.h"

namespace tokensampler::server {

enum class SharedMemoryMode {
  kOff,    // refused
  kLocal,  // Unix-socket and loopback peers only
  kAny,    // every peer
};

// "off", "local", "any" <-> the mode. Parse errors name --shared_memory and the value.
absl::StatusOr<SharedMemoryMode> ParseSharedMemoryMode(absl::string_view text);
absl::string_view SharedMemoryModeName(SharedMemoryMode mode);

struct SharedMemoryOptions {
  SharedMemoryMode mode = SharedMemoryMode::kLocal;
  std::string prefix = "/tokensampler";  // every key must start with it
  int32_t max_regions = 256;
  uint64_t max_bytes = uint64_t{16} << 30;  // sum of the registered byte_size
};

// Checks --shared_memory_prefix (a valid key start: '/' then no other '/') and the limits.
absl::Status ValidateSharedMemoryOptions(const SharedMemoryOptions& options);

// Whether a gRPC peer string (grpc::ServerContext::peer()) is on this host: "unix:...",
// "unix-abstract:...", "ipv4:127.x.x.x:port", "ipv6:[::1]:port" and the IPv4-mapped
// loopback "ipv6:[::ffff:127.x.x.x]:port" (brackets may be percent-encoded, %5B/%5D).
bool IsLocalPeer(absl::string_view peer);

// One registered region, mapped read-only. Immutable; shared by the registry and by
// every call that resolved it, and unmapped when the last of them lets go.
class SharedMemoryMapping {
 public:
  ~SharedMemoryMapping();
  SharedMemoryMapping(const SharedMemoryMapping&) = delete;
  SharedMemoryMapping& operator=(const SharedMemoryMapping&) = delete;

  const std::string& name() const { return name_; }
  const std::string& key() const { return key_; }
  uint64_t offset() const { return offset_; }  // inside the object
  uint64_t byte_size() const { return byte_size_; }
  // The region's first byte. Reading it may fault (SIGBUS) if the owner shrank the
  // object: read it only through CopyRowToPrivate.
  const char* data() const { return data_; }

 private:
  friend class SharedMemoryRegistry;
  SharedMemoryMapping() = default;

  std::string name_;
  std::string key_;
  uint64_t offset_ = 0;
  uint64_t byte_size_ = 0;
  void* base_ = nullptr;  // the page-aligned mapping
  size_t length_ = 0;
  const char* data_ = nullptr;
};

struct SharedMemoryStatus {
  std::string name;
  std::string key;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

// The server's regions, by name. Thread-safe. Errors start with the request field
// ("name: ...", "key: ...") and carry the codes of the v1 API.
class SharedMemoryRegistry {
 public:
  explicit SharedMemoryRegistry(const SharedMemoryOptions& options);
  SharedMemoryRegistry(const SharedMemoryRegistry&) = delete;
  SharedMemoryRegistry& operator=(const SharedMemoryRegistry&) = delete;

  const SharedMemoryOptions& options() const { return options_; }

  // Opens `key` read-only, maps [offset, offset + byte_size) and records it as `name`.
  absl::Status Register(absl::string_view name, absl::string_view key, uint64_t offset,
                        uint64_t byte_size);
  // Forgets `name` (every region when empty). Calls holding a mapping keep it.
  absl::Status Unregister(absl::string_view name);
  // One region (`name`) or all (empty), sorted by name.
  absl::StatusOr<std::vector<SharedMemoryStatus>> Status(absl::string_view name) const;
  // The mapping registered as `name`; NOT_FOUND naming it otherwise.
  absl::StatusOr<std::shared_ptr<const SharedMemoryMapping>> Find(absl::string_view name) const;
  // Regions and bytes registered now.
  size_t regions() const;
  uint64_t bytes() const;

 private:
  const SharedMemoryOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const SharedMemoryMapping>, std::less<>> regions_
      ABSL_GUARDED_BY(mu_);
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

// Copies the row `view` (which points into `mapping`) into this thread's private buffer
// (reused from row to row; it grows to the largest row this thread copied) and points
// `*out` at the copy. FAILED_PRECONDITION naming `field`, the region and its key when
// the read faults because the owner shrank the object. The copy stays valid until this
// thread's next call.
absl::Status CopyRowToPrivate(const SharedMemoryMapping& mapping, const sampler::LogitsView& view,
                              absl::string_view field, sampler::LogitsView* out);

// Copies `size` bytes from `source` to `target` and returns true, or returns false
// (target partly written) when reading `source` raised SIGBUS. Installs the process's
// SIGBUS handler on first use; a SIGBUS outside a guarded copy keeps its default action
// (or the handler installed before).
bool GuardedCopy(void* target, const void* source, size_t size);

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_SHARED_MEMORY_H_
