#include "server/shared_memory.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace tokensampler::server {
namespace {

constexpr size_t kMaxNameLength = 128;
constexpr size_t kMaxKeyLength = 255;  // NAME_MAX of a /dev/shm file

std::string Quoted(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

absl::Status ValidateName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength;
  for (char c : name) ok = ok && IsNameChar(c);
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "name: must be 1-", kMaxNameLength, " characters of [A-Za-z0-9_.-], got ", Quoted(name),
      name.size() > kMaxNameLength ? absl::StrCat(" (", name.size(), " characters)") : ""));
}

// A shm_open name: "/" then 1..254 characters, none of them '/' or NUL.
absl::Status ValidateKeySyntax(absl::string_view field, absl::string_view key) {
  const bool ok = key.size() >= 2 && key.size() <= kMaxKeyLength && key[0] == '/' &&
                  key.find('/', 1) == absl::string_view::npos &&
                  key.find('\0') == absl::string_view::npos && key != "/." && key != "/..";
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": must be a POSIX shared memory name: '/' then 1-", kMaxKeyLength - 1,
                   " characters without '/', got ", Quoted(key)));
}

absl::Status ErrnoStatus(int error, std::string message) {
  absl::StrAppend(&message, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(message);
    case EINVAL:
    case ENAMETOOLONG:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

// --- the SIGBUS guard -------------------------------------------------------------------

// The jump buffer of the guarded copy running on this thread, else null. Trivial type,
// so reading it from the signal handler needs no TLS initialisation.
thread_local sigjmp_buf* volatile t_guard = nullptr;
struct sigaction g_previous_sigbus;
std::once_flag g_install_once;

void OnSigbus(int signal_number, siginfo_t* info, void* context) {
  sigjmp_buf* guard = t_guard;
  if (guard != nullptr) {
    t_guard = nullptr;
    // SA_NODEFER: SIGBUS was not added to the mask, so jumping out without restoring
    // the mask (sigsetjmp(..., 0)) leaves the thread's mask as it was.
    siglongjmp(*guard, 1);
  }
  // Not a guarded copy: a real bug. Hand it to the handler that was there before, or
  // put the default action back; returning re-runs the faulting access, which then
  // raises SIGBUS again under it (default: terminate with a core dump).
  if ((g_previous_sigbus.sa_flags & SA_SIGINFO) != 0 && g_previous_sigbus.sa_sigaction != nullptr) {
    g_previous_sigbus.sa_sigaction(signal_number, info, context);
    return;
  }
  if (g_previous_sigbus.sa_handler != SIG_DFL && g_previous_sigbus.sa_handler != SIG_IGN) {
    g_previous_sigbus.sa_handler(signal_number);
    return;
  }
  signal(SIGBUS, SIG_DFL);
}

void InstallSigbusHandler() {
  std::call_once(g_install_once, [] {
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_sigaction = OnSigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &g_previous_sigbus);
  });
}

}  // namespace

absl::StatusOr<SharedMemoryMode> ParseSharedMemoryMode(absl::string_view text) {
  if (text == "off") return SharedMemoryMode::kOff;
  if (text == "local") return SharedMemoryMode::kLocal;
  if (text == "any") return SharedMemoryMode::kAny;
  return absl::InvalidArgumentError(
      absl::StrCat("--shared_memory: must be off, local or any, got ", Quoted(text)));
}

absl::string_view SharedMemoryModeName(SharedMemoryMode mode) {
  switch (mode) {
    case SharedMemoryMode::kOff:
      return "off";
    case SharedMemoryMode::kLocal:
      return "local";
    case SharedMemoryMode::kAny:
      return "any";
  }
  return "off";
}

absl::Status ValidateSharedMemoryOptions(const SharedMemoryOptions& options) {
  // The prefix itself need not be a full key ("/" alone is allowed: every object).
  if (options.prefix.empty() || options.prefix[0] != '/' ||
      options.prefix.find('/', 1) != std::string::npos || options.prefix.size() >= kMaxKeyLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shared_memory_prefix: must start with '/' and contain no other '/', got ",
                     Quoted(options.prefix)));
  }
  if (options.max_regions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_shared_memory_regions: must be >= 1, got ", options.max_regions));
  }
  if (options.max_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_shared_memory_bytes: must be >= 1, got ", options.max_bytes));
  }
  return absl::OkStatus();
}

bool IsLocalPeer(absl::string_view peer) {
  if (absl::StartsWith(peer, "unix:") || absl::StartsWith(peer, "unix-abstract:")) return true;
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    const size_t colon = peer.rfind(':');
    if (colon == absl::string_view::npos) return false;
    const std::string host(peer.substr(0, colon));
    in_addr address;
    if (inet_pton(AF_INET, host.c_str(), &address) != 1) return false;
    return reinterpret_cast<const unsigned char*>(&address.s_addr)[0] == 127;
  }
  if (absl::ConsumePrefix(&peer, "ipv6:")) {
    const std::string decoded =
        absl::StrReplaceAll(peer, {{"%5B", "["}, {"%5b", "["}, {"%5D", "]"}, {"%5d", "]"}});
    const size_t close = decoded.find(']');
    if (decoded.empty() || decoded[0] != '[' || close == std::string::npos) return false;
    std::string host = decoded.substr(1, close - 1);
    if (const size_t zone = host.find('%'); zone != std::string::npos) host.resize(zone);
    in6_addr address;
    if (inet_pton(AF_INET6, host.c_str(), &address) != 1) return false;
    if (IN6_IS_ADDR_LOOPBACK(&address)) return true;
    return IN6_IS_ADDR_V4MAPPED(&address) && address.s6_addr[12] == 127;
  }
  return false;
}

SharedMemoryMapping::~SharedMemoryMapping() {
  if (base_ != nullptr) munmap(base_, length_);
}

SharedMemoryRegistry::SharedMemoryRegistry(const SharedMemoryOptions& options)
    : options_(options) {}

absl::Status SharedMemoryRegistry::Register(absl::string_view name, absl::string_view key,
                                            uint64_t offset, uint64_t byte_size) {
  absl::Status status = ValidateName(name);
  if (!status.ok()) return status;
  status = ValidateKeySyntax("key", key);
  if (!status.ok()) return status;
  if (!absl::StartsWith(key, options_.prefix)) {
    return absl::PermissionDeniedError(
        absl::StrCat("key: must start with the server's --shared_memory_prefix ",
                     Quoted(options_.prefix), ", got ", Quoted(key)));
  }
  if (byte_size == 0) return absl::InvalidArgumentError("byte_size: must be > 0, got 0");
  if (offset > std::numeric_limits<uint64_t>::max() - byte_size ||
      offset + byte_size > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("offset + byte_size: ", offset, " + ", byte_size,
                                                   " is beyond any object's size"));
  }

  absl::MutexLock lock(&mu_);
  if (regions_.find(name) != regions_.end()) {
    return absl::AlreadyExistsError(
        absl::StrCat("name: a region named ", Quoted(name), " is already registered"));
  }
  if (regions_.size() >= static_cast<size_t>(options_.max_regions)) {
    return absl::ResourceExhaustedError(absl::StrCat("name: ", regions_.size(),
                                                     " regions are registered, the server limit "
                                                     "max_shared_memory_regions=",
                                                     options_.max_regions,
                                                     "; unregister one first"));
  }
  if (byte_size > options_.max_bytes - bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "byte_size: ", byte_size, " more bytes on top of the ", bytes_,
        " registered exceed the server limit max_shared_memory_bytes=", options_.max_bytes));
  }

  const std::string key_string(key);
  const int fd = shm_open(key_string.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    const int error = errno;
    return ErrnoStatus(error, absl::StrCat("key: cannot open shared memory object ", Quoted(key)));
  }
  struct stat info;
  if (fstat(fd, &info) != 0) {
    const int error = errno;
    close(fd);
    return ErrnoStatus(error, absl::StrCat("key: cannot stat ", Quoted(key)));
  }
  if (!S_ISREG(info.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("key: ", Quoted(key), " is not a shared memory object"));
  }
  const uint64_t object_size = static_cast<uint64_t>(info.st_size);
  if (offset + byte_size > object_size) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("offset + byte_size: ", offset, " + ", byte_size, " = ", offset + byte_size,
                     " exceeds the size of ", Quoted(key), " (", object_size, " bytes)"));
  }
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t start = offset - offset % page;
  const size_t length = static_cast<size_t>(offset - start + byte_size);
  void* base = mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
  const int map_error = errno;
  close(fd);  // the mapping keeps the object
  if (base == MAP_FAILED) {
    return ErrnoStatus(map_error, absl::StrCat("key: cannot map ", byte_size, " bytes of ",
                                               Quoted(key), " at offset ", offset));
  }
  InstallSigbusHandler();

  auto mapping = std::shared_ptr<SharedMemoryMapping>(new SharedMemoryMapping());
  mapping->name_ = std::string(name);
  mapping->key_ = key_string;
  mapping->offset_ = offset;
  mapping->byte_size_ = byte_size;
  mapping->base_ = base;
  mapping->length_ = length;
  mapping->data_ = static_cast<const char*>(base) + (offset - start);
  regions_.emplace(mapping->name_, std::move(mapping));
  bytes_ += byte_size;
  return absl::OkStatus();
}

absl::Status SharedMemoryRegistry::Unregister(absl::string_view name) {
  // Mappings are released after the lock: an munmap is not free.
  std::map<std::string, std::shared_ptr<const SharedMemoryMapping>, std::less<>> dropped;
  absl::MutexLock lock(&mu_);
  if (name.empty()) {
    dropped.swap(regions_);
    bytes_ = 0;
    return absl::OkStatus();
  }
  auto it = regions_.find(name);
  if (it == regions_.end()) {
    return absl::NotFoundError(
        absl::StrCat("name: no region named ", Quoted(name), " is registered"));
  }
  bytes_ -= it->second->byte_size();
  dropped.insert(regions_.extract(it));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SharedMemoryStatus>> SharedMemoryRegistry::Status(
    absl::string_view name) const {
  std::vector<SharedMemoryStatus> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [region_name, mapping] : regions_) {
    if (!name.empty() && region_name != name) continue;
    out.push_back({mapping->name(), mapping->key(), mapping->offset(), mapping->byte_size()});
  }
  if (!name.empty() && out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("name: no region named ", Quoted(name), " is registered"));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const SharedMemoryMapping>> SharedMemoryRegistry::Find(
    absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = regions_.find(name);
  if (it == regions_.end()) {
    return absl::NotFoundError(absl::StrCat("no region named ", Quoted(name), " is registered"));
  }
  return it->second;
}

size_t SharedMemoryRegistry::regions() const {
  absl::MutexLock lock(&mu_);
  return regions_.size();
}

uint64_t SharedMemoryRegistry::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

bool GuardedCopy(void* target, const void* source, size_t size) {
  InstallSigbusHandler();
  sigjmp_buf jump;
  if (sigsetjmp(jump, /*savemask=*/0) != 0) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return false;  // the handler cleared t_guard
  }
  t_guard = &jump;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::memcpy(target, source, size);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_guard = nullptr;
  return true;
}

absl::Status CopyRowToPrivate(const SharedMemoryMapping& mapping, const sampler::LogitsView& view,
                              absl::string_view field, sampler::LogitsView* out) {
  thread_local std::vector<char> buffer;
  const size_t width = view.dtype == sampler::Dtype::kFloat32 ? 4 : 2;
  const size_t bytes = view.size * width;
  if (buffer.size() < bytes) buffer.resize(bytes);
  if (!GuardedCopy(buffer.data(), view.data, bytes)) {
    return absl::FailedPreconditionError(absl::StrCat(
        field, ": reading region ", Quoted(mapping.name()), " (key ", Quoted(mapping.key()),
        ") faulted: its owner shrank the object below the registered range"));
  }
  *out = view;
  out->data = buffer.data();
  return absl::OkStatus();
}

}  // namespace tokensampler::server
