// Structured log lines on stderr: one `key=value` line per event, e.g.
//   ts=2026-11-28T18:00:00.000Z level=info event=listening address=127.0.0.1:43121
// Values containing spaces, quotes or '=' are double-quoted with \" and \\ escaped.
// Thread-safe: each line is written with one call under a lock.
#ifndef TOKENSAMPLER_SERVER_LOG_H_
#define TOKENSAMPLER_SERVER_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace tokensampler::server {

enum class LogLevel { kInfo, kWarn, kError };

using LogField = std::pair<absl::string_view, std::string>;

// Formats one line without the trailing newline (exposed for tests).
std::string FormatLogLine(LogLevel level, absl::string_view event,
                          std::initializer_list<LogField> fields);

// Writes FormatLogLine(...) and a newline to stderr.
void LogEvent(LogLevel level, absl::string_view event,
              std::initializer_list<LogField> fields = {});

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_SERVER_LOG_H_
