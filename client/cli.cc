#include "client/cli.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <variant>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/bench.h"
#include "client/cli_messages.h"
#include "client/client.h"
#include "client/logits.h"
#include "client/npy.h"
#include "client/sampling_flags.h"
#include "client/shared_memory.h"

namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : std::string(fallback);
}

}  // namespace

// Global.
ABSL_FLAG(std::string, server, EnvOr("TOKENSAMPLER_SERVER", "127.0.0.1:50051"),
          "Server address: host:port, dns:///host:port (round robin over every address), or "
          "a comma list host:port,host:port (round robin). Environment: TOKENSAMPLER_SERVER.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call, e.g. 500ms, 10s.");
ABSL_FLAG(int32_t, retries, 0,
          "Extra attempts (0..4) of a call that fails with UNAVAILABLE before the server "
          "answered, e.g. when a replica goes away; 0 = fail at once.");
ABSL_FLAG(std::string, tls_ca, EnvOr("TOKENSAMPLER_TLS_CA", ""),
          "PEM CA bundle that the server certificate must chain to; set = TLS. "
          "Environment: TOKENSAMPLER_TLS_CA.");
ABSL_FLAG(std::string, tls_cert, EnvOr("TOKENSAMPLER_CLIENT_CERT", ""),
          "PEM client certificate for mutual TLS (with --tls_key); set = TLS (system roots "
          "unless --tls_ca). Environment: TOKENSAMPLER_CLIENT_CERT.");
ABSL_FLAG(std::string, tls_key, EnvOr("TOKENSAMPLER_CLIENT_KEY", ""),
          "PEM private key of --tls_cert. Environment: TOKENSAMPLER_CLIENT_KEY.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name to check the server certificate against instead of the address's host.");
ABSL_FLAG(std::string, auth_token_file, EnvOr("TOKENSAMPLER_CLIENT_TOKEN_FILE", ""),
          "File whose first line is a bearer token, sent with every call as "
          "'authorization: Bearer <token>'. Environment: TOKENSAMPLER_CLIENT_TOKEN_FILE.");
ABSL_FLAG(bool, json, false, "Print machine-readable JSON instead of text.");

// Logits input (sample, dist).
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

// Sampling parameters (sample, dist, bench). Not given = left unset in the request.
ABSL_FLAG(float, temperature, 1.0f, "Temperature; 0 = greedy. Server default when not given: 1.");
ABSL_FLAG(int32_t, top_k, 0, "Keep the k most likely tokens; 0 = off.");
ABSL_FLAG(float, top_p, 1.0f, "Nucleus mass in (0, 1]; 1 = off.");
ABSL_FLAG(float, min_p, 0.0f, "Keep tokens with p >= min_p * p_max; 0 = off.");
ABSL_FLAG(float, typical_p, 1.0f, "Locally typical sampling mass in (0, 1]; 1 = off.");
ABSL_FLAG(float, repetition_penalty, 1.0f, "CTRL repetition penalty over --context; 1 = off.");
ABSL_FLAG(float, presence_penalty, 0.0f, "OpenAI presence penalty over --context; 0 = off.");
ABSL_FLAG(float, frequency_penalty, 0.0f, "OpenAI frequency penalty over --context; 0 = off.");
ABSL_FLAG(std::string, logit_bias, "", "Biases as id:value,... e.g. 13:2.5,50256:-inf.");
ABSL_FLAG(std::string, allowed, "", "Only these token ids may be sampled: id,id,...");
ABSL_FLAG(std::string, banned, "", "These token ids are never sampled: id,id,...");
ABSL_FLAG(std::string, context, "", "Tokens so far (for the penalties): id,id,...");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the draw; not given = the server picks one and returns it.");
ABSL_FLAG(uint64_t, step, 0, "Decoding step mixed into the draw.");
ABSL_FLAG(int32_t, num_samples, 1, "Independent draws per row (0 = 1).");
ABSL_FLAG(int32_t, top_logprobs, 0, "Alternatives returned with each sample, 0..20.");
ABSL_FLAG(std::string, logprobs_mode, "raw",
          "raw or processed (logprobs), raw_logits or processed_logits (logit values).");
ABSL_FLAG(std::string, preset, "standard", "Pipeline rules: standard, hf, llama_cpp or vllm.");
ABSL_FLAG(int32_t, min_tokens_to_keep, 1, "Lower bound on the survivors of every truncation.");
ABSL_FLAG(float, top_n_sigma, 0.0f, "Keep logits >= max - n * std; 0 = off.");
ABSL_FLAG(float, xtc_probability, 0.0f, "XTC: chance of removing the top choices; 0 = off.");
ABSL_FLAG(float, xtc_threshold, 0.1f, "XTC: tokens with p >= this are the top choices, (0, 0.5].");
ABSL_FLAG(float, dry_multiplier, 0.0f, "DRY repetition penalty strength; 0 = off.");
ABSL_FLAG(float, dry_base, 1.75f, "DRY: penalty base, > 1.");
ABSL_FLAG(int32_t, dry_allowed_length, 2, "DRY: repeats shorter than this are free.");
ABSL_FLAG(int32_t, dry_penalty_last_n, 0, "DRY: window of the context; 0 = all of it.");
ABSL_FLAG(std::string, dry_sequence_breakers, "",
          "DRY: token-id sequences that end a repeat, e.g. 13;198,271 (';' between sequences).");
ABSL_FLAG(int32_t, mirostat, 0, "Mirostat version: 0 = off, 1 or 2.");
ABSL_FLAG(float, mirostat_tau, 5.0f, "Mirostat: target surprise in bits.");
ABSL_FLAG(float, mirostat_eta, 0.1f, "Mirostat: learning rate.");
ABSL_FLAG(float, mirostat_mu, 10.0f,
          "Mirostat: state from the previous step; not given = 2 * tau.");
ABSL_FLAG(int32_t, mirostat_m, 100, "Mirostat v1: tokens of the Zipf estimate.");
ABSL_FLAG(float, dynatemp_range, 0.0f, "Dynamic temperature range; 0 = off.");
ABSL_FLAG(float, dynatemp_exponent, 1.0f, "Dynamic temperature exponent, > 0.");
ABSL_FLAG(int32_t, penalty_last_n, 0, "Penalties count only the last n context tokens; 0 = all.");
ABSL_FLAG(std::string, bitmask, "",
          "Structured-output mask: FILE.npy of int32 words (ceil(V/32) per row) or allowed ids.");
ABSL_FLAG(int32_t, num_prompt_tokens, 0, "The first N of --context are the prompt; the rest output.");
ABSL_FLAG(int32_t, min_tokens, 0, "Mask --stop_token_ids while the output is shorter; 0 = off.");
ABSL_FLAG(std::string, stop_token_ids, "", "EOS and stop ids, for --min_tokens: id,id,...");
ABSL_FLAG(std::string, bad_words, "", "Banned sequences: id,id;id;... (';' between them).");
ABSL_FLAG(int32_t, no_repeat_ngram_size, 0, "Ban tokens repeating an n-gram of the output; 0 = off.");
ABSL_FLAG(bool, return_kept_set, false, "Return the sampled-from support as a bitmask.");
ABSL_FLAG(std::string, logprob_token_ids, "", "Also return these tokens' logprobs: id,id,...");

// dist.
ABSL_FLAG(int32_t, top, 10, "Number of most likely tokens drawn in the chart.");
ABSL_FLAG(std::string, vocab_file, "",
          "Vocabulary file: line i is the string of token id i (shown next to the ids).");

// bench.
ABSL_FLAG(int32_t, concurrency, 1, "Calls kept in flight (one per simulated caller).");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Measured run time (unless --requests).");
ABSL_FLAG(int64_t, requests, 0,
          "Measured number of calls instead of --duration; 0 = use --duration.");
ABSL_FLAG(int32_t, bench_vocab, 128256, "Vocabulary size of the generated rows.");
ABSL_FLAG(int32_t, rows, 1, "Rows per request (per stream message).");
ABSL_FLAG(std::string, mode, "unary",
          "unary (Sample calls), stream (SampleStream: one open stream per caller, a new "
          "one every 256 messages) or verify (Verify calls, --draft_tokens per row).");
ABSL_FLAG(std::string, pipeline, "greedy",
          "greedy (temperature 0) or full (temperature 0.8, top_k 50, top_p 0.95, min_p 0.05); "
          "sampling flags given on top override it.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Unmeasured time before the run.");
ABSL_FLAG(bool, progress, false, "Print progress lines even when stderr is not a terminal.");

// verify.
ABSL_FLAG(std::string, target, "",
          "Target logits from a .npy file of shape (k + 1, V): row i scores the token after "
          "the context and draft tokens 0..i-1.");
ABSL_FLAG(std::string, draft, "",
          "Draft probabilities from a .npy file of shape (k, V), rows summing to 1; not "
          "given = one-hot drafts (n-gram, prompt lookup).");
ABSL_FLAG(std::string, drafts, "", "The k draft token ids: id,id,... (empty = k = 0).");
ABSL_FLAG(int32_t, draft_tokens, 4,
          "bench --mode verify: draft tokens (k) per row; each row sends k + 1 target rows.");

// health.
ABSL_FLAG(std::string, service, "",
          "Service to check: \"\" = the whole server, or e.g. tokensampler.v1.Sampler.");

namespace tokensampler::client {
namespace {

// A flag as the CLI spells it, and the absl flag that stores it.
struct FlagRef {
  const char* cli;
  const char* absl;
};

struct Subcommand {
  const char* name;
  const char* args;
  const char* summary;
  std::vector<FlagRef> flags;
};

const std::vector<FlagRef>& GlobalFlags() {
  static const auto* flags = new std::vector<FlagRef>{{"server", "server"},
                                                      {"timeout", "timeout"},
                                                      {"retries", "retries"},
                                                      {"tls_ca", "tls_ca"},
                                                      {"tls_cert", "tls_cert"},
                                                      {"tls_key", "tls_key"},
                                                      {"tls_server_name", "tls_server_name"},
                                                      {"auth_token_file", "auth_token_file"}};
  return *flags;
}

std::vector<FlagRef> SamplingFlagRefs() {
  return {{"temperature", "temperature"},
          {"top_k", "top_k"},
          {"top_p", "top_p"},
          {"min_p", "min_p"},
          {"typical_p", "typical_p"},
          {"repetition_penalty", "repetition_penalty"},
          {"presence_penalty", "presence_penalty"},
          {"frequency_penalty", "frequency_penalty"},
          {"logit_bias", "logit_bias"},
          {"allowed", "allowed"},
          {"banned", "banned"},
          {"context", "context"},
          {"seed", "seed"},
          {"step", "step"},
          {"num_samples", "num_samples"},
          {"top_logprobs", "top_logprobs"},
          {"logprobs_mode", "logprobs_mode"},
          {"preset", "preset"},
          {"min_tokens_to_keep", "min_tokens_to_keep"},
          {"top_n_sigma", "top_n_sigma"},
          {"xtc_probability", "xtc_probability"},
          {"xtc_threshold", "xtc_threshold"},
          {"dry_multiplier", "dry_multiplier"},
          {"dry_base", "dry_base"},
          {"dry_allowed_length", "dry_allowed_length"},
          {"dry_penalty_last_n", "dry_penalty_last_n"},
          {"dry_sequence_breakers", "dry_sequence_breakers"},
          {"mirostat", "mirostat"},
          {"mirostat_tau", "mirostat_tau"},
          {"mirostat_eta", "mirostat_eta"},
          {"mirostat_mu", "mirostat_mu"},
          {"mirostat_m", "mirostat_m"},
          {"dynatemp_range", "dynatemp_range"},
          {"dynatemp_exponent", "dynatemp_exponent"},
          {"penalty_last_n", "penalty_last_n"},
          {"bitmask", "bitmask"},
          {"num_prompt_tokens", "num_prompt_tokens"},
          {"min_tokens", "min_tokens"},
          {"stop_token_ids", "stop_token_ids"},
          {"bad_words", "bad_words"},
          {"no_repeat_ngram_size", "no_repeat_ngram_size"},
          {"return_kept_set", "return_kept_set"},
          {"logprob_token_ids", "logprob_token_ids"}};
}

std::vector<FlagRef> Concat(std::vector<FlagRef> a, const std::vector<FlagRef>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::vector<Subcommand>& Subcommands() {
  static const auto* subs = new std::vector<Subcommand>{
      {"sample", "(--npy FILE | --logits LIST | --random-vocab N) [sampling flags]",
       "Sample tokens from logits; prints ids, logprobs, alternatives and how to replay.",
       Concat({{"npy", "npy"},
               {"logits", "logits"},
               {"random_vocab", "random_vocab"},
               {"random_seed", "random_seed"},
               {"wire", "wire"},
               {"json", "json"}},
              SamplingFlagRefs())},
      {"dist", "(--npy FILE | --logits LIST | --random-vocab N) [--top N] [--vocab FILE]",
       "Show the processed distribution as a bar chart of the most likely tokens.",
       Concat({{"npy", "npy"},
               {"logits", "logits"},
               {"random_vocab", "random_vocab"},
               {"random_seed", "random_seed"},
               {"wire", "wire"},
               {"top", "top"},
               {"vocab", "vocab_file"},
               {"json", "json"}},
              SamplingFlagRefs())},
      {"verify", "--target FILE [--draft FILE] --drafts LIST [sampling flags]",
       "Speculative verification: which draft tokens the target accepts, and the next token.",
       Concat({{"target", "target"},
               {"draft", "draft"},
               {"drafts", "drafts"},
               {"wire", "wire"},
               {"json", "json"}},
              SamplingFlagRefs())},
      {"bench", "[--concurrency N] [--duration D | --requests N] [--vocab V] [--rows R] ...",
       "Load generator: throughput (requests/s, rows/s, MB/s) and latency percentiles.",
       Concat({{"concurrency", "concurrency"},
               {"duration", "duration"},
               {"requests", "requests"},
               {"vocab", "bench_vocab"},
               {"rows", "rows"},
               {"wire", "wire"},
               {"mode", "mode"},
               {"draft_tokens", "draft_tokens"},
               {"pipeline", "pipeline"},
               {"warmup", "warmup"},
               {"random_seed", "random_seed"},
               {"progress", "progress"},
               {"json", "json"}},
              SamplingFlagRefs())},
      {"health",
       "[--service NAME]",
       "grpc.health.v1 check; exit 0 only when the server reports SERVING.",
       {{"service", "service"}}},
      {"info",
       "[--json]",
       "Server version, SIMD target, limits and counters (GetServerInfo).",
       {{"json", "json"}}},
  };
  return *subs;
}

const Subcommand* FindSubcommand(absl::string_view name) {
  for (const Subcommand& s : Subcommands()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

// The absl flag behind `cli` for `sub` (or a global flag); nullptr if it has none.
absl::CommandLineFlag* Resolve(const Subcommand* sub, absl::string_view cli) {
  for (const FlagRef& f : GlobalFlags()) {
    if (cli == f.cli) return absl::FindCommandLineFlag(f.absl);
  }
  if (sub != nullptr) {
    for (const FlagRef& f : sub->flags) {
      if (cli == f.cli) return absl::FindCommandLineFlag(f.absl);
    }
  }
  return nullptr;
}

// Whether `cli` names a boolean flag in any subcommand (decides if "--x value" takes
// the next argument).
bool IsBoolFlag(absl::string_view cli) {
  for (const Subcommand& s : Subcommands()) {
    if (absl::CommandLineFlag* f = Resolve(&s, cli); f != nullptr) return f->IsOfType<bool>();
  }
  return false;
}

std::string Dashed(absl::string_view cli) { return absl::StrCat("--", cli); }

// The CLI names of the flags `sub` takes, globals included (for "did you mean").
std::vector<std::string> FlagNames(const Subcommand* sub) {
  std::vector<std::string> names;
  for (const FlagRef& f : GlobalFlags()) names.push_back(f.cli);
  for (const FlagRef& f : sub->flags) names.push_back(f.cli);
  return names;
}

void PrintFlagHelp(std::ostream& out, const FlagRef& ref) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(ref.absl);
  if (flag == nullptr) return;
  std::string def = flag->DefaultValue();
  if (flag->IsOfType<std::string>()) def = absl::StrCat("\"", def, "\"");
  out << "  " << Dashed(ref.cli) << "  (default " << def << ")\n      " << flag->Help() << "\n";
}

bool IsSamplingFlag(const FlagRef& ref) {
  for (const FlagRef& f : SamplingFlagRefs()) {
    if (absl::string_view(f.cli) == ref.cli) return true;
  }
  return false;
}

// The subcommand's line, summary and flags; with `own_only`, its sampling flags are
// left out (the full help lists them once, under "Sampling flags").
void PrintSubcommandHelp(std::ostream& out, const Subcommand& s, bool own_only) {
  out << "tokensampler " << s.name << " " << s.args << "\n  " << s.summary << "\n";
  bool takes_sampling = false;
  for (const FlagRef& f : s.flags) {
    if (IsSamplingFlag(f)) {
      takes_sampling = true;
      if (own_only) continue;
    }
    PrintFlagHelp(out, f);
  }
  if (own_only && takes_sampling) out << "  and the sampling flags below\n";
}

void PrintHelp(std::ostream& out, const Subcommand* only) {
  if (only != nullptr) {
    PrintSubcommandHelp(out, *only, /*own_only=*/false);
    out << "Global flags:\n";
    for (const FlagRef& f : GlobalFlags()) PrintFlagHelp(out, f);
    return;
  }
  out << "usage: tokensampler <subcommand> [flags]\n\n"
         "A client for the tokensampler gRPC service.\n\nSubcommands:\n";
  for (const Subcommand& s : Subcommands()) {
    out << absl::StrFormat("  %-8s %s\n", s.name, s.summary);
  }
  out << absl::StrFormat("  %-8s %s\n", "help", "This text; 'help SUBCOMMAND' for one.");
  out << "\nGlobal flags (any subcommand):\n";
  for (const FlagRef& f : GlobalFlags()) PrintFlagHelp(out, f);
  for (const Subcommand& s : Subcommands()) {
    out << "\n";
    PrintSubcommandHelp(out, s, /*own_only=*/true);
  }
  out << "\nSampling flags (sample, dist, bench):\n";
  for (const FlagRef& f : SamplingFlagRefs()) PrintFlagHelp(out, f);
  out << "\nFlags are written --name=value or --name value; '-' and '_' are the same in "
         "names.\nExit codes: 0 ok, 1 a call failed (or health is not SERVING), 2 usage "
         "error (bad flag, value or file).\n";
}

// What the command line said, once parsed.
struct Invocation {
  const Subcommand* sub = nullptr;
  std::set<std::string> given;  // absl names of the flags given
  bool help = false;
};

// A usage error: message for stderr.
struct UsageError {
  std::string message;
};

// Parses argv into the absl flags. Returns the invocation, or a usage error.
std::variant<Invocation, UsageError> Parse(int argc, char** argv) {
  Invocation inv;
  std::vector<std::string> positional;
  struct GivenFlag {
    std::string written;  // as typed, e.g. "-t" or "--temprature"
    std::string name;     // normalised: no dashes, '-' -> '_'
    std::optional<std::string> value;
  };
  std::vector<GivenFlag> flags;
  bool only_positional = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string name;
    std::optional<std::string> value;
    const std::string written(arg.substr(0, arg.find('=')));
    if (const size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
    } else {
      name = std::string(body);
    }
    absl::StrReplaceAll({{"-", "_"}}, &name);
    if (name == "help" || name == "h" || name == "helpfull") {
      inv.help = true;
      continue;
    }
    if (!value.has_value()) {
      if (IsBoolFlag(name)) {
        value = "true";
      } else if (absl::StartsWith(name, "no") && IsBoolFlag(name.substr(2))) {
        name = name.substr(2);
        value = "false";
      } else if (i + 1 < argc) {
        value = std::string(argv[++i]);
      } else {
        return UsageError{absl::StrCat(Dashed(name), ": missing value")};
      }
    }
    flags.push_back({written, std::move(name), std::move(value)});
  }
  if (!positional.empty()) {
    if (positional[0] == "help") {
      inv.help = true;
      if (positional.size() > 1) {
        inv.sub = FindSubcommand(positional[1]);
        if (inv.sub == nullptr) {
          return UsageError{absl::StrCat("unknown subcommand '", positional[1], "'")};
        }
      }
      return inv;
    }
    inv.sub = FindSubcommand(positional[0]);
    if (inv.sub == nullptr) {
      return UsageError{absl::StrCat("unknown subcommand '", positional[0],
                                     "' (want sample, dist, verify, bench, health, info or help)")};
    }
    if (positional.size() > 1) {
      return UsageError{absl::StrCat("unexpected argument '", positional[1], "'")};
    }
  }
  if (inv.help) return inv;
  if (inv.sub == nullptr) {
    return UsageError{"missing subcommand (sample, dist, verify, bench, health, info or help)"};
  }
  for (const auto& [written, name, value] : flags) {
    absl::CommandLineFlag* flag = Resolve(inv.sub, name);
    if (flag == nullptr) {
      for (const Subcommand& s : Subcommands()) {
        if (Resolve(&s, name) != nullptr) {
          return UsageError{absl::StrCat(Dashed(name), " does not apply to '", inv.sub->name,
                                         "' (see: tokensampler help ", inv.sub->name, ")")};
        }
      }
      return UsageError{UnknownFlagMessage(written, name, FlagNames(inv.sub))};
    }
    if (absl::Status set = SetFlagValue(*flag, Dashed(name), *value); !set.ok()) {
      return UsageError{std::string(set.message())};
    }
    inv.given.insert(std::string(flag->Name()));
  }
  return inv;
}

int Fail(absl::Status status) {
  status = ExplainCallError(status, ClientOptions().max_message_bytes);
  std::cerr << "error: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
            << "\n";
  return kExitFailed;
}

int Usage(absl::string_view message) {
  std::cerr << "error: " << message << "\n";
  return kExitUsage;
}

template <typename T>
std::optional<T> IfGiven(const Invocation& inv, const absl::Flag<T>& flag, const char* name) {
  if (!inv.given.count(name)) return std::nullopt;
  return absl::GetFlag(flag);
}

absl::StatusOr<v1::SamplingParams> SamplingFromFlags(const Invocation& inv,
                                                     v1::SamplingParams base = {}) {
  SamplingFlagValues f;
  f.temperature = IfGiven(inv, FLAGS_temperature, "temperature");
  f.top_k = IfGiven(inv, FLAGS_top_k, "top_k");
  f.top_p = IfGiven(inv, FLAGS_top_p, "top_p");
  f.min_p = IfGiven(inv, FLAGS_min_p, "min_p");
  f.typical_p = IfGiven(inv, FLAGS_typical_p, "typical_p");
  f.repetition_penalty = IfGiven(inv, FLAGS_repetition_penalty, "repetition_penalty");
  f.presence_penalty = IfGiven(inv, FLAGS_presence_penalty, "presence_penalty");
  f.frequency_penalty = IfGiven(inv, FLAGS_frequency_penalty, "frequency_penalty");
  f.logit_bias = IfGiven(inv, FLAGS_logit_bias, "logit_bias");
  f.allowed = IfGiven(inv, FLAGS_allowed, "allowed");
  f.banned = IfGiven(inv, FLAGS_banned, "banned");
  f.seed = IfGiven(inv, FLAGS_seed, "seed");
  f.num_samples = IfGiven(inv, FLAGS_num_samples, "num_samples");
  f.top_logprobs = IfGiven(inv, FLAGS_top_logprobs, "top_logprobs");
  f.logprobs_mode = IfGiven(inv, FLAGS_logprobs_mode, "logprobs_mode");
  f.preset = IfGiven(inv, FLAGS_preset, "preset");
  f.min_tokens_to_keep = IfGiven(inv, FLAGS_min_tokens_to_keep, "min_tokens_to_keep");
  f.top_n_sigma = IfGiven(inv, FLAGS_top_n_sigma, "top_n_sigma");
  f.xtc_probability = IfGiven(inv, FLAGS_xtc_probability, "xtc_probability");
  f.xtc_threshold = IfGiven(inv, FLAGS_xtc_threshold, "xtc_threshold");
  f.dry_multiplier = IfGiven(inv, FLAGS_dry_multiplier, "dry_multiplier");
  f.dry_base = IfGiven(inv, FLAGS_dry_base, "dry_base");
  f.dry_allowed_length = IfGiven(inv, FLAGS_dry_allowed_length, "dry_allowed_length");
  f.dry_penalty_last_n = IfGiven(inv, FLAGS_dry_penalty_last_n, "dry_penalty_last_n");
  f.dry_sequence_breakers = IfGiven(inv, FLAGS_dry_sequence_breakers, "dry_sequence_breakers");
  f.mirostat = IfGiven(inv, FLAGS_mirostat, "mirostat");
  f.mirostat_tau = IfGiven(inv, FLAGS_mirostat_tau, "mirostat_tau");
  f.mirostat_eta = IfGiven(inv, FLAGS_mirostat_eta, "mirostat_eta");
  f.mirostat_mu = IfGiven(inv, FLAGS_mirostat_mu, "mirostat_mu");
  f.mirostat_m = IfGiven(inv, FLAGS_mirostat_m, "mirostat_m");
  f.dynatemp_range = IfGiven(inv, FLAGS_dynatemp_range, "dynatemp_range");
  f.dynatemp_exponent = IfGiven(inv, FLAGS_dynatemp_exponent, "dynatemp_exponent");
  f.penalty_last_n = IfGiven(inv, FLAGS_penalty_last_n, "penalty_last_n");
  f.min_tokens = IfGiven(inv, FLAGS_min_tokens, "min_tokens");
  f.no_repeat_ngram_size = IfGiven(inv, FLAGS_no_repeat_ngram_size, "no_repeat_ngram_size");
  f.stop_token_ids = IfGiven(inv, FLAGS_stop_token_ids, "stop_token_ids");
  f.bad_words = IfGiven(inv, FLAGS_bad_words, "bad_words");
  f.logprob_token_ids = IfGiven(inv, FLAGS_logprob_token_ids, "logprob_token_ids");
  f.return_kept_set = IfGiven(inv, FLAGS_return_kept_set, "return_kept_set");
  return BuildSamplingParams(f, std::move(base));
}

absl::StatusOr<std::unique_ptr<Client>> MakeClient(const Invocation& inv) {
  ClientOptions options;
  options.timeout = absl::GetFlag(FLAGS_timeout);
  options.retries = absl::GetFlag(FLAGS_retries);
  options.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  auto client = Client::Create(absl::GetFlag(FLAGS_server), options);
  if (!client.ok() && !inv.given.count("server") && std::getenv("TOKENSAMPLER_SERVER") != nullptr) {
    // The address came from the environment: name the variable, not the flag.
    return absl::Status(
        client.status().code(),
        absl::StrReplaceAll(client.status().message(), {{"--server", "TOKENSAMPLER_SERVER"}}));
  }
  return client;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return "{}";
  }
  return out;
}

// Largest generated row: 16M logits (64 MiB), well past any server's max vocab.
constexpr int32_t kMaxRandomVocab = 1 << 24;

bool SharedMemoryWire() { return absl::GetFlag(FLAGS_wire) == "shm"; }

// --wire=shm for `sample` and `dist`: the rows' float32 bytes moved into one new shared
// memory object, registered as a region while the call runs. Destroying it unregisters
// the region and unlinks the object, whatever the call returned.
struct SharedMemoryCall {
  std::unique_ptr<SharedMemoryObject> object;
  std::unique_ptr<RegisteredRegion> region;  // destroyed first
};

absl::StatusOr<SharedMemoryCall> MoveRowsToSharedMemory(Client& client,
                                                        v1::SampleRequest* request) {
  auto info = client.GetServerInfo();
  if (!info.ok()) return info.status();
  if (info->shared_memory_prefix().empty()) {
    return absl::FailedPreconditionError(
        "--wire=shm: the server reports no shared_memory_prefix (too old for shared memory)");
  }
  size_t total = 0;
  for (const v1::Row& row : request->rows()) total += row.logits().raw().size();
  SharedMemoryCall call;
  auto object = SharedMemoryObject::Create(info->shared_memory_prefix(), total);
  if (!object.ok()) return object.status();
  call.object = *std::move(object);
  auto region = RegisteredRegion::Register(client, *call.object, UniqueRegionName("cli"));
  if (!region.ok()) return region.status();
  call.region = *std::move(region);
  size_t offset = 0;
  for (v1::Row& row : *request->mutable_rows()) {
    v1::Logits* logits = row.mutable_logits();
    const std::string& raw = logits->raw();
    std::memcpy(call.object->data() + offset, raw.data(), raw.size());
    v1::SharedMemoryRef* ref = logits->mutable_shared_memory();
    ref->set_region(call.region->name());
    ref->set_offset(offset);
    ref->set_byte_size(raw.size());
    offset += raw.size();
    logits->clear_raw();
  }
  return call;
}

// Builds the request of `sample` and `dist` from the logits and sampling flags.
absl::StatusOr<v1::SampleRequest> RequestFromFlags(const Invocation& inv) {
  const int sources = static_cast<int>(inv.given.count("npy")) +
                      static_cast<int>(inv.given.count("logits")) +
                      static_cast<int>(inv.given.count("random_vocab"));
  if (sources != 1) {
    return absl::InvalidArgumentError(
        "give exactly one of --npy FILE, --logits LIST or --random-vocab N");
  }
  std::vector<float> logits;
  size_t rows = 1, cols = 0;
  if (inv.given.count("npy")) {
    auto array = ReadNpyFile(absl::GetFlag(FLAGS_npy));
    if (!array.ok()) return absl::InvalidArgumentError(array.status().message());
    rows = array->rows;
    cols = array->cols;
    logits = std::move(array->data);
  } else if (inv.given.count("logits")) {
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
    logits = RandomNormalLogits(1, cols, absl::GetFlag(FLAGS_random_seed));
  }
  absl::StatusOr<Wire> wire = SharedMemoryWire() ? absl::StatusOr<Wire>(Wire::kFloat32)
                                                 : ParseWire(absl::GetFlag(FLAGS_wire));
  if (!wire.ok()) return wire.status();
  auto params = SamplingFromFlags(inv);
  if (!params.ok()) return params.status();
  auto context = ParseIdList(absl::GetFlag(FLAGS_context), "--context");
  if (!context.ok()) return context.status();
  v1::SampleRequest request =
      BuildRequest(logits, rows, cols, *wire, *params, *context, absl::GetFlag(FLAGS_step));
  RowFlagValues row_flags;
  row_flags.bitmask = IfGiven(inv, FLAGS_bitmask, "bitmask");
  row_flags.num_prompt_tokens = IfGiven(inv, FLAGS_num_prompt_tokens, "num_prompt_tokens");
  absl::Status status = ApplyRowFlags(row_flags, cols, &request);
  if (!status.ok()) return status;
  return request;
}

std::string FormatLogprob(float lp) {
  if (std::isinf(lp)) return lp < 0 ? "-inf" : "inf";
  return absl::StrFormat("%.4f", lp);
}

int RunSample(const Invocation& inv) {
  auto request = RequestFromFlags(inv);
  if (!request.ok()) return Usage(request.status().message());
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  absl::StatusOr<SharedMemoryCall> shared;
  if (SharedMemoryWire()) {
    shared = MoveRowsToSharedMemory(**client, &*request);
    if (!shared.ok()) return Fail(shared.status());
  }
  auto response = (*client)->Sample(*request);
  if (!response.ok()) return Fail(response.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(*response) << "\n";
    return kExitOk;
  }
  for (int r = 0; r < response->results_size(); ++r) {
    const v1::SampleResult& result = response->results(r);
    std::cout << "row " << r << ":";
    const bool many = result.samples_size() > 1;
    if (many) std::cout << "\n";
    for (int s = 0; s < result.samples_size(); ++s) {
      const v1::Sample& sample = result.samples(s);
      std::cout << (many ? absl::StrCat("  sample ", s, ":") : "") << " token " << sample.token_id()
                << "  logprob " << FormatLogprob(sample.logprob()) << "\n";
      if (sample.top_logprobs_size() > 0) {
        std::vector<std::string> alts;
        for (const v1::TokenLogprob& t : sample.top_logprobs()) {
          alts.push_back(absl::StrCat(t.token_id(), " (", FormatLogprob(t.logprob()), ")"));
        }
        std::cout << (many ? "    " : "  ") << "top: " << absl::StrJoin(alts, ", ") << "\n";
      }
      if (sample.rank() > 0) std::cout << (many ? "    " : "  ") << "rank " << sample.rank() << "\n";
      if (sample.token_logprobs_size() > 0) {
        std::vector<std::string> asked;
        for (const v1::TokenLogprob& t : sample.token_logprobs()) {
          asked.push_back(absl::StrCat(t.token_id(), " (", FormatLogprob(t.logprob()), ")"));
        }
        std::cout << (many ? "    " : "  ") << "asked: " << absl::StrJoin(asked, ", ") << "\n";
      }
    }
    if (!result.kept_set().empty()) {
      int kept = 0;
      for (unsigned char byte : result.kept_set()) kept += __builtin_popcount(byte);
      std::cout << "  kept set: " << kept << " tokens\n";
    }
    std::cout << "  seed " << result.seed() << "  step " << result.step()
              << "  (replay with --seed " << result.seed() << " --step " << result.step() << ")\n";
    if (result.has_mirostat_mu()) {
      std::cout << "  mirostat_mu " << result.mirostat_mu() << "  (next step: --mirostat_mu "
                << result.mirostat_mu() << ")\n";
    }
  }
  return kExitOk;
}

int RunDist(const Invocation& inv) {
  auto request = RequestFromFlags(inv);
  if (!request.ok()) return Usage(request.status().message());
  const int32_t top = absl::GetFlag(FLAGS_top);
  if (top < 1) return Usage(absl::StrCat("--top: must be >= 1, got ", top));
  std::vector<std::string> vocab;
  if (inv.given.count("vocab_file")) {
    auto read = ReadVocabFile(absl::GetFlag(FLAGS_vocab_file));
    if (!read.ok()) return Usage(read.status().message());
    vocab = *std::move(read);
  }
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  absl::StatusOr<SharedMemoryCall> shared;
  if (SharedMemoryWire()) {
    shared = MoveRowsToSharedMemory(**client, &*request);
    if (!shared.ok()) return Fail(shared.status());
  }
  auto response = (*client)->GetDistribution(*request);
  if (!response.ok()) return Fail(response.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(*response) << "\n";
    return kExitOk;
  }
  constexpr int kBarWidth = 40;
  for (int r = 0; r < response->distributions_size(); ++r) {
    const v1::Distribution& d = response->distributions(r);
    const int shown = std::min(top, d.token_ids_size());
    double mass = 0;
    for (int i = 0; i < shown; ++i) mass += d.probs(i);
    std::cout << absl::StrFormat("row %d: %d tokens with p > 0; top %d hold %.2f%% of the mass\n",
                                 r, d.token_ids_size(), shown, 100 * mass);
    std::vector<std::string> labels;
    size_t label_width = 0;
    for (int i = 0; i < shown && !vocab.empty(); ++i) {
      const int32_t id = d.token_ids(i);
      labels.push_back(id >= 0 && static_cast<size_t>(id) < vocab.size() ? QuoteToken(vocab[id])
                                                                         : "?");
      label_width = std::max(label_width, labels.back().size());
    }
    const double p_max = shown > 0 ? d.probs(0) : 1.0;
    for (int i = 0; i < shown; ++i) {
      std::cout << absl::StrFormat("  %8d ", d.token_ids(i));
      if (!labels.empty()) {
        std::cout << labels[i] << std::string(label_width - labels[i].size() + 1, ' ');
      }
      std::cout << absl::StrFormat("%7.4f ", d.probs(i))
                << Bar(p_max > 0 ? d.probs(i) / p_max : 0, kBarWidth) << "\n";
    }
  }
  return kExitOk;
}

// The Verify request of `verify`: one row from the target (and draft) .npy files.
absl::StatusOr<v1::VerifyRequest> VerifyRequestFromFlags(const Invocation& inv) {
  if (!inv.given.count("target")) {
    return absl::InvalidArgumentError("give --target FILE (.npy of shape (k + 1, V))");
  }
  auto target = ReadNpyFile(absl::GetFlag(FLAGS_target));
  if (!target.ok()) return absl::InvalidArgumentError(target.status().message());
  auto drafts = ParseIdList(absl::GetFlag(FLAGS_drafts), "--drafts");
  if (!drafts.ok()) return drafts.status();
  if (target->rows != drafts->size() + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--target: want k + 1 = ", drafts->size() + 1, " rows for ", drafts->size(),
        " --drafts, got ", target->rows));
  }
  std::optional<NpyArray> draft;
  if (inv.given.count("draft")) {
    auto read = ReadNpyFile(absl::GetFlag(FLAGS_draft));
    if (!read.ok()) return absl::InvalidArgumentError(read.status().message());
    if (read->rows != drafts->size() || read->cols != target->cols) {
      return absl::InvalidArgumentError(
          absl::StrCat("--draft: want shape (", drafts->size(), ", ", target->cols, "), got (",
                       read->rows, ", ", read->cols, ")"));
    }
    draft = *std::move(read);
  }
  auto wire = ParseWire(absl::GetFlag(FLAGS_wire));
  if (!wire.ok()) return wire.status();
  auto params = SamplingFromFlags(inv);
  if (!params.ok()) return params.status();
  auto context = ParseIdList(absl::GetFlag(FLAGS_context), "--context");
  if (!context.ok()) return context.status();
  v1::VerifyRequest request;
  v1::VerifyRow* row = request.add_rows();
  const size_t v = target->cols;
  for (size_t i = 0; i < target->rows; ++i) {
    EncodeLogits(absl::MakeConstSpan(target->data).subspan(i * v, v), *wire,
                 row->add_target_logits());
  }
  for (size_t i = 0; draft.has_value() && i < draft->rows; ++i) {
    EncodeLogits(absl::MakeConstSpan(draft->data).subspan(i * v, v), *wire,
                 row->add_draft_probs());
  }
  row->mutable_draft_token_ids()->Add(drafts->begin(), drafts->end());
  *row->mutable_params() = *params;
  row->mutable_context_token_ids()->Add(context->begin(), context->end());
  row->set_step(absl::GetFlag(FLAGS_step));
  return request;
}

int RunVerify(const Invocation& inv) {
  auto request = VerifyRequestFromFlags(inv);
  if (!request.ok()) return Usage(request.status().message());
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  auto response = (*client)->Verify(*request);
  if (!response.ok()) return Fail(response.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(*response) << "\n";
    return kExitOk;
  }
  const v1::VerifyRow& row = request->rows(0);
  const v1::VerifyResult& result = response->results(0);
  std::cout << "accepted " << result.num_accepted() << " of " << row.draft_token_ids_size()
            << " draft tokens\n";
  for (int i = 0; i < result.tokens_size(); ++i) {
    const v1::Sample& token = result.tokens(i);
    const char* what = i < result.num_accepted()                     ? "draft, accepted"
                       : result.num_accepted() == row.draft_token_ids_size() ? "bonus"
                                                                              : "recovered";
    std::cout << "  position " << i << ": token " << token.token_id() << "  logprob "
              << FormatLogprob(token.logprob()) << "  (" << what << ")\n";
  }
  std::cout << "  seed " << result.seed() << "  step " << result.step()
            << "  (replay with --seed " << result.seed() << " --step " << result.step()
            << ")\n";
  return kExitOk;
}

int RunBenchCommand(const Invocation& inv) {
  BenchOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.requests = absl::GetFlag(FLAGS_requests);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.vocab = absl::GetFlag(FLAGS_bench_vocab);
  options.rows = absl::GetFlag(FLAGS_rows);
  options.random_seed = absl::GetFlag(FLAGS_random_seed);
  options.pipeline = absl::GetFlag(FLAGS_pipeline);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "unary" && mode != "stream" && mode != "verify") {
    return Usage(
        absl::StrCat("--mode: unknown value '", mode, "' (want unary, stream or verify)"));
  }
  options.stream = mode == "stream";
  options.verify = mode == "verify";
  options.draft_tokens = absl::GetFlag(FLAGS_draft_tokens);
  options.shared_memory = SharedMemoryWire();
  absl::StatusOr<Wire> wire = options.shared_memory ? absl::StatusOr<Wire>(Wire::kFloat32)
                                                    : ParseWire(absl::GetFlag(FLAGS_wire));
  if (!wire.ok()) return Usage(wire.status().message());
  options.wire = *wire;
  auto base = PipelineParams(options.pipeline);
  if (!base.ok()) return Usage(base.status().message());
  auto params = SamplingFromFlags(inv, *base);
  if (!params.ok()) return Usage(params.status().message());
  options.params = *params;
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  const bool tty = isatty(STDERR_FILENO) == 1;
  const bool show_progress = tty || absl::GetFlag(FLAGS_progress);
  auto result = RunBench(**client, options, show_progress ? &std::cerr : nullptr, tty);
  if (!result.ok()) return Usage(result.status().message());
  if (!result->fatal_error.empty()) {
    std::cerr << "error: " << result->fatal_error
              << "\nbench stopped at the first call the server rejected (every call sends "
                 "the same parameters)\n";
    return kExitFailed;
  }
  const std::string server = absl::GetFlag(FLAGS_server);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << BenchResultJson(options, *result, server) << "\n";
  } else {
    std::cout << BenchResultText(options, *result, server);
  }
  // The run itself succeeded even when some calls failed (they are counted); it fails
  // only when nothing got through.
  if (result->requests == 0) {
    std::cerr << "error: no call succeeded"
              << (result->first_error.empty() ? "" : absl::StrCat(": ", result->first_error))
              << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

int RunHealth(const Invocation& inv) {
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  const std::string service = absl::GetFlag(FLAGS_service);
  auto status = (*client)->Health(service);
  if (!status.ok()) return Fail(status.status());
  std::cout << HealthStatusName(*status) << "\n";
  return *status == HealthStatus::kServing ? kExitOk : kExitFailed;
}

int RunInfo(const Invocation& inv) {
  auto client = MakeClient(inv);
  if (!client.ok()) return Usage(client.status().message());
  auto info = (*client)->GetServerInfo();
  if (!info.ok()) return Fail(info.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(*info) << "\n";
    return kExitOk;
  }
  std::vector<std::string> presets, dtypes;
  for (int p : info->presets()) presets.push_back(v1::Preset_Name(static_cast<v1::Preset>(p)));
  for (int d : info->dtypes()) dtypes.push_back(v1::Dtype_Name(static_cast<v1::Dtype>(d)));
  std::cout << absl::StrFormat(
      "server          %s\n"
      "instance        %s\n"
      "version         %s\n"
      "simd_target     %s\n"
      "worker_threads  %d\n"
      "presets         %s\n"
      "dtypes          %s\n"
      "samplers        %s\n"
      "limits          max_vocab %d, max_rows_per_request %d, max_message_bytes %d,\n"
      "                max_sequences_per_stream %d, max_history_tokens %d,\n"
      "                max_num_samples %d, max_top_logprobs %d, max_draft_tokens %d\n"
      "served          %d requests, %d rows\n"
      "shared_memory   %s, prefix \"%s\", max %d regions, max %d bytes\n",
      absl::GetFlag(FLAGS_server), info->instance(), info->version(), info->simd_target(),
      info->worker_threads(), absl::StrJoin(presets, ", "), absl::StrJoin(dtypes, ", "),
      absl::StrJoin(info->samplers(), ", "), info->max_vocab(), info->max_rows_per_request(),
      info->max_message_bytes(), info->max_sequences_per_stream(), info->max_history_tokens(),
      info->max_num_samples(), info->max_top_logprobs(), info->max_draft_tokens(),
      info->requests_served(),
      info->rows_served(), v1::SharedMemoryMode_Name(info->shared_memory_mode()),
      info->shared_memory_prefix(), info->max_shared_memory_regions(),
      info->max_shared_memory_bytes());
  return kExitOk;
}

}  // namespace

std::string Bar(double fraction, int width) {
  static constexpr const char* kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  fraction = std::clamp(std::isnan(fraction) ? 0.0 : fraction, 0.0, 1.0);
  const int eighths = static_cast<int>(std::lround(fraction * width * 8));
  std::string out;
  for (int i = 0; i < eighths / 8; ++i) out += "█";
  out += kEighths[eighths % 8];
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadVocabFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--vocab: ", path, ": cannot open file: ", std::strerror(errno)));
  }
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(std::move(line));
  }
  return out;
}

std::string QuoteToken(absl::string_view token) {
  return absl::StrCat("\"", absl::Utf8SafeCEscape(token), "\"");
}

int RunCli(int argc, char** argv) {
  auto parsed = Parse(argc, argv);
  if (auto* error = std::get_if<UsageError>(&parsed)) {
    std::cerr << "error: " << error->message << "\nrun 'tokensampler help' for usage\n";
    return kExitUsage;
  }
  const Invocation& inv = std::get<Invocation>(parsed);
  if (inv.help) {
    PrintHelp(std::cout, inv.sub);
    return kExitOk;
  }
  const std::string name = inv.sub->name;
  if (name == "sample") return RunSample(inv);
  if (name == "dist") return RunDist(inv);
  if (name == "verify") return RunVerify(inv);
  if (name == "bench") return RunBenchCommand(inv);
  if (name == "health") return RunHealth(inv);
  return RunInfo(inv);
}

}  // namespace tokensampler::client
