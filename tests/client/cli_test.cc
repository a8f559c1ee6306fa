// The `tokensampler` command line: flag parsing, exit codes and output, run in-process
// (RunCli) against a fake server.
#include "client/cli.h"
#include "client/cli_sample.h"

#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/client/fake_server.h"

namespace tokensampler::client {
namespace {

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome RunTool(std::vector<std::string> args) {
  absl::FlagSaver saver;  // every run starts from the flag defaults
  args.insert(args.begin(), "tokensampler");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int code = RunCli(static_cast<int>(argv.size()), argv.data());
  Outcome o{code, ::testing::internal::GetCapturedStdout(),
            ::testing::internal::GetCapturedStderr()};
  return o;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(CliTest, HelpListsEverySubcommandAndFlag) {
  for (auto args : {std::vector<std::string>{"help"}, {"--help"}}) {
    const Outcome o = RunTool(args);
    EXPECT_EQ(o.code, kExitOk);
    for (const char* part :
         {"tokensampler sample ", "tokensampler dist ", "tokensampler bench ",
          "tokensampler health ", "tokensampler info ", "--server", "--timeout", "--npy",
          "--random_vocab", "--top_logprobs", "--logprobs_mode", "--concurrency", "--duration",
          "--requests", "--pipeline", "--warmup", "--service", "--vocab", "Exit codes"}) {
      EXPECT_TRUE(Has(o.out, part)) << part;
    }
  }
  const Outcome one = RunTool({"help", "bench"});
  EXPECT_EQ(one.code, kExitOk);
  EXPECT_TRUE(Has(one.out, "--concurrency"));
  EXPECT_FALSE(Has(one.out, "--npy"));
  EXPECT_TRUE(Has(RunTool({"sample", "--help"}).out, "--top_p"));
}

// Each sampling flag's entry ("--name  (default ...") appears once in the full help,
// though three subcommands take them; so do the global and bench-only flags.
TEST(CliTest, FullHelpDescribesEachFlagOnce) {
  const std::string help = RunTool({"help"}).out;
  for (const char* flag : {"--temperature", "--top_k", "--top_p", "--min_p", "--seed",
                           "--num_samples", "--preset", "--logprobs_mode", "--server",
                           "--concurrency"}) {
    const std::string entry = absl::StrCat("  ", flag, "  (default ");
    size_t count = 0;
    for (size_t at = help.find(entry); at != std::string::npos; at = help.find(entry, at + 1)) {
      ++count;
    }
    EXPECT_EQ(count, 1u) << flag;
  }
}

TEST(CliTest, UsageErrorsExitTwo) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{}, "missing subcommand"},
      {{"frobnicate"}, "unknown subcommand 'frobnicate'"},
      {{"sample", "--bogus=1"}, "unknown flag --bogus"},
      {{"sample", "--concurrency=2", "--logits=1"}, "--concurrency does not apply to 'sample'"},
      {{"sample", "--top_k=abc", "--logits=1"}, "--top_k: 'abc' is not a 32-bit integer"},
      {{"sample", "--temperature=abc", "--logits=1"},
       "error: --temperature: 'abc' is not a number\n"},
      {{"sample", "--temperature=1e40", "--logits=1"}, "--temperature: '1e40' overflows float32"},
      {{"sample", "--logits=1,-1e39"}, "--logits: '-1e39' overflows float32"},
      {{"bench", "--duration=soon"}, "--duration: 'soon' is not a duration such as 500ms"},
      {{"sample", "-t", "0.5", "--logits=1"},
       "unknown flag -t (flags have long names with two dashes: --name=value); did you mean "
       "one of --timeout, --tls_ca, --tls_cert, --tls_key, --tls_server_name, --temperature, "
       "...?"},
      {{"sample", "--temprature=0.5", "--logits=1"},
       "unknown flag --temprature; did you mean --temperature?"},
      {{"sample", "--logits=1", "--sed=3"}, "unknown flag --sed; did you mean --seed?"},
      {{"sample", "--logits"}, "--logits: missing value"},
      {{"sample"}, "exactly one of --npy FILE, --logits LIST or --random-vocab N"},
      {{"sample", "--logits=1", "--random-vocab=5"}, "exactly one of"},
      {{"sample", "--logits=1,x"}, "--logits: 'x' is not a number"},
      {{"sample", "--random-vocab=0"}, "--random-vocab: must be in [1, 16777216], got 0"},
      {{"dist", "--random-vocab=2000000000"}, "--random-vocab: must be in [1, 16777216]"},
      {{"bench", "--vocab=100000000", "--rows=4"}, "exceeds the 268435456-byte message limit"},
      {{"sample", "--logits=1", "--wire=int4"}, "--wire: unknown value 'int4'"},
      {{"sample", "--logits=1", "--preset=x"}, "--preset: unknown value 'x'"},
      {{"sample", "--logits=1", "--logit_bias=3"}, "--logit_bias: '3' is not id:value"},
      {{"sample", "--logits=1", "--context=a"}, "--context: 'a' is not"},
      {{"sample", "--npy=/nonexistent/x.npy"}, "/nonexistent/x.npy: cannot open file"},
      {{"dist", "--logits=1", "--top=0"}, "--top: must be >= 1, got 0"},
      {{"dist", "--logits=1", "--vocab=/nonexistent/vocab.txt"}, "--vocab: /nonexistent"},
      {{"bench", "--mode=async"}, "--mode: unknown value 'async'"},
      {{"bench", "--pipeline=fast"}, "--pipeline: unknown value 'fast'"},
      {{"bench", "--concurrency=0"}, "--concurrency: must be >= 1, got 0"},
      {{"info", "--server=localhost"}, "--server: 'localhost': expected host:port"},
      {{"info", "extra"}, "unexpected argument 'extra'"},
  };
  for (const Case& c : cases) {
    const Outcome o = RunTool(c.args);
    EXPECT_EQ(o.code, kExitUsage) << c.message << "\n" << o.err;
    EXPECT_TRUE(Has(o.err, c.message)) << "want '" << c.message << "' in: " << o.err;
  }
}

TEST(CliTest, BadNpyFileExitsTwoAndNamesIt) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/cli_test_bad.npy");
  {
    std::ofstream out(path, std::ios::binary);
    out << "\x93NUMPY\x01\x00"
        << "garbage";
  }
  const Outcome o = RunTool({"sample", "--npy", path});
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_TRUE(Has(o.err, path)) << o.err;
  EXPECT_TRUE(Has(o.err, "not a valid .npy file")) << o.err;
  std::remove(path.c_str());
}

TEST(CliTest, SampleAgainstFakeServer) {
  testing::FakeServer server;
  const Outcome o = RunTool({"sample", "--server", server.address(), "--logits=0.5,2.5,1",
                             "--seed=42", "--step=3", "--top_logprobs=1"});
  EXPECT_EQ(o.code, kExitOk) << o.err;
  EXPECT_TRUE(Has(o.out, "token 1")) << o.out;
  EXPECT_TRUE(Has(o.out, "replay with --seed 42 --step 3")) << o.out;
  EXPECT_TRUE(Has(o.out, "top: 1 (-0.5000)")) << o.out;

  const Outcome json = RunTool(
      {"sample", "--server=" + server.address(), "--logits=3,1", "--json", "--wire=float32"});
  EXPECT_EQ(json.code, kExitOk) << json.err;
  EXPECT_TRUE(Has(json.out, "\"token_id\":0")) << json.out;
  EXPECT_TRUE(Has(json.out, "\"seed\":\"777\"")) << json.out;
}

TEST(CliTest, ServerRejectionExitsOneWithTheField) {
  testing::FakeServer server;
  const Outcome o =
      RunTool({"sample", "--server", server.address(), "--logits=1,2", "--top-p=1.5"});
  EXPECT_EQ(o.code, kExitFailed);
  EXPECT_TRUE(Has(o.err, "INVALID_ARGUMENT: rows[0].params.top_p: must be in (0, 1]")) << o.err;
}

TEST(CliTest, DownServerExitsOne) {
  std::string address;
  {
    testing::FakeServer server;
    address = server.address();
  }
  for (const char* sub : {"info", "health"}) {
    const Outcome o = RunTool({sub, "--server", address});
    EXPECT_EQ(o.code, kExitFailed) << sub;
    EXPECT_TRUE(Has(o.err, "cannot reach server at " + address)) << o.err;
  }
}

TEST(CliTest, EnvironmentIsNotNeededWhenServerGiven) {
  testing::FakeServer server;
  const Outcome o = RunTool({"info", "--server", server.address()});
  EXPECT_EQ(o.code, kExitOk) << o.err;
  EXPECT_TRUE(Has(o.out, "0.0.0-fake"));
  EXPECT_TRUE(Has(o.out, "PRESET_STANDARD"));
  const Outcome json = RunTool({"info", "--server", server.address(), "--json"});
  EXPECT_TRUE(Has(json.out, "\"version\":\"0.0.0-fake\"")) << json.out;
}

TEST(CliTest, HealthExitCodeFollowsStatus) {
  testing::FakeServer server;
  Outcome o = RunTool({"health", "--server", server.address()});
  EXPECT_EQ(o.code, kExitOk);
  EXPECT_EQ(o.out, "SERVING\n");
  server.health()->SetServingStatus("tokensampler.v1.Sampler", false);
  o = RunTool({"health", "--server", server.address(), "--service=tokensampler.v1.Sampler"});
  EXPECT_EQ(o.code, kExitFailed);
  EXPECT_EQ(o.out, "NOT_SERVING\n");
  o = RunTool({"health", "--server", server.address(), "--service", "x.Y"});
  EXPECT_EQ(o.code, kExitFailed);
  EXPECT_EQ(o.out, "SERVICE_UNKNOWN\n");
}

TEST(CliTest, DistDrawsBarsWithVocab) {
  testing::FakeServer server;
  const std::string vocab = absl::StrCat(::testing::TempDir(), "/cli_test_vocab.txt");
  {
    std::ofstream out(vocab);
    out << "zero\none\ntwo\nthree\n";
  }
  const Outcome o =
      RunTool({"dist", "--server", server.address(), "--logits=0,0,9,0", "--vocab", vocab});
  EXPECT_EQ(o.code, kExitOk) << o.err;
  // The fake answers argmax 2 with 0.75 and id 3 with 0.25: a full bar and a quarter bar.
  EXPECT_TRUE(Has(o.out, "\"two\"")) << o.out;
  EXPECT_TRUE(Has(o.out, "\"three\"")) << o.out;
  EXPECT_TRUE(Has(o.out, " 0.7500 " + Bar(1.0, 40) + "\n")) << o.out;
  EXPECT_TRUE(Has(o.out, " 0.2500 " + Bar(1.0 / 3, 40) + "\n")) << o.out;
  std::remove(vocab.c_str());
}

TEST(CliTest, BenchJsonAgainstFakeServer) {
  testing::FakeServer server;
  const Outcome o =
      RunTool({"bench", "--server", server.address(), "--requests=20", "--concurrency=2",
               "--vocab=500", "--warmup=0s", "--json", "--pipeline=full", "--top_k=0"});
  EXPECT_EQ(o.code, kExitOk) << o.err;
  EXPECT_TRUE(Has(o.out, "\"requests\": 20")) << o.out;
  EXPECT_TRUE(Has(o.out, "\"vocab\": 500")) << o.out;
  EXPECT_EQ(server.service().last_vocab.load(), 500);
}

TEST(BarTest, Eighths) {
  EXPECT_EQ(Bar(0.0, 4), "");
  EXPECT_EQ(Bar(1.0, 4), "████");
  EXPECT_EQ(Bar(0.5, 4), "██");
  EXPECT_EQ(Bar(1.0 / 32, 4), "▏");  // one eighth of one cell
  EXPECT_EQ(Bar(0.5 + 3.0 / 32, 4), "██▍");
  EXPECT_EQ(Bar(2.0, 2), "██");  // clamped
}

TEST(QuoteTokenTest, Escapes) {
  EXPECT_EQ(QuoteToken("hello"), "\"hello\"");
  EXPECT_EQ(QuoteToken(" the"), "\" the\"");
  EXPECT_EQ(QuoteToken("a\nb"), "\"a\\nb\"");
  EXPECT_EQ(QuoteToken("\"q\""), "\"\\\"q\\\"\"");
  EXPECT_EQ(QuoteToken("é"), "\"é\"");  // valid UTF-8 is kept
}

}  // namespace
}  // namespace tokensampler::client
