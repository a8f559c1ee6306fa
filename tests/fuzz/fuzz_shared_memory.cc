// Shared memory regions, the way the service takes them: RegisterSharedMemory,
// UnregisterSharedMemory and GetSharedMemoryStatus requests against a SharedMemoryRegistry
// (built from the bytes as choices, or parsed from raw bytes), then Sample and Verify rows
// whose Logits.shared_memory names those regions with offsets, sizes and dtypes at and
// around every edge, decoded by the codec and read the way the workers read them
// (CopyRowToPrivate), sometimes while the owner has shrunk the object.
//
// The harness owns real POSIX shared memory objects, created once per process under a
// name with its pid ("/tokensampler-fuzz-<pid>-a", "...-b", and a directory "...-dir"
// that is not an object) and removed at exit (a crashed or interrupted run leaves them
// in /dev/shm). It keeps a model of the registered regions and checks after every
// operation:
// - the registry holds exactly the model (regions(), bytes(), GetSharedMemoryStatus);
// - a registration succeeds only for a new name, a real object, a range inside the object
//   and within the limits; every refusal has an expected code and starts with its field;
// - a decoded row lies inside its region, at the offset asked for, V * width bytes long,
//   V <= max_vocab; every refused row has an expected code and names
//   rows[i].logits.shared_memory (or the Verify field) in its message;
// - the private copy holds exactly the object's bytes there, or, when the object was
//   shrunk below the row, the copy fails with FAILED_PRECONDITION naming the field;
// - a draft row in shared memory is read once, at decode time: the decoded row points
//   into the row's own storage, never into the region;
// - the rows then sample and verify within their contracts (tests/fuzz/fuzz_rows.h).
// Nothing is read through the registry's mappings except by CopyRowToPrivate, so an
// out-of-bounds row shows up as a failed bounds check, not as a lucky read.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sampler/sampler.h"
#include "server/codec.h"
#include "server/shared_memory.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_data.h"
#include "tests/fuzz/fuzz_messages.h"
#include "tests/fuzz/fuzz_rows.h"
#include "tests/fuzz/fuzz_setup.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::fuzz {
namespace {

constexpr uint64_t kLogitsBytes = 10000;  // object "a": not a multiple of the page size
constexpr uint64_t kDraftBytes = 64;      // object "b"
constexpr int32_t kMaxRegions = 3;
constexpr uint64_t kMaxBytes = kLogitsBytes + 2 * kDraftBytes;
constexpr int32_t kMaxVocab = 1024;  // object "a" holds 2,500 float32: too many for one row
constexpr const char* kNames[] = {"r0", "r1", "r2", "r3"};

// The byte at `offset` of object "a": float32 quarters in [-8, 8), one per 4-byte slot
// (their low bytes are zero, so 16-bit and misaligned reads give finite values too,
// mostly); of object "b": float32 probability rows [0.25, 0.25, 0.5, 0], repeated.
uint8_t ContentAt(bool logits, uint64_t offset) {
  static constexpr float kDraft[] = {0.25f, 0.25f, 0.5f, 0.0f};
  const uint64_t slot = offset / 4;
  const float value =
      logits ? static_cast<float>(static_cast<int>(slot % 64) - 32) / 4 : kDraft[slot % 4];
  uint8_t bytes[4];
  std::memcpy(bytes, &value, sizeof(bytes));
  return bytes[offset % 4];
}

// The process's objects.
class Objects {
 public:
  // The prefix ends with '-' after the pid, so no other process's names start with it.
  Objects() : prefix_(absl::StrCat("/tokensampler-fuzz-", getpid(), "-")) {
    logits_fd_ = Create(LogitsKey(), kLogitsBytes, &logits_);
    draft_fd_ = Create(DraftKey(), kDraftBytes, &draft_);
    for (uint64_t i = 0; i < kDraftBytes; ++i) draft_[i] = ContentAt(false, i);
    Refill();
    rmdir(DirectoryPath().c_str());
    FUZZ_CHECK(mkdir(DirectoryPath().c_str(), 0700) == 0);
  }

  static Objects& Get() {
    static Objects* const objects = [] {
      auto* created = new Objects();
      std::atexit([] { Get().Remove(); });
      return created;
    }();
    return *objects;
  }

  const std::string& prefix() const { return prefix_; }
  std::string LogitsKey() const { return prefix_ + "a"; }
  std::string DraftKey() const { return prefix_ + "b"; }
  std::string DirectoryKey() const { return prefix_ + "dir"; }
  std::string MissingKey() const { return prefix_ + "none"; }
  // The size of the object registered under `key`, or 0 for anything else.
  uint64_t ObjectBytes(absl::string_view key) const {
    if (key == LogitsKey()) return kLogitsBytes;
    if (key == DraftKey()) return kDraftBytes;
    return 0;
  }
  // The byte at `offset` of object `key` while object "a" is `logits_bytes` long (the
  // kernel zeroes a shrunk object's last page past its end).
  uint8_t ByteAt(absl::string_view key, uint64_t offset, uint64_t logits_bytes) const {
    if (key == DraftKey()) return ContentAt(false, offset);
    return offset < logits_bytes ? ContentAt(true, offset) : 0;
  }

  // Shrinks object "a" (the registry's mappings of it stay, now partly past its end).
  void ShrinkLogits(uint64_t bytes) { FUZZ_CHECK(ftruncate(logits_fd_, bytes) == 0); }
  // Object "a" back at its size and content.
  void Refill() {
    FUZZ_CHECK(ftruncate(logits_fd_, kLogitsBytes) == 0);
    for (uint64_t i = 0; i < kLogitsBytes; ++i) logits_[i] = ContentAt(true, i);
  }

 private:
  static int Create(const std::string& key, uint64_t bytes, uint8_t** data) {
    shm_unlink(key.c_str());  // left by a crashed run whose pid this one now has
    const int fd = shm_open(key.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(ftruncate(fd, static_cast<off_t>(bytes)) == 0);
    void* mapped = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    FUZZ_CHECK(mapped != MAP_FAILED);
    *data = static_cast<uint8_t*>(mapped);
    return fd;
  }
  std::string DirectoryPath() const { return "/dev/shm" + DirectoryKey(); }
  void Remove() {
    shm_unlink(LogitsKey().c_str());
    shm_unlink(DraftKey().c_str());
    rmdir(DirectoryPath().c_str());
  }

  const std::string prefix_;
  int logits_fd_ = -1;
  int draft_fd_ = -1;
  uint8_t* logits_ = nullptr;
  uint8_t* draft_ = nullptr;
};

struct Region {
  std::string key;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};
using Model = std::map<std::string, Region>;

// The registry holds exactly the model.
void CheckRegistry(const server::SharedMemoryRegistry& registry, const Model& model) {
  uint64_t bytes = 0;
  for (const auto& [name, region] : model) bytes += region.byte_size;
  FUZZ_CHECK(registry.regions() == model.size());
  FUZZ_CHECK(registry.bytes() == bytes);
  auto status = registry.Status("");
  FUZZ_CHECK(status.ok() && status->size() == model.size());
  auto it = model.begin();
  for (const server::SharedMemoryStatus& region : *status) {
    FUZZ_CHECK(region.name == it->first && region.key == it->second.key &&
               region.offset == it->second.offset && region.byte_size == it->second.byte_size);
    ++it;
  }
}

// A code and field the registry may refuse a request with.
void CheckRefusal(const absl::Status& status) {
  const absl::StatusCode code = status.code();
  FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument ||
             code == absl::StatusCode::kPermissionDenied || code == absl::StatusCode::kNotFound ||
             code == absl::StatusCode::kAlreadyExists ||
             code == absl::StatusCode::kResourceExhausted);
  const absl::string_view message = status.message();
  FUZZ_CHECK(absl::StartsWith(message, "name: ") || absl::StartsWith(message, "key: ") ||
             absl::StartsWith(message, "offset + byte_size: ") ||
             absl::StartsWith(message, "byte_size: "));
}

class Harness {
 public:
  explicit Harness(FuzzedDataProvider& in)
      : in_(in), objects_(Objects::Get()), registry_(Options()) {}

  void Run() {
    for (int op = 0; op < 24 && in_.remaining_bytes() > 0; ++op) {
      switch (in_.ConsumeIntegralInRange<int>(0, 9)) {
        case 0:
        case 1: {
          // One statement each: the bytes are read in this order with every compiler.
          const std::string name = Name();
          const std::string key = Key();
          const uint64_t offset = Offset();
          const uint64_t byte_size = Size();
          Register(name, key, offset, byte_size);
          break;
        }
        case 2: {
          v1::RegisterSharedMemoryRequest request;
          if (!request.ParseFromString(in_.ConsumeRandomLengthString(64))) break;
          // "@x" names this process's object "x" (a raw message cannot know the pid).
          std::string key = request.key();
          if (absl::StartsWith(key, "@")) key = objects_.prefix() + key.substr(1);
          Register(request.name(), key, request.offset(), request.byte_size());
          break;
        }
        case 3:
          Unregister(in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? "" : Name());
          break;
        case 4:
          Status(in_.ConsumeIntegralInRange<int>(0, 3) == 0 ? "" : Name());
          break;
        case 5:
        case 6:
          Sample(kLogitsBytes);
          break;
        case 7:
          Verify();
          break;
        case 8: {
          // The owner shrinks object "a" during a call, then puts it back.
          const uint64_t bytes = in_.ConsumeIntegralInRange<uint64_t>(0, kLogitsBytes - 1);
          objects_.ShrinkLogits(bytes);
          Sample(bytes);
          objects_.Refill();
          break;
        }
        default: {
          // A peer string as the access check of --shared_memory=local sees it.
          const std::string peer = in_.ConsumeRandomLengthString(48);
          const bool local = server::IsLocalPeer(peer);
          FUZZ_CHECK(!absl::StartsWith(peer, "unix:") || local);
          break;
        }
      }
      CheckRegistry(registry_, model_);
    }
    Unregister("");
    CheckRegistry(registry_, model_);
  }

 private:
  static server::SharedMemoryOptions Options() {
    server::SharedMemoryOptions options;
    options.mode = server::SharedMemoryMode::kAny;
    options.prefix = Objects::Get().prefix();
    options.max_regions = kMaxRegions;
    options.max_bytes = kMaxBytes;
    return options;
  }

  std::string Name() {
    switch (in_.ConsumeIntegralInRange<int>(0, 15)) {
      case 0:
        return "";
      case 1:
        return "bad/name";
      case 2:
        return std::string(129, 'x');
      case 3:
        return in_.ConsumeRandomLengthString(8);
      default:
        return kNames[in_.ConsumeIntegralInRange<size_t>(0, std::size(kNames) - 1)];
    }
  }

  std::string Key() {
    switch (in_.ConsumeIntegralInRange<int>(0, 15)) {
      case 0:
        return objects_.DirectoryKey();
      case 1:
        return objects_.MissingKey();
      case 2:
        return "/elsewhere";  // outside the prefix
      case 3:
        return objects_.prefix() + "/a";  // a second '/': not a key
      case 4:
        return in_.ConsumeRandomLengthString(16);
      case 5:
      case 6:
      case 7:
        return objects_.DraftKey();
      default:
        return objects_.LogitsKey();
    }
  }

  // A position or length in bytes: at and around the edges of a `bytes`-long range, or
  // anything. `unit` is the natural step (a dtype's width).
  uint64_t Edge(uint64_t bytes, uint64_t unit) {
    const uint64_t near = in_.ConsumeIntegralInRange<uint64_t>(0, 8);
    switch (in_.ConsumeIntegralInRange<int>(0, 9)) {
      case 0:
        return 0;
      case 1:
        return near;
      case 2:
        return bytes - near;  // wraps when bytes < near: huge
      case 3:
        return bytes + near;
      case 4:
        return std::numeric_limits<uint64_t>::max() - near;
      case 5:
        return in_.ConsumeIntegral<uint64_t>();
      default:
        return unit * in_.ConsumeIntegralInRange<uint64_t>(0, bytes / unit);
    }
  }
  uint64_t Offset() { return Edge(kLogitsBytes, 4096); }
  uint64_t Size() { return Edge(kLogitsBytes, 4); }

  void Register(const std::string& name, const std::string& key, uint64_t offset,
                uint64_t byte_size) {
    const absl::Status status = registry_.Register(name, key, offset, byte_size);
    if (!status.ok()) {
      CheckRefusal(status);
      return;
    }
    uint64_t bytes = byte_size;
    for (const auto& [other, region] : model_) bytes += region.byte_size;
    const uint64_t object = objects_.ObjectBytes(key);
    FUZZ_CHECK(model_.count(name) == 0);
    FUZZ_CHECK(object > 0 && byte_size > 0 && offset <= object && byte_size <= object - offset);
    FUZZ_CHECK(model_.size() < static_cast<size_t>(kMaxRegions) && bytes <= kMaxBytes);
    model_[name] = {key, offset, byte_size};
  }

  void Unregister(const std::string& name) {
    const absl::Status status = registry_.Unregister(name);
    const bool known = name.empty() || model_.count(name) > 0;
    FUZZ_CHECK(status.ok() == known);
    if (!status.ok()) {
      FUZZ_CHECK(status.code() == absl::StatusCode::kNotFound);
      CheckRefusal(status);
    } else if (name.empty()) {
      model_.clear();
    } else {
      model_.erase(name);
    }
  }

  void Status(const std::string& name) {
    auto status = registry_.Status(name);
    const bool known = name.empty() || model_.count(name) > 0;
    FUZZ_CHECK(status.ok() == known);
    if (!status.ok()) {
      FUZZ_CHECK(status.status().code() == absl::StatusCode::kNotFound);
      CheckRefusal(status.status());
      return;
    }
    FUZZ_CHECK(status->size() == (name.empty() ? model_.size() : 1));
    for (const server::SharedMemoryStatus& region : *status) {
      const auto it = model_.find(region.name);
      FUZZ_CHECK(it != model_.end() && it->second.key == region.key &&
                 it->second.offset == region.offset && it->second.byte_size == region.byte_size);
    }
  }

  // One Logits.shared_memory reference: a region (registered or not), its dtype and a
  // range at and around the region's edges, or of `vocab` logits.
  void PutRef(int32_t vocab, v1::Logits* logits) {
    const std::string region = Name();
    const auto it = model_.find(region);
    const uint64_t region_bytes = it == model_.end() ? 64 : it->second.byte_size;
    static constexpr v1::Dtype kDtypes[] = {v1::DTYPE_FLOAT32, v1::DTYPE_BFLOAT16,
                                            v1::DTYPE_FLOAT16, v1::DTYPE_UNSPECIFIED,
                                            static_cast<v1::Dtype>(9)};
    const size_t dtype = in_.ConsumeIntegralInRange<size_t>(0, 15);
    logits->set_dtype(kDtypes[dtype < std::size(kDtypes) ? dtype : 0]);
    const uint64_t width = logits->dtype() == v1::DTYPE_FLOAT32 ? 4 : 2;
    v1::SharedMemoryRef* ref = logits->mutable_shared_memory();
    ref->set_region(region);
    ref->set_offset(Edge(region_bytes, width));
    ref->set_byte_size(in_.ConsumeBool() ? width * static_cast<uint64_t>(vocab)
                                         : Edge(region_bytes - ref->offset(), width));
    if (in_.ConsumeIntegralInRange<int>(0, 31) == 0) logits->add_values(1.0f);  // and inline
  }

  absl::StatusOr<std::shared_ptr<const server::SharedMemoryMapping>> Find(
      absl::string_view region) const {
    return registry_.Find(region);
  }

  // Checks a decoded row in a region against its reference and the model, then copies it
  // as a worker does. Returns the copy's status; on success `*copy` views `*storage`.
  absl::Status CheckAndCopy(const v1::Logits& logits, const sampler::LogitsView& view,
                            const server::SharedMemoryMapping& mapping, uint64_t logits_bytes,
                            std::vector<char>* storage, sampler::LogitsView* copy) {
    const v1::SharedMemoryRef& ref = logits.shared_memory();
    const auto it = model_.find(ref.region());
    FUZZ_CHECK(it != model_.end() && mapping.name() == ref.region());
    const Region& region = it->second;
    FUZZ_CHECK(mapping.key() == region.key && mapping.byte_size() == region.byte_size);
    const uint64_t width = view.dtype == sampler::Dtype::kFloat32 ? 4 : 2;
    FUZZ_CHECK(view.size >= 1 && view.size <= static_cast<size_t>(kMaxVocab));
    FUZZ_CHECK(view.size * width == ref.byte_size());
    FUZZ_CHECK(static_cast<const char*>(view.data) == mapping.data() + ref.offset());
    FUZZ_CHECK(ref.offset() <= region.byte_size &&
               ref.byte_size() <= region.byte_size - ref.offset());

    const absl::Status status =
        server::CopyRowToPrivate(mapping, view, "logits.shared_memory", copy);
    // Readable iff every page of the row starts below object "a"'s end (pages of an object
    // are whole: the last one reads as zeros past the end).
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    const uint64_t start = region.offset + ref.offset();
    const uint64_t end = start + ref.byte_size();
    const bool readable =
        region.key != objects_.LogitsKey() || end <= (logits_bytes + page - 1) / page * page;
    FUZZ_CHECK(status.ok() == readable);
    if (!status.ok()) {
      FUZZ_CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
      FUZZ_CHECK(absl::StartsWith(status.message(), "logits.shared_memory: "));
      return status;
    }
    FUZZ_CHECK(copy->size == view.size && copy->dtype == view.dtype);
    const char* bytes = static_cast<const char*>(copy->data);
    storage->assign(bytes, bytes + ref.byte_size());
    for (uint64_t i = 0; i < ref.byte_size(); ++i) {
      FUZZ_CHECK(static_cast<uint8_t>((*storage)[i]) ==
                 objects_.ByteAt(region.key, start + i, logits_bytes));
    }
    copy->data = storage->data();
    return status;
  }

  // A SampleRequest of rows in regions (or parsed from raw bytes), decoded, checked,
  // copied and sampled, while object "a" is `logits_bytes` long.
  void Sample(uint64_t logits_bytes) {
    v1::SampleRequest request;
    if (in_.ConsumeIntegralInRange<int>(0, 7) == 0) {
      if (!request.ParseFromString(in_.ConsumeRandomLengthString(128))) return;
    } else {
      const int rows = in_.ConsumeIntegralInRange<int>(1, 3);
      for (int r = 0; r < rows; ++r) {
        v1::Row* row = request.add_rows();
        const int32_t vocab = in_.ConsumeIntegralInRange<int32_t>(1, 8);
        PutRef(vocab, row->mutable_logits());
        PutParams(in_, vocab, row->mutable_params());
      }
    }
    server::Limits limits;
    limits.max_rows = 4;
    limits.max_vocab = kMaxVocab;
    std::vector<server::DecodedRow> rows;
    uint64_t seeds = 0;
    const absl::Status status = server::DecodeRequest(
        request, limits, server::RequestKind::kStateless, [&seeds] { return ++seeds; }, &rows,
        [this](absl::string_view region) { return Find(region); });
    if (!status.ok()) {
      FUZZ_CHECK(RequestStatus(status) || status.code() == absl::StatusCode::kNotFound);
      FUZZ_CHECK(absl::StartsWith(status.message(), "rows"));
      return;
    }
    sampler::Sampler& sampler = FuzzSampler();
    for (const server::DecodedRow& row : rows) {
      sampler::LogitsView logits = row.logits;
      std::vector<char> storage;
      if (row.shared_memory != nullptr) {
        if (!CheckAndCopy(request.rows(row.index).logits(), row.logits, *row.shared_memory,
                          logits_bytes, &storage, &logits)
                 .ok()) {
          continue;
        }
      } else {
        FUZZ_CHECK(!request.rows(row.index).logits().has_shared_memory());
      }
      CheckSampleRow(sampler, logits, row.params, row.step);
    }
  }

  // A VerifyRow whose target rows are in regions or inline and whose draft rows are in
  // regions or absent, decoded, checked, copied and verified.
  void Verify() {
    v1::VerifyRequest request;
    v1::VerifyRow* row = request.add_rows();
    const int32_t vocab = in_.ConsumeIntegralInRange<int32_t>(1, 8);
    const int k = in_.ConsumeIntegralInRange<int>(0, 2);
    for (int i = 0; i <= k; ++i) {
      if (in_.ConsumeIntegralInRange<int>(0, 3) == 0) {
        for (int v = 0; v < vocab; ++v) row->add_target_logits()->add_values(ConsumeLogit(in_));
      } else {
        PutRef(vocab, row->add_target_logits());
      }
    }
    for (int i = 0; i < k; ++i) {
      row->add_draft_token_ids(in_.ConsumeIntegralInRange<int32_t>(0, vocab - 1));
    }
    if (in_.ConsumeBool()) {
      for (int i = 0; i < k; ++i) PutRef(vocab, row->add_draft_probs());
    }
    PutParams(in_, vocab, row->mutable_params());
    server::Limits limits;
    limits.max_vocab = kMaxVocab;
    std::vector<server::DecodedVerifyRow> rows;
    const absl::Status status = server::DecodeVerifyRequest(
        request, limits, [] { return uint64_t{7}; }, &rows,
        [this](absl::string_view region) { return Find(region); });
    if (!status.ok()) {
      FUZZ_CHECK(RequestStatus(status) || status.code() == absl::StatusCode::kNotFound);
      FUZZ_CHECK(absl::StartsWith(status.message(), "rows[0]."));
      return;
    }
    const server::DecodedVerifyRow& decoded = rows[0];
    for (size_t i = 0; i < decoded.draft_probs.size(); ++i) {
      // Read once, at decode time: the row views its own copy, not the region.
      if (!row->draft_probs(i).has_shared_memory()) continue;
      const auto mapping = registry_.Find(row->draft_probs(i).shared_memory().region());
      FUZZ_CHECK(mapping.ok());
      const char* data = static_cast<const char*>(decoded.draft_probs[i].data);
      const char* region = (*mapping)->data();
      FUZZ_CHECK(data < region || data >= region + (*mapping)->byte_size());
    }
    std::vector<sampler::LogitsView> targets(decoded.positions());
    std::vector<std::vector<char>> storage(decoded.positions());
    for (size_t i = 0; i < decoded.positions(); ++i) {
      targets[i] = decoded.target_logits[i];
      if (decoded.target_regions[i] == nullptr) continue;
      FUZZ_CHECK(CheckAndCopy(row->target_logits(i), decoded.target_logits[i],
                              *decoded.target_regions[i], kLogitsBytes, &storage[i], &targets[i])
                     .ok());
    }
    CheckVerifyRow(FuzzSampler(), decoded, targets);
  }

  FuzzedDataProvider& in_;
  Objects& objects_;
  server::SharedMemoryRegistry registry_;
  Model model_;
};

}  // namespace
}  // namespace tokensampler::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokensampler;  // NOLINT(build/namespaces): a fuzz entry point
  fuzz::FuzzSampler();           // silences protobuf's log
  fuzz::FuzzedDataProvider in(data, size);
  fuzz::Harness harness(in);
  harness.Run();
  return 0;
}
