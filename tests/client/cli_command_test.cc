// The subcommand table and argv parsing: every flag a subcommand lists exists, lookups
// of subcommands and flags, and how a command line splits into flags and subcommand.
#include "client/cli_command.h"

#include <algorithm>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "absl/flags/reflection.h"
#include "client/cli_connection.h"
#include "client/cli_parse.h"
#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

TEST(SubcommandTableTest, EveryListedFlagExistsOnce) {
  std::set<std::string> names;
  for (const Subcommand& s : Subcommands()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_NE(s.run, nullptr) << s.name;
    std::set<std::string> cli;
    for (const FlagRef& f : s.flags) {
      EXPECT_TRUE(cli.insert(f.cli).second) << s.name << " lists --" << f.cli << " twice";
      EXPECT_NE(absl::FindCommandLineFlag(f.flag), nullptr) << s.name << ": " << f.flag;
    }
    for (const FlagRef& f : GlobalFlags()) {
      EXPECT_EQ(cli.count(f.cli), 0u) << s.name << " lists global --" << f.cli;
    }
  }
  for (const FlagRef& f : GlobalFlags()) {
    EXPECT_NE(absl::FindCommandLineFlag(f.flag), nullptr) << f.flag;
  }
  EXPECT_EQ(names, (std::set<std::string>{"sample", "dist", "verify", "bench", "health", "info"}));
}

TEST(SubcommandTableTest, FindsByNameAndSuggestsOnATypo) {
  auto sample = FindSubcommand("sample");
  ASSERT_TRUE(sample.ok());
  EXPECT_STREQ((*sample)->name, "sample");
  EXPECT_EQ(FindSubcommand("smaple").status().message(),
            "unknown subcommand 'smaple'; did you mean sample?");
  EXPECT_EQ(FindSubcommand("halp").status().message(),
            "unknown subcommand 'halp'; did you mean help?");
  EXPECT_EQ(FindSubcommand("ver").status().message(),
            "unknown subcommand 'ver'; did you mean verify?");  // a prefix
  EXPECT_EQ(FindSubcommand("frobnicate").status().message(),
            "unknown subcommand 'frobnicate' (want sample, dist, verify, bench, health, info or "
            "help)");
  EXPECT_EQ(FindSubcommand("frobnicate").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SubcommandTableTest, ResolvesACliNamePerSubcommand) {
  const Subcommand* dist = *FindSubcommand("dist");
  const Subcommand* bench = *FindSubcommand("bench");
  const Subcommand* sample = *FindSubcommand("sample");
  ASSERT_NE(ResolveFlag(dist, "vocab"), nullptr);
  EXPECT_EQ(ResolveFlag(dist, "vocab")->Name(), "vocab_file");
  EXPECT_EQ(ResolveFlag(bench, "vocab")->Name(), "bench_vocab");
  EXPECT_EQ(ResolveFlag(sample, "vocab"), nullptr);
  EXPECT_EQ(ResolveFlag(sample, "concurrency"), nullptr);
  ASSERT_NE(ResolveFlag(nullptr, "server"), nullptr);  // global
  EXPECT_EQ(ResolveFlag(nullptr, "temperature"), nullptr);
  EXPECT_TRUE(IsBoolFlag("json"));
  EXPECT_TRUE(IsBoolFlag("progress"));
  EXPECT_FALSE(IsBoolFlag("temperature"));
  EXPECT_FALSE(IsBoolFlag("nonexistent"));
  const std::vector<std::string> names = FlagNames(*dist);
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "server");
  EXPECT_NE(std::find(names.begin(), names.end(), "vocab"), names.end());
}

std::variant<Invocation, UsageError> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "tokensampler");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

std::string ErrorOf(const std::variant<Invocation, UsageError>& parsed) {
  const auto* error = std::get_if<UsageError>(&parsed);
  return error == nullptr ? "" : error->message;
}

TEST(ParseCommandLineTest, FlagsAnywhereAndSpelledEitherWay) {
  absl::FlagSaver saver;
  auto parsed = Parse({"--top-k", "5", "sample", "--json", "--logits=1,2", "--noreturn-kept-set"});
  ASSERT_EQ(ErrorOf(parsed), "");
  const Invocation& inv = std::get<Invocation>(parsed);
  EXPECT_STREQ(inv.sub->name, "sample");
  EXPECT_FALSE(inv.help);
  EXPECT_EQ(inv.given, (std::set<std::string>{"top_k", "json", "logits", "return_kept_set"}));
  EXPECT_EQ(absl::FindCommandLineFlag("top_k")->CurrentValue(), "5");
  EXPECT_EQ(absl::FindCommandLineFlag("return_kept_set")->CurrentValue(), "false");
}

TEST(ParseCommandLineTest, Help) {
  auto all = Parse({"help"});
  ASSERT_EQ(ErrorOf(all), "");
  EXPECT_TRUE(std::get<Invocation>(all).help);
  EXPECT_EQ(std::get<Invocation>(all).sub, nullptr);
  auto one = Parse({"help", "dist", "--bogus=1"});  // flags are not checked under help
  ASSERT_EQ(ErrorOf(one), "");
  EXPECT_STREQ(std::get<Invocation>(one).sub->name, "dist");
  auto flag = Parse({"bench", "-h"});
  ASSERT_EQ(ErrorOf(flag), "");
  EXPECT_TRUE(std::get<Invocation>(flag).help);
  EXPECT_EQ(ErrorOf(Parse({"help", "smaple"})),
            "unknown subcommand 'smaple'; did you mean sample?");
}

TEST(ParseCommandLineTest, UsageErrors) {
  absl::FlagSaver saver;
  EXPECT_EQ(ErrorOf(Parse({})),
            "missing subcommand (sample, dist, verify, bench, health, info or help)");
  EXPECT_EQ(ErrorOf(Parse({"smaple"})), "unknown subcommand 'smaple'; did you mean sample?");
  EXPECT_EQ(ErrorOf(Parse({"info", "extra"})), "unexpected argument 'extra'");
  EXPECT_EQ(ErrorOf(Parse({"info", "--", "--json"})), "unexpected argument '--json'");
  EXPECT_EQ(ErrorOf(Parse({"info", "--service=x"})),
            "--service does not apply to 'info' (see: tokensampler help info)");
  EXPECT_EQ(ErrorOf(Parse({"info", "--timeout"})), "--timeout: missing value");
  EXPECT_EQ(ErrorOf(Parse({"health", "--servise=x"})),
            "unknown flag --servise; did you mean --service?");
}

}  // namespace
}  // namespace tokensampler::client
