// A strict reader of NumPy .npy files holding float32 or float16 logits.
#ifndef TOKENSAMPLER_CLIENT_NPY_H_
#define TOKENSAMPLER_CLIENT_NPY_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tokensampler::client {

// A 1-D (one row) or 2-D (rows x cols) array, widened to float32, row-major.
struct NpyArray {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> data;  // rows * cols values
  std::string descr;        // the file's dtype, "<f4" or "<f2"
};

// Parses the bytes of a .npy file (format versions 1.0, 2.0 and 3.0). Accepted: dtype
// little-endian float32 or float16 ("<f4", "<f2"; "|"/"=" byte orders too for the
// little-endian machines this runs on), C order (or Fortran order for 1-D), shape
// (N,) or (R, N) with N >= 1 and R >= 1, and exactly R * N values after the header.
// Anything else is an InvalidArgument error saying what is wrong.
absl::StatusOr<NpyArray> ParseNpy(absl::string_view bytes);

// Reads and parses `path`; errors are prefixed with the path.
absl::StatusOr<NpyArray> ReadNpyFile(const std::string& path);

// A 1-D or 2-D array of 32-bit words ("<i4" or "<u4"), e.g. a token bitmask saved from
// torch or xgrammar; the same shape rules as ParseNpy. `bytes` holds rows * cols
// little-endian words, row-major.
struct NpyWords {
  size_t rows = 0;
  size_t cols = 0;
  std::string bytes;
};
absl::StatusOr<NpyWords> ParseNpyWords(absl::string_view bytes);
absl::StatusOr<NpyWords> ReadNpyWordsFile(const std::string& path);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_NPY_H_
