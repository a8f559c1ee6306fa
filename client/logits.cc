#include "client/logits.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/half.h"

namespace tokensampler::client {
namespace {

absl::StatusOr<float> ParseOneFloat(absl::string_view item, absl::string_view what) {
  item = absl::StripAsciiWhitespace(item);
  const std::string lower = absl::AsciiStrToLower(item);
  if (lower == "-inf" || lower == "-infinity") return -std::numeric_limits<float>::infinity();
  if (lower == "inf" || lower == "+inf" || lower == "infinity") {
    return std::numeric_limits<float>::infinity();
  }
  if (lower == "nan") return std::numeric_limits<float>::quiet_NaN();
  float v;
  if (item.empty() || !absl::SimpleAtof(item, &v)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", item, "' is not a number"));
  }
  if (std::isinf(v)) {  // a finite number beyond float32, e.g. 1e40 (inf is spelt above)
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", item,
                                                   "' overflows float32 (largest finite value ",
                                                   std::numeric_limits<float>::max(), ")"));
  }
  return v;
}

absl::StatusOr<int32_t> ParseOneId(absl::string_view item, absl::string_view what) {
  item = absl::StripAsciiWhitespace(item);
  int32_t v;
  if (item.empty() || !absl::SimpleAtoi(item, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", item, "' is not a 32-bit integer token id"));
  }
  return v;
}

// splitmix64: a small, fully specified generator, so --random-seed gives the same
// logits everywhere (std::normal_distribution is implementation-defined).
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double Uniform01Open(uint64_t& state) {
  // (0, 1): never 0, so the log below is finite.
  return (static_cast<double>(SplitMix64(state) >> 11) + 0.5) * 0x1.0p-53;
}

}  // namespace

absl::StatusOr<Wire> ParseWire(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "values") return Wire::kValues;
  if (t == "float32" || t == "fp32" || t == "f32") return Wire::kFloat32;
  if (t == "bfloat16" || t == "bf16") return Wire::kBfloat16;
  if (t == "float16" || t == "fp16" || t == "f16" || t == "half") return Wire::kFloat16;
  return absl::InvalidArgumentError(absl::StrCat("--wire: unknown value '", text,
                                                 "' (want values, float32, bfloat16 or float16)"));
}

absl::string_view WireName(Wire wire) {
  switch (wire) {
    case Wire::kValues:
      return "values";
    case Wire::kFloat32:
      return "float32";
    case Wire::kBfloat16:
      return "bfloat16";
    case Wire::kFloat16:
      return "float16";
  }
  return "?";
}

size_t WireBytesPerLogit(Wire wire) {
  return (wire == Wire::kBfloat16 || wire == Wire::kFloat16) ? 2 : 4;
}

void EncodeLogits(absl::Span<const float> logits, Wire wire, v1::Logits* out) {
  out->Clear();
  switch (wire) {
    case Wire::kValues:
      out->mutable_values()->Assign(logits.begin(), logits.end());
      return;
    case Wire::kFloat32: {
      // Little-endian hosts only (x86-64, arm64): the bytes are the floats.
      out->set_dtype(v1::DTYPE_FLOAT32);
      out->set_raw(
          std::string(reinterpret_cast<const char*>(logits.data()), logits.size() * sizeof(float)));
      return;
    }
    case Wire::kBfloat16:
    case Wire::kFloat16: {
      const bool bf16 = wire == Wire::kBfloat16;
      out->set_dtype(bf16 ? v1::DTYPE_BFLOAT16 : v1::DTYPE_FLOAT16);
      std::string raw(logits.size() * 2, '\0');
      for (size_t i = 0; i < logits.size(); ++i) {
        const uint16_t h = bf16 ? Float32ToBfloat16(logits[i]) : Float32ToFloat16(logits[i]);
        std::memcpy(&raw[2 * i], &h, 2);
      }
      out->set_raw(std::move(raw));
      return;
    }
  }
}

absl::StatusOr<std::vector<float>> ParseFloatList(absl::string_view text, absl::string_view what) {
  std::vector<float> out;
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": empty list"));
  }
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    auto v = ParseOneFloat(item, what);
    if (!v.ok()) return v.status();
    out.push_back(*v);
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> ParseIdList(absl::string_view text, absl::string_view what) {
  std::vector<int32_t> out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    auto v = ParseOneId(item, what);
    if (!v.ok()) return v.status();
    out.push_back(*v);
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<int32_t, float>>> ParseLogitBias(absl::string_view text) {
  std::vector<std::pair<int32_t, float>> out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  std::set<int32_t> seen;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    std::vector<absl::string_view> kv = absl::StrSplit(item, absl::MaxSplits(':', 1));
    if (kv.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("--logit_bias: '", absl::StripAsciiWhitespace(item), "' is not id:value"));
    }
    auto id = ParseOneId(kv[0], "--logit_bias");
    if (!id.ok()) return id.status();
    auto v = ParseOneFloat(kv[1], "--logit_bias");
    if (!v.ok()) return v.status();
    if (!seen.insert(*id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--logit_bias: token id ", *id, " is given twice"));
    }
    out.emplace_back(*id, *v);
  }
  return out;
}

std::vector<float> RandomNormalLogits(size_t rows, size_t vocab, uint64_t seed, float sigma) {
  std::vector<float> out(rows * vocab);
  uint64_t state = seed;
  constexpr double kTwoPi = 6.283185307179586;
  for (size_t i = 0; i < out.size(); i += 2) {
    // Box-Muller: two independent normals per pair of uniforms.
    const double r = std::sqrt(-2.0 * std::log(Uniform01Open(state)));
    const double theta = kTwoPi * Uniform01Open(state);
    out[i] = static_cast<float>(sigma * r * std::cos(theta));
    if (i + 1 < out.size()) out[i + 1] = static_cast<float>(sigma * r * std::sin(theta));
  }
  return out;
}

}  // namespace tokensampler::client
