// tokensampler-server: serves tokensampler.v1.Sampler until SIGTERM or SIGINT, then
// drains. Every flag can also come from the environment variable named in its help
// (the command line wins). Logs one key=value line per event on stderr.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/internal/program_name.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "sampler/sampler.h"
#include "server/client_text.h"
#include "server/grpc_log.h"
#include "server/log.h"
#include "server/server.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051",
          "Listen addresses, comma-separated: host:port (port 0 picks a free port, reported "
          "in the event=listening log line) and unix:PATH or unix:///ABS/PATH (a Unix "
          "socket; its directory must exist; a stale socket file is replaced, a live one "
          "refused). Env TOKENSAMPLER_ADDRESS.");
ABSL_FLAG(std::string, unix_socket_mode, "0660",
          "Octal permission bits set on every Unix socket after binding; who may connect. "
          "Env TOKENSAMPLER_UNIX_SOCKET_MODE.");
ABSL_FLAG(std::string, shared_memory, "local",
          "Zero-copy logits in POSIX shared memory (RegisterSharedMemory): off, local "
          "(only callers on a Unix socket or a loopback address) or any. "
          "Env TOKENSAMPLER_SHARED_MEMORY.");
ABSL_FLAG(std::string, shared_memory_prefix, "/tokensampler",
          "Every registered shared memory key must start with this, so that callers "
          "cannot make the server map other programs' objects. "
          "Env TOKENSAMPLER_SHARED_MEMORY_PREFIX.");
ABSL_FLAG(int32_t, max_shared_memory_regions, 256,
          "Most registered shared memory regions. Env TOKENSAMPLER_MAX_SHARED_MEMORY_REGIONS.");
ABSL_FLAG(uint64_t, max_shared_memory_bytes, uint64_t{16} << 30,
          "Most bytes of registered shared memory regions in total (mapped, not copied). "
          "Env TOKENSAMPLER_MAX_SHARED_MEMORY_BYTES.");
ABSL_FLAG(int32_t, workers, 0,
          "Sampling worker threads; 0 = number of CPUs. Env TOKENSAMPLER_WORKERS.");
ABSL_FLAG(int32_t, queue_depth, 256,
          "Row tasks that may wait for a worker (a request takes min(rows, workers) "
          "tasks); beyond it calls get RESOURCE_EXHAUSTED. Env TOKENSAMPLER_QUEUE_DEPTH.");
ABSL_FLAG(bool, sample_on_grpc_threads, false,
          "Sample a request whose rows make one task (one row, or --workers=1) on the "
          "gRPC thread that received it when a worker is free and no task is queued, "
          "instead of handing it to a worker thread and back. Saves two thread wake-ups "
          "per call; at most --workers rows still sample at once, and queued tasks still "
          "go first. Env TOKENSAMPLER_SAMPLE_ON_GRPC_THREADS.");
ABSL_FLAG(bool, reflection, true,
          "Serve gRPC server reflection (grpc.reflection.v1alpha), which tools such as "
          "grpcurl use to list and call the services without the proto files; "
          "--noreflection (or false) turns it off. Env TOKENSAMPLER_REFLECTION.");
ABSL_FLAG(int32_t, max_vocab, 1048576,
          "Largest vocabulary (logits per row). Env TOKENSAMPLER_MAX_VOCAB.");
ABSL_FLAG(int32_t, max_rows, 1024,
          "Most rows per request message. Env TOKENSAMPLER_MAX_ROWS.");
ABSL_FLAG(int64_t, max_message_bytes, 67108864,
          "gRPC max receive and send message size in bytes (a larger message gets "
          "RESOURCE_EXHAUSTED before it is read). Env TOKENSAMPLER_MAX_MESSAGE_BYTES.");
ABSL_FLAG(int64_t, max_memory, int64_t{1} << 30,
          "Memory budget in bytes: 1/4 bounds gRPC's transport buffers (ResourceQuota), "
          "3/4 the requests being parsed and sampled (5 bytes per wire byte + 1 KiB per "
          "row) and stream histories (4 bytes per token); work that does not fit gets "
          "RESOURCE_EXHAUSTED. 0 = unlimited. Env TOKENSAMPLER_MAX_MEMORY.");
ABSL_FLAG(int32_t, max_streams, 1024,
          "Most open SampleStream calls; 0 = unlimited. Env TOKENSAMPLER_MAX_STREAMS.");
ABSL_FLAG(int64_t, max_live_sequences, 65536,
          "Most live sequences over all streams; 0 = unlimited. "
          "Env TOKENSAMPLER_MAX_LIVE_SEQUENCES.");
ABSL_FLAG(int32_t, max_sequences, 4096,
          "Most live sequences per SampleStream. Env TOKENSAMPLER_MAX_SEQUENCES.");
ABSL_FLAG(int32_t, max_history_tokens, 131072,
          "Most remembered tokens per stream sequence. Env TOKENSAMPLER_MAX_HISTORY_TOKENS.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "On SIGTERM/SIGINT, how long the stop may take, --lame_duck included; calls "
          "still running at its end are cancelled. Env TOKENSAMPLER_DRAIN_TIMEOUT.");
ABSL_FLAG(absl::Duration, lame_duck, absl::Seconds(1),
          "On SIGTERM/SIGINT, how long to keep serving with health NOT_SERVING before "
          "the port closes, so that health-checking clients and load balancers move "
          "away first; part of (capped at) --drain_timeout; 0 = off; a second signal "
          "ends it early. Env TOKENSAMPLER_LAME_DUCK.");
ABSL_FLAG(absl::Duration, max_connection_age, absl::ZeroDuration(),
          "Send each client connection a GOAWAY after this age (+-10% jitter) so that "
          "dns:/// clients reconnect and re-resolve (new replicas get load); 0 = off. "
          "Env TOKENSAMPLER_MAX_CONNECTION_AGE.");
ABSL_FLAG(absl::Duration, max_connection_age_grace, absl::InfiniteDuration(),
          "After --max_connection_age, how long calls and streams on the old connection "
          "may still run before they are cancelled; inf = never cut. "
          "Env TOKENSAMPLER_MAX_CONNECTION_AGE_GRACE.");

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server; with --tls_key turns on TLS. Re-read when "
          "it changes (see --tls_reload_interval). Env TOKENSAMPLER_TLS_CERT.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert. Env TOKENSAMPLER_TLS_KEY.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; set = mutual TLS: clients must present a certificate signed by "
          "it. Re-read when it changes. Env TOKENSAMPLER_TLS_CLIENT_CA.");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(60),
          "How often the TLS files are checked for a new version (rotation without a "
          "restart); replace key and certificate together (rename or symlink swap). "
          "Env TOKENSAMPLER_TLS_RELOAD_INTERVAL.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File of bearer tokens, one per line ('#' comments); set = every Sampler RPC "
          "needs 'authorization: Bearer <token>' (else UNAUTHENTICATED). Health and "
          "reflection need none. Re-read when it changes. "
          "Env TOKENSAMPLER_AUTH_TOKEN_FILE.");
ABSL_FLAG(std::string, health_address, "",
          "Optional second, plaintext host:port serving only grpc.health.v1, for probes "
          "that cannot speak TLS (e.g. Kubernetes grpc probes); bind it to 127.0.0.1 or "
          "the pod IP. Env TOKENSAMPLER_HEALTH_ADDRESS.");
ABSL_FLAG(std::string, metrics_address, "",
          "host:port of an HTTP endpoint serving Prometheus metrics at /metrics; empty = "
          "off. Env TOKENSAMPLER_METRICS_ADDRESS.");

namespace tokensampler::server {
namespace {

constexpr struct {
  const char* flag;
  const char* env;
} kEnvFlags[] = {
    {"address", "TOKENSAMPLER_ADDRESS"},
    {"unix_socket_mode", "TOKENSAMPLER_UNIX_SOCKET_MODE"},
    {"shared_memory", "TOKENSAMPLER_SHARED_MEMORY"},
    {"shared_memory_prefix", "TOKENSAMPLER_SHARED_MEMORY_PREFIX"},
    {"max_shared_memory_regions", "TOKENSAMPLER_MAX_SHARED_MEMORY_REGIONS"},
    {"max_shared_memory_bytes", "TOKENSAMPLER_MAX_SHARED_MEMORY_BYTES"},
    {"workers", "TOKENSAMPLER_WORKERS"},
    {"queue_depth", "TOKENSAMPLER_QUEUE_DEPTH"},
    {"sample_on_grpc_threads", "TOKENSAMPLER_SAMPLE_ON_GRPC_THREADS"},
    {"reflection", "TOKENSAMPLER_REFLECTION"},
    {"max_vocab", "TOKENSAMPLER_MAX_VOCAB"},
    {"max_rows", "TOKENSAMPLER_MAX_ROWS"},
    {"max_message_bytes", "TOKENSAMPLER_MAX_MESSAGE_BYTES"},
    {"max_sequences", "TOKENSAMPLER_MAX_SEQUENCES"},
    {"max_history_tokens", "TOKENSAMPLER_MAX_HISTORY_TOKENS"},
    {"drain_timeout", "TOKENSAMPLER_DRAIN_TIMEOUT"},
    {"lame_duck", "TOKENSAMPLER_LAME_DUCK"},
    {"max_connection_age", "TOKENSAMPLER_MAX_CONNECTION_AGE"},
    {"max_connection_age_grace", "TOKENSAMPLER_MAX_CONNECTION_AGE_GRACE"},
    {"tls_cert", "TOKENSAMPLER_TLS_CERT"},
    {"tls_key", "TOKENSAMPLER_TLS_KEY"},
    {"tls_client_ca", "TOKENSAMPLER_TLS_CLIENT_CA"},
    {"tls_reload_interval", "TOKENSAMPLER_TLS_RELOAD_INTERVAL"},
    {"auth_token_file", "TOKENSAMPLER_AUTH_TOKEN_FILE"},
    {"health_address", "TOKENSAMPLER_HEALTH_ADDRESS"},
    {"metrics_address", "TOKENSAMPLER_METRICS_ADDRESS"},
    {"max_memory", "TOKENSAMPLER_MAX_MEMORY"},
    {"max_streams", "TOKENSAMPLER_MAX_STREAMS"},
    {"max_live_sequences", "TOKENSAMPLER_MAX_LIVE_SEQUENCES"},
};

// glibc gives each thread that allocates under contention its own malloc arena, up to
// 8 per CPU. gRPC's poller and callback threads and the workers all allocate and free
// the ~0.5 MB request buffers of V=128256 rows, so each arena keeps its own free
// half-megabyte holes: at concurrency 64 the server held 254-355 MiB with the default
// and 172-194 MiB with two arenas (and was no slower). MALLOC_ARENA_MAX in the
// environment (or GLIBC_TUNABLES) still wins: then this leaves malloc alone.
// The same buffers are also why the mmap and trim thresholds are fixed: by default
// glibc serves a block over its (adaptive) mmap threshold with a fresh mmap, and gives
// free memory at the top of a heap back to the kernel beyond twice that threshold, so
// every call's half-megabyte buffers were mapped, faulted in page by page (the copy into
// them) and unmapped again: about 20% of the server's time at concurrency 1 with
// float32 rows. Blocks up to kMmapThreshold now come from the heaps and stay mapped
// until more than kTrimThreshold is free at a heap's top.
void ConfigureMalloc() {
  constexpr int kMallocArenas = 2;
  constexpr int kMmapThreshold = 16 << 20;
  constexpr int kTrimThreshold = 64 << 20;
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr || std::getenv("GLIBC_TUNABLES") != nullptr) {
    return;
  }
  mallopt(M_ARENA_MAX, kMallocArenas);
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
}

// Sets flags from their environment variables. Runs before the command line is parsed,
// so a flag given on the command line overrides its variable.
bool ApplyEnvironment() {
  for (const auto& entry : kEnvFlags) {
    const char* value = std::getenv(entry.env);
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(entry.flag);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(value, &error)) {
      LogEvent(LogLevel::kError, "bad_flag",
               {{"env", entry.env}, {"value", value}, {"error", error}});
      return false;
    }
  }
  return true;
}

// Whether argv asks for help (absl's --help handling exits 1; help is not an error).
bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") return false;
    for (absl::string_view help : {"help", "helpfull", "helpshort", "h"}) {
      if (arg == absl::StrCat("--", help) || arg == absl::StrCat("-", help)) return true;
    }
  }
  return false;
}

int Main(int argc, char** argv) {
  // Logs go to stderr, which may be a pipe whose reader dies first (a `tee` killed by
  // the terminal's Ctrl-C): a write must then fail with EPIPE, not kill the server
  // before it has drained.
  signal(SIGPIPE, SIG_IGN);
  absl::SetProgramUsageMessage(
      "Serves tokensampler.v1.Sampler over gRPC.\n"
      "Usage: tokensampler-server [--address=HOST:PORT] [--workers=N] ...\n"
      "Each flag may also be set by the environment variable named in its help.");
  // --help lists the flags of this file (the binary's name differs from the file's).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "server/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.normalize_filename = [](absl::string_view path) {
    const size_t pos = path.rfind("server/");
    return std::string(pos == absl::string_view::npos ? path : path.substr(pos));
  };
  absl::SetFlagsUsageConfig(usage);
  if (WantsHelp(argc, argv)) {
    absl::flags_internal::SetProgramInvocationName(argv[0]);
    absl::flags_internal::FlagsHelp(std::cout, "server/main.cc",
                                    absl::flags_internal::HelpFormat::kHumanReadable,
                                    absl::ProgramUsageMessage());
    return 0;
  }
  if (!ApplyEnvironment()) return 2;
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    LogEvent(LogLevel::kError, "bad_flag",
             {{"error", absl::StrCat("unexpected argument ", rest[1])}});
    return 2;
  }

  ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.workers = absl::GetFlag(FLAGS_workers);
  options.queue_depth = absl::GetFlag(FLAGS_queue_depth);
  options.sample_on_grpc_threads = absl::GetFlag(FLAGS_sample_on_grpc_threads);
  options.reflection = absl::GetFlag(FLAGS_reflection);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  options.max_connection_age_grace = absl::GetFlag(FLAGS_max_connection_age_grace);
  options.limits.max_vocab = absl::GetFlag(FLAGS_max_vocab);
  options.limits.max_rows = absl::GetFlag(FLAGS_max_rows);
  options.limits.max_sequences = absl::GetFlag(FLAGS_max_sequences);
  options.limits.max_history_tokens = absl::GetFlag(FLAGS_max_history_tokens);
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.tls.reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  options.health_address = absl::GetFlag(FLAGS_health_address);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.max_memory = absl::GetFlag(FLAGS_max_memory);
  options.max_streams = absl::GetFlag(FLAGS_max_streams);
  options.max_live_sequences = absl::GetFlag(FLAGS_max_live_sequences);
  const std::string socket_mode = absl::GetFlag(FLAGS_unix_socket_mode);
  char* socket_mode_end = nullptr;
  options.unix_socket_mode =
      static_cast<int>(std::strtol(socket_mode.c_str(), &socket_mode_end, 8));
  if (socket_mode.empty() || *socket_mode_end != '\0') {
    LogEvent(LogLevel::kError, "bad_flag",
             {{"error",
               absl::StrCat("--unix_socket_mode: must be octal, e.g. 0660, got ", socket_mode)}});
    return 2;
  }
  absl::StatusOr<SharedMemoryMode> shared_memory =
      ParseSharedMemoryMode(absl::GetFlag(FLAGS_shared_memory));
  if (!shared_memory.ok()) {
    LogEvent(LogLevel::kError, "bad_flag",
             {{"error", std::string(shared_memory.status().message())}});
    return 2;
  }
  options.shared_memory.mode = *shared_memory;
  options.shared_memory.prefix = absl::GetFlag(FLAGS_shared_memory_prefix);
  options.shared_memory.max_regions = absl::GetFlag(FLAGS_max_shared_memory_regions);
  options.shared_memory.max_bytes = absl::GetFlag(FLAGS_max_shared_memory_bytes);
  const absl::Duration drain = absl::GetFlag(FLAGS_drain_timeout);
  if (drain < absl::ZeroDuration()) {
    LogEvent(LogLevel::kError, "bad_flag",
             {{"error", absl::StrCat("--drain_timeout: must be >= 0, got ",
                                     absl::FormatDuration(drain))}});
    return 2;
  }
  const absl::Duration lame_duck = absl::GetFlag(FLAGS_lame_duck);
  if (lame_duck < absl::ZeroDuration()) {
    LogEvent(LogLevel::kError, "bad_flag",
             {{"error", absl::StrCat("--lame_duck: must be >= 0 (0 = off), got ",
                                     absl::FormatDuration(lame_duck))}});
    return 2;
  }

  ConfigureMalloc();

  // Block the stop signals in every thread (the pool and gRPC threads inherit the
  // mask) and wait for them here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // gRPC's own errors while it binds (a busy port dumps a multi-line error chain) are
  // kept and summed up in the one start_failed line.
  RouteGrpcLogs();
  std::vector<std::string> grpc_errors;
  absl::StatusOr<std::unique_ptr<Server>> server;
  {
    GrpcErrorCapture capture;
    server = Server::Start(options);
    grpc_errors = capture.Take();
  }
  if (!server.ok()) {
    LogEvent(LogLevel::kError, "start_failed",
             {{"code", absl::StatusCodeToString(server.status().code())},
              {"message", DescribeStartFailure(server.status(), options.address, grpc_errors)}});
    return 1;
  }
  for (const std::string& error : grpc_errors) {
    LogEvent(LogLevel::kWarn, "grpc", {{"message", TruncateForStatus(error, 400)}});
  }
  LogEvent(LogLevel::kInfo, "listening",
           {{"address", absl::StrJoin((*server)->addresses(), ",")},
            {"shared_memory", std::string(SharedMemoryModeName(options.shared_memory.mode))},
            {"workers", absl::StrCat((*server)->workers())},
            {"queue_depth", absl::StrCat(options.queue_depth)},
            {"sample_on_grpc_threads", options.sample_on_grpc_threads ? "true" : "false"},
            {"tls", options.tls.client_ca_file.empty() ? (TlsEnabled(options.tls) ? "tls" : "off")
                                                       : "mtls"},
            {"auth", options.auth_token_file.empty() ? "off" : "bearer"},
            {"health_address", (*server)->health_address()},
            {"metrics_port", absl::StrCat((*server)->metrics_port())},
            {"reflection", options.reflection ? "true" : "false"},
            {"simd", sampler::SimdTargetName()},
            {"version", TOKENSAMPLER_VERSION}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  const absl::Time start = absl::Now();
  // Lame duck: health NOT_SERVING while calls are still served, so that clients that
  // watch health (and proxies that probe it) stop sending here before the port closes.
  // gRPC refuses a call that arrives once Shutdown has begun with CANCELLED, which no
  // retry policy retries; the lame duck keeps such calls away.
  const absl::Duration lame = std::min(lame_duck, drain);
  // Health first, then the log line: "event=draining" means health already says
  // NOT_SERVING (tests and operators read it that way).
  (*server)->EnterLameDuck();
  LogEvent(LogLevel::kInfo, "draining",
           {{"signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM"},
            {"lame_duck", absl::FormatDuration(lame)},
            {"drain_timeout", absl::FormatDuration(drain)}});
  const absl::Time lame_end = start + lame;
  for (absl::Time now = absl::Now(); now < lame_end; now = absl::Now()) {
    const timespec wait = absl::ToTimespec(lame_end - now);
    if (sigtimedwait(&stop_signals, nullptr, &wait) > 0) {
      LogEvent(LogLevel::kInfo, "lame_duck_cut",
               {{"reason", "second signal"},
                {"after_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start))}});
      break;
    }
    if (errno != EINTR) break;  // EAGAIN: the lame duck is over
  }
  (*server)->Shutdown(std::max(absl::ZeroDuration(), drain - (absl::Now() - start)));
  const uint64_t requests = (*server)->service().requests_served();
  const uint64_t rows = (*server)->service().rows_served();
  server->reset();
  LogEvent(LogLevel::kInfo, "stopped",
           {{"requests_served", absl::StrCat(requests)},
            {"rows_served", absl::StrCat(rows)},
            {"drain_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start))}});
  return 0;
}

}  // namespace
}  // namespace tokensampler::server

int main(int argc, char** argv) { return tokensampler::server::Main(argc, argv); }
