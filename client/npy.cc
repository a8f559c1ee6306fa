#include "client/npy.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/half.h"

namespace tokensampler::client {
namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("not a valid .npy file: ", what));
}

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }
// This parser accepts exactly the three keys numpy writes, in any order, each once.
class HeaderParser {
 public:
  explicit HeaderParser(absl::string_view text) : s_(text) {}

  absl::Status Parse(std::string* descr, bool* fortran, std::vector<int64_t>* shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    SkipSpace();
    if (!Consume('{')) return Bad("header does not start with '{'");
    while (true) {
      SkipSpace();
      if (Consume('}')) break;
      std::string key;
      if (!ParseString(&key)) return Bad("header: expected a quoted key");
      SkipSpace();
      if (!Consume(':')) return Bad(absl::StrCat("header: expected ':' after '", key, "'"));
      SkipSpace();
      if (key == "descr") {
        if (have_descr) return Bad("header: 'descr' given twice");
        if (!ParseString(descr)) return Bad("header: 'descr' must be a quoted string");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_fortran) return Bad("header: 'fortran_order' given twice");
        if (ConsumeWord("True")) {
          *fortran = true;
        } else if (ConsumeWord("False")) {
          *fortran = false;
        } else {
          return Bad("header: 'fortran_order' must be True or False");
        }
        have_fortran = true;
      } else if (key == "shape") {
        if (have_shape) return Bad("header: 'shape' given twice");
        absl::Status st = ParseShape(shape);
        if (!st.ok()) return st;
        have_shape = true;
      } else {
        return Bad(absl::StrCat("header: unexpected key '", key, "'"));
      }
      SkipSpace();
      if (Consume(',')) continue;
      SkipSpace();
      if (Consume('}')) break;
      return Bad("header: expected ',' or '}'");
    }
    SkipSpace();
    if (pos_ != s_.size()) return Bad("header: trailing characters after '}'");
    if (!have_descr) return Bad("header: missing 'descr'");
    if (!have_fortran) return Bad("header: missing 'fortran_order'");
    if (!have_shape) return Bad("header: missing 'shape'");
    return absl::OkStatus();
  }

 private:
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Consume(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool ConsumeWord(absl::string_view w) {
    if (s_.substr(pos_, w.size()) == w) {
      pos_ += w.size();
      return true;
    }
    return false;
  }
  bool ParseString(std::string* out) {
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) return false;
    const char quote = s_[pos_++];
    const size_t end = s_.find(quote, pos_);
    if (end == absl::string_view::npos) return false;
    *out = std::string(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return true;
  }
  absl::Status ParseShape(std::vector<int64_t>* shape) {
    if (!Consume('(')) return Bad("header: 'shape' must be a tuple");
    shape->clear();
    while (true) {
      SkipSpace();
      if (Consume(')')) return absl::OkStatus();
      const size_t start = pos_;
      while (pos_ < s_.size() && absl::ascii_isdigit(s_[pos_])) ++pos_;
      int64_t dim = 0;
      if (pos_ == start || !absl::SimpleAtoi(s_.substr(start, pos_ - start), &dim)) {
        return Bad("header: 'shape' must hold non-negative integers");
      }
      shape->push_back(dim);
      SkipSpace();
      if (Consume(',')) continue;
      SkipSpace();
      if (Consume(')')) return absl::OkStatus();
      return Bad("header: malformed 'shape' tuple");
    }
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

// A parsed header and a view of the data bytes: the part ParseNpy and ParseNpyWords share.
struct RawNpy {
  std::string descr;
  size_t rows = 0, cols = 0;
  absl::string_view data;
};

// `elem_size(descr)` gives the element size of an accepted dtype, or an error.
template <class ElemSize>
absl::StatusOr<RawNpy> ParseRaw(absl::string_view bytes, const ElemSize& elem_size) {
  static constexpr char kMagic[] = "\x93NUMPY";
  if (bytes.size() < 10 || bytes.substr(0, 6) != absl::string_view(kMagic, 6)) {
    return Bad("missing the \\x93NUMPY magic");
  }
  const uint8_t major = static_cast<uint8_t>(bytes[6]);
  const uint8_t minor = static_cast<uint8_t>(bytes[7]);
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Bad("truncated header length");
    header_len = 0;
    for (int i = 0; i < 4; ++i) {
      header_len |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    }
    offset = 12;
  } else {
    return Bad(absl::StrCat("unsupported format version ", major, ".", minor));
  }
  if (minor != 0) return Bad(absl::StrCat("unsupported format version ", major, ".", minor));
  if (bytes.size() - offset < header_len) {
    return Bad(absl::StrCat("header of ", header_len, " bytes is truncated"));
  }
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
  HeaderParser parser(bytes.substr(offset, header_len));
  if (absl::Status st = parser.Parse(&descr, &fortran, &shape); !st.ok()) return st;

  absl::StatusOr<size_t> elem_or = elem_size(descr);
  if (!elem_or.ok()) return elem_or.status();
  const size_t elem = *elem_or;
  RawNpy out;
  out.descr = descr;
  if (shape.size() == 1) {
    out.rows = 1;
    out.cols = static_cast<size_t>(shape[0]);
  } else if (shape.size() == 2) {
    if (fortran) {
      return Bad("a 2-D array in Fortran order is not supported; save it in C order");
    }
    out.rows = static_cast<size_t>(shape[0]);
    out.cols = static_cast<size_t>(shape[1]);
  } else {
    return Bad(absl::StrCat("shape must be (V,) or (rows, V), got ", shape.size(), " dimensions"));
  }
  if (out.rows == 0 || out.cols == 0) return Bad("the array is empty");
  constexpr size_t kMaxElems = size_t{1} << 34;
  if (out.cols > kMaxElems || out.rows > kMaxElems / out.cols) {
    return Bad("the shape is too large");
  }
  const size_t count = out.rows * out.cols;
  const size_t data_bytes = bytes.size() - offset - header_len;
  if (data_bytes != count * elem) {
    return Bad(
        absl::StrCat("the shape needs ", count * elem, " data bytes, the file has ", data_bytes));
  }
  out.data = bytes.substr(offset + header_len);
  return out;
}

}  // namespace

absl::StatusOr<NpyArray> ParseNpy(absl::string_view bytes) {
  auto raw = ParseRaw(bytes, [](const std::string& descr) -> absl::StatusOr<size_t> {
    if (descr == "<f4" || descr == "=f4" || descr == "|f4") return 4;
    if (descr == "<f2" || descr == "=f2" || descr == "|f2") return 2;
    if (descr == ">f4" || descr == ">f2") {
      return Bad(absl::StrCat("dtype '", descr,
                              "' is big-endian; save little-endian ('<f4' or '<f2')"));
    }
    return Bad(absl::StrCat("dtype '", descr,
                            "' is not supported; want float32 ('<f4') or float16 ('<f2')"));
  });
  if (!raw.ok()) return raw.status();
  NpyArray out;
  out.descr = raw->descr;
  out.rows = raw->rows;
  out.cols = raw->cols;
  const size_t count = out.rows * out.cols;
  const char* p = raw->data.data();
  out.data.resize(count);
  if (raw->data.size() == 4 * count) {
    std::memcpy(out.data.data(), p, count * 4);
  } else {
    for (size_t i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out.data[i] = Float16ToFloat32(h);
    }
  }
  return out;
}

absl::StatusOr<NpyWords> ParseNpyWords(absl::string_view bytes) {
  auto raw = ParseRaw(bytes, [](const std::string& descr) -> absl::StatusOr<size_t> {
    if (descr == "<i4" || descr == "=i4" || descr == "<u4" || descr == "=u4") return 4;
    return Bad(absl::StrCat("dtype '", descr,
                            "' is not supported; want int32 ('<i4') or uint32 ('<u4') words"));
  });
  if (!raw.ok()) return raw.status();
  NpyWords out;
  out.rows = raw->rows;
  out.cols = raw->cols;
  out.bytes.assign(raw->data.begin(), raw->data.end());
  return out;
}


namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open file: ", std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return buf.str();
}

template <class T>
absl::StatusOr<T> WithPath(const std::string& path, absl::StatusOr<T> parsed) {
  if (parsed.ok()) return parsed;
  return absl::Status(parsed.status().code(), absl::StrCat(path, ": ", parsed.status().message()));
}

}  // namespace

absl::StatusOr<NpyArray> ReadNpyFile(const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return WithPath(path, ParseNpy(*bytes));
}

absl::StatusOr<NpyWords> ReadNpyWordsFile(const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return WithPath(path, ParseNpyWords(*bytes));
}

}  // namespace tokensampler::client
