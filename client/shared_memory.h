// The backend side of zero-copy logits: a POSIX shared memory object this process
// creates, maps read-write and registers with the server as one region.
//
//   auto shm = SharedMemoryObject::Create("/tokensampler", 64 * 128256 * 4);
//   RegisteredRegion region(client, *shm, "step-logits");   // Register ... Unregister
//   std::memcpy(shm->data(), logits, bytes);                  // each step
//   request.rows(0).logits().shared_memory() = {region, offset, bytes}
#ifndef TOKENSAMPLER_CLIENT_SHARED_MEMORY_H_
#define TOKENSAMPLER_CLIENT_SHARED_MEMORY_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/client.h"

namespace tokensampler::client {

// An object "<prefix>-<pid>-<n>" created exclusively (mode 0600), sized and mapped.
// The destructor unmaps and unlinks it (the server's mapping, if any, stays valid until
// the server lets go). Not thread-safe.
class SharedMemoryObject {
 public:
  // `prefix` must be the server's --shared_memory_prefix (ServerInfo.shared_memory_prefix).
  static absl::StatusOr<std::unique_ptr<SharedMemoryObject>> Create(absl::string_view prefix,
                                                                    size_t byte_size);
  ~SharedMemoryObject();
  SharedMemoryObject(const SharedMemoryObject&) = delete;
  SharedMemoryObject& operator=(const SharedMemoryObject&) = delete;

  const std::string& key() const { return key_; }
  size_t byte_size() const { return byte_size_; }
  char* data() { return data_; }

 private:
  SharedMemoryObject() = default;
  std::string key_;
  size_t byte_size_ = 0;
  char* data_ = nullptr;
};

// Registers `object` as region `name` for the lifetime of this value, and unregisters it
// (best effort) when destroyed, also when the calls in between failed.
class RegisteredRegion {
 public:
  static absl::StatusOr<std::unique_ptr<RegisteredRegion>> Register(
      Client& client, const SharedMemoryObject& object, absl::string_view name);
  ~RegisteredRegion();
  RegisteredRegion(const RegisteredRegion&) = delete;
  RegisteredRegion& operator=(const RegisteredRegion&) = delete;

  const std::string& name() const { return name_; }

 private:
  RegisteredRegion(Client& client, std::string name) : client_(client), name_(std::move(name)) {}
  Client& client_;
  std::string name_;
};

// A region name unique to this process and call: "<what>-<pid>-<n>".
std::string UniqueRegionName(absl::string_view what);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_SHARED_MEMORY_H_
