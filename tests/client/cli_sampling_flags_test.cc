// The sampling-flag table: every sampling flag reaches its field of the request, and only
// when given.
#include "client/cli_sampling_flags.h"

#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "client/cli_parse.h"
#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

Invocation MustParse(std::vector<std::string> args) {
  args.insert(args.begin(), "tokensampler");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  auto parsed = ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  if (const auto* error = std::get_if<UsageError>(&parsed)) {
    ADD_FAILURE() << error->message;
    return {};
  }
  return std::get<Invocation>(parsed);
}

// A value each flag accepts that differs from "not given".
std::string ValueFor(const std::string& name) {
  static const auto* special = new std::map<std::string, std::string>{
      {"logit_bias", "3:1.5"},        {"preset", "hf"},
      {"logprobs_mode", "processed"}, {"dry_sequence_breakers", "4;5,6"},
      {"bad_words", "7,8"},           {"return_kept_set", "true"}};
  if (auto it = special->find(name); it != special->end()) return it->second;
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  return flag != nullptr && flag->IsOfType<float>() ? "0.5" : "2";
}

TEST(CliSamplingFlagsTest, TableNamesExistingFlagsOnce) {
  std::set<std::string> seen;
  for (const FlagRef& f : SamplingFlagRefs()) {
    EXPECT_EQ(f.cli, f.flag);
    EXPECT_TRUE(seen.insert(f.cli).second) << f.cli;
    EXPECT_NE(absl::FindCommandLineFlag(f.flag), nullptr) << f.flag;
  }
  EXPECT_GT(seen.count("temperature"), 0u);
  EXPECT_GT(seen.count("logprob_token_ids"), 0u);
}

TEST(CliSamplingFlagsTest, NothingGivenSetsNothing) {
  absl::FlagSaver saver;
  const Invocation inv = MustParse({"sample"});
  auto params = SamplingFromFlags(inv);
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->ByteSizeLong(), 0u);
  const GivenSamplingFlags given = ReadSamplingFlags(inv);
  EXPECT_FALSE(given.row.bitmask.has_value());
  EXPECT_FALSE(given.row.num_prompt_tokens.has_value());
}

// Each flag alone changes the request: its params, its row fields, or (--context,
// --step) the values every row carries.
TEST(CliSamplingFlagsTest, EveryFlagReachesTheRequest) {
  for (const FlagRef& f : SamplingFlagRefs()) {
    absl::FlagSaver saver;
    const std::string value = ValueFor(f.cli);
    const Invocation inv = MustParse({"sample", absl::StrCat("--", f.cli, "=", value)});
    if (f.cli == "context") {
      EXPECT_EQ(*ContextFromFlags(), std::vector<int32_t>{2});
      continue;
    }
    if (f.cli == "step") {
      EXPECT_EQ(StepFromFlags(), 2u);
      continue;
    }
    const GivenSamplingFlags given = ReadSamplingFlags(inv);
    if (f.cli == "bitmask") {
      EXPECT_EQ(given.row.bitmask, value);
      continue;
    }
    if (f.cli == "num_prompt_tokens") {
      EXPECT_EQ(given.row.num_prompt_tokens, 2);
      continue;
    }
    auto params = BuildSamplingParams(given.params);
    ASSERT_TRUE(params.ok()) << f.cli << ": " << params.status();
    EXPECT_GT(params->ByteSizeLong(), 0u) << "--" << f.cli << " set nothing";
  }
}

TEST(CliSamplingFlagsTest, GivenValuesOverrideTheBase) {
  absl::FlagSaver saver;
  const Invocation inv = MustParse({"bench", "--top_k=0", "--temperature=0.7", "--dry_base=2"});
  v1::SamplingParams base;
  base.set_top_k(50);
  base.set_top_p(0.95f);
  auto params = SamplingFromFlags(inv, base);
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->top_k(), 0);  // a given 0 overrides too
  EXPECT_EQ(params->top_p(), 0.95f);
  EXPECT_EQ(params->temperature(), 0.7f);
  EXPECT_EQ(params->dry().base(), 2.0f);
}

TEST(CliSamplingFlagsTest, ErrorsNameTheFlag) {
  absl::FlagSaver saver;
  const Invocation inv = MustParse({"sample", "--allowed=1,x"});
  EXPECT_EQ(SamplingFromFlags(inv).status().message().substr(0, 10), "--allowed:");
}

}  // namespace
}  // namespace tokensampler::client
