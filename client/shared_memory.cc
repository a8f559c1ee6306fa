#include "client/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tokensampler::client {
namespace {

std::atomic<uint64_t> g_counter{0};

}  // namespace

std::string UniqueRegionName(absl::string_view what) {
  return absl::StrCat(what, "-", getpid(), "-", g_counter.fetch_add(1));
}

absl::StatusOr<std::unique_ptr<SharedMemoryObject>> SharedMemoryObject::Create(
    absl::string_view prefix, size_t byte_size) {
  if (byte_size == 0) return absl::InvalidArgumentError("shared memory: byte_size must be > 0");
  std::unique_ptr<SharedMemoryObject> object(new SharedMemoryObject());
  object->key_ = UniqueRegionName(prefix);
  const int fd = shm_open(object->key_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("shared memory: cannot create ", object->key_, ": ", std::strerror(errno)));
  }
  void* data = MAP_FAILED;
  if (ftruncate(fd, static_cast<off_t>(byte_size)) == 0) {
    data = mmap(nullptr, byte_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  const int error = errno;
  close(fd);
  if (data == MAP_FAILED) {
    shm_unlink(object->key_.c_str());
    return absl::ResourceExhaustedError(absl::StrCat("shared memory: cannot size or map ",
                                                     byte_size, " bytes of ", object->key_, ": ",
                                                     std::strerror(error)));
  }
  object->data_ = static_cast<char*>(data);
  object->byte_size_ = byte_size;
  return object;
}

SharedMemoryObject::~SharedMemoryObject() {
  if (data_ != nullptr) munmap(data_, byte_size_);
  shm_unlink(key_.c_str());
}

absl::StatusOr<std::unique_ptr<RegisteredRegion>> RegisteredRegion::Register(
    Client& client, const SharedMemoryObject& object, absl::string_view name) {
  v1::RegisterSharedMemoryRequest request;
  request.set_name(std::string(name));
  request.set_key(object.key());
  request.set_offset(0);
  request.set_byte_size(object.byte_size());
  absl::Status status = client.RegisterSharedMemory(request);
  if (!status.ok()) return status;
  return std::unique_ptr<RegisteredRegion>(new RegisteredRegion(client, std::string(name)));
}

RegisteredRegion::~RegisteredRegion() { client_.UnregisterSharedMemory(name_).IgnoreError(); }

}  // namespace tokensampler::client
