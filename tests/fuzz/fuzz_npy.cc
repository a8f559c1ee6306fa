// Arbitrary bytes as a .npy file: the reader either accepts them with a consistent
// array or says why not; it never crashes or allocates without bound.
#include <cstdint>

#include "absl/strings/string_view.h"
#include "client/npy.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::StatusOr<tokensampler::client::NpyArray> array =
      tokensampler::client::ParseNpy(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!array.ok()) {
    FUZZ_CHECK(array.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!array.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(array->rows >= 1 && array->cols >= 1);
  FUZZ_CHECK(array->data.size() == array->rows * array->cols);
  FUZZ_CHECK(array->descr.size() == 3 && array->descr[0] != '>' &&
             (array->descr.substr(1) == "f4" || array->descr.substr(1) == "f2"));
  // Every value came from the file: at least 2 bytes each.
  FUZZ_CHECK(array->data.size() * 2 <= size);
  return 0;
}
