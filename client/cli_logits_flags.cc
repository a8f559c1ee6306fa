#include "client/cli_logits_flags.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/cli_sampling_flags.h"
#include "client/npy.h"
#include "client/sampling_flags.h"

ABSL_FLAG(std::string, npy, "",
          "Logits from a .npy file: float32 or float16, shape (V,) or (rows, V).");
ABSL_FLAG(std::string, logits, "", "Logits as a comma list, e.g. 2.0,1.0,0.1 (-inf masks).");
ABSL_FLAG(int32_t, random_vocab, 0,
          "Generate one row of N logits from a fixed-seed normal distribution (sigma 3).");
ABSL_FLAG(uint64_t, random_seed, 1, "Seed of the generated logits (--random-vocab, bench).");
ABSL_FLAG(std::string, wire, "values",
          "How logits travel: values (repeated float), float32, bfloat16 or float16 (raw "
          "little-endian bytes; converted with round-to-nearest-even), or shm (float32 in a "
          "POSIX shared memory object created under the server's shared_memory_prefix, "
          "registered for the call and removed after it; the server must be on this host).");

namespace tokensampler::client {
namespace {

// Largest generated row: 16M logits (64 MiB), well past any server's max vocab.
constexpr int32_t kMaxRandomVocab = 1 << 24;

}  // namespace

const std::vector<FlagRef>& LogitsFlagRefs() {
  static const auto* flags =
      new std::vector<FlagRef>{"npy", "logits", "random_vocab", "random_seed", "wire"};
  return *flags;
}

std::string WireFlag() { return absl::GetFlag(FLAGS_wire); }

bool SharedMemoryWire() { return WireFlag() == "shm"; }

absl::StatusOr<Wire> RowWire() {
  if (SharedMemoryWire()) return Wire::kFloat32;
  return ParseWire(WireFlag());
}

uint64_t RandomSeedFlag() { return absl::GetFlag(FLAGS_random_seed); }

absl::StatusOr<v1::SampleRequest> RequestFromFlags(const Invocation& inv) {
  const int sources = static_cast<int>(inv.Given("npy")) + static_cast<int>(inv.Given("logits")) +
                      static_cast<int>(inv.Given("random_vocab"));
  if (sources != 1) {
    return absl::InvalidArgumentError(
        "give exactly one of --npy FILE, --logits LIST or --random-vocab N");
  }
  std::vector<float> logits;
  size_t rows = 1, cols = 0;
  if (inv.Given("npy")) {
    auto array = ReadNpyFile(absl::GetFlag(FLAGS_npy));
    if (!array.ok()) return absl::InvalidArgumentError(array.status().message());
    rows = array->rows;
    cols = array->cols;
    logits = std::move(array->data);
  } else if (inv.Given("logits")) {
    auto parsed = ParseFloatList(absl::GetFlag(FLAGS_logits), "--logits");
    if (!parsed.ok()) return parsed.status();
    logits = *std::move(parsed);
    cols = logits.size();
  } else {
    const int32_t v = absl::GetFlag(FLAGS_random_vocab);
    if (v < 1 || v > kMaxRandomVocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("--random-vocab: must be in [1, ", kMaxRandomVocab, "], got ", v));
    }
    cols = static_cast<size_t>(v);
    logits = RandomNormalLogits(1, cols, RandomSeedFlag());
  }
  absl::StatusOr<Wire> wire = RowWire();
  if (!wire.ok()) return wire.status();
  const GivenSamplingFlags given = ReadSamplingFlags(inv);
  auto params = BuildSamplingParams(given.params);
  if (!params.ok()) return params.status();
  auto context = ContextFromFlags();
  if (!context.ok()) return context.status();
  v1::SampleRequest request =
      BuildRequest(logits, rows, cols, *wire, *params, *context, StepFromFlags());
  absl::Status status = ApplyRowFlags(given.row, cols, &request);
  if (!status.ok()) return status;
  return request;
}

}  // namespace tokensampler::client
