#include "client/shm_region.h"

#include <cstring>
#include <utility>

#include "absl/status/status.h"

namespace tokensampler::client {

absl::StatusOr<std::string> ServerSharedMemoryPrefix(Client& client) {
  auto info = client.GetServerInfo();
  if (!info.ok()) return info.status();
  if (info->shared_memory_prefix().empty()) {
    return absl::FailedPreconditionError(
        "--wire=shm: the server reports no shared_memory_prefix (too old for shared memory)");
  }
  return info->shared_memory_prefix();
}

absl::StatusOr<ShmRegion> CreateShmRegion(Client& client, absl::string_view prefix,
                                          size_t byte_size, absl::string_view what) {
  ShmRegion out;
  auto object = SharedMemoryObject::Create(prefix, byte_size);
  if (!object.ok()) return object.status();
  out.object = *std::move(object);
  auto region = RegisteredRegion::Register(client, *out.object, UniqueRegionName(what));
  if (!region.ok()) return region.status();
  out.region = *std::move(region);
  return out;
}

absl::StatusOr<ShmRegion> MoveRowsToSharedMemory(Client& client, v1::SampleRequest* request) {
  auto prefix = ServerSharedMemoryPrefix(client);
  if (!prefix.ok()) return prefix.status();
  size_t total = 0;
  for (const v1::Row& row : request->rows()) total += row.logits().raw().size();
  auto shm = CreateShmRegion(client, *prefix, total, "cli");
  if (!shm.ok()) return shm.status();
  size_t offset = 0;
  for (v1::Row& row : *request->mutable_rows()) {
    v1::Logits* logits = row.mutable_logits();
    const std::string& raw = logits->raw();
    std::memcpy(shm->object->data() + offset, raw.data(), raw.size());
    v1::SharedMemoryRef* ref = logits->mutable_shared_memory();
    ref->set_region(shm->region->name());
    ref->set_offset(offset);
    ref->set_byte_size(raw.size());
    offset += raw.size();
    logits->clear_raw();
  }
  return shm;
}

}  // namespace tokensampler::client
