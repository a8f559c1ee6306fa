#include "server/client_text.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace tokensampler::server {
namespace {

// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a
// UTF-8 character.
absl::string_view Utf8Prefix(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

}  // namespace

std::string TruncateForStatus(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  return absl::StrCat(Utf8Prefix(text, max_bytes), "... (", text.size(), " bytes)");
}

std::string QuoteClientString(absl::string_view text) {
  const absl::string_view kept = Utf8Prefix(text, kMaxQuotedClientBytes);
  std::string out = absl::StrCat("\"", absl::Utf8SafeCEscape(kept), "\"");
  if (kept.size() < text.size()) absl::StrAppend(&out, "... (", text.size(), " bytes)");
  return out;
}

}  // namespace tokensampler::server
