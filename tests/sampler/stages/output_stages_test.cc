// The stages of issue 14 on their own: bad words, min_tokens, no_repeat_ngram, vLLM's
// penalties, and the validation of their parameters. The vLLM cases port the
// expectations of vLLM's tests/v1/sample/test_sampler.py (all logits 1e-2, V = 1024,
// 20 output tokens).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/params.h"
#include "sampler/sampler.h"
#include "sampler/stages/bad_words.h"
#include "sampler/stages/bitmask.h"
#include "sampler/stages/min_tokens.h"
#include "sampler/stages/no_repeat_ngram.h"
#include "sampler/stages/vllm.h"

namespace tokensampler::sampler::stages {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
using Span = absl::Span<const int32_t>;

std::vector<int32_t> Banned(const std::vector<float>& z) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < z.size(); ++i) {
    if (z[i] == -kInf) out.push_back(static_cast<int32_t>(i));
  }
  return out;
}

std::vector<int32_t> RandomTokens(size_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> id(0, vocab - 1);
  std::vector<int32_t> out(n);
  for (int32_t& t : out) t = id(gen);
  return out;
}

TEST(BadWords, BansTheLastTokenWhenThePrefixEndsTheOutput) {
  const std::vector<int32_t> output = {5, 6, 7};
  const std::vector<int32_t> single = {3}, ends = {6, 7, 9}, inner = {5, 6, 8},
                             too_long = {1, 5, 6, 7, 2}, whole = {5, 6, 7, 4};
  const std::vector<Span> words = {single, ends, inner, too_long, whole};
  std::vector<float> z(10, 0.0f);
  BanBadWords(words, output, z.data());
  EXPECT_EQ(Banned(z), (std::vector<int32_t>{3, 4, 9}));
}

TEST(BadWords, EmptyOutputBansOnlySingleTokens) {
  const std::vector<int32_t> single = {2}, pair = {1, 3};
  const std::vector<Span> words = {single, pair};
  std::vector<float> z(4, 1.0f);
  BanBadWords(words, {}, z.data());
  EXPECT_EQ(Banned(z), (std::vector<int32_t>{2}));
}

// vLLM test_sampler_bad_words: lengths (1,), (1, 3), (2, 2); a planted prefix bans its
// last token, an output whose last token differs from the prefix's bans nothing more.
TEST(BadWords, VllmLengths) {
  constexpr int32_t kVocab = 1024;
  for (const std::vector<size_t>& lengths :
       {std::vector<size_t>{1}, std::vector<size_t>{1, 3}, std::vector<size_t>{2, 2}}) {
    std::vector<std::vector<int32_t>> words;
    for (size_t i = 0; i < lengths.size(); ++i) {
      words.push_back(RandomTokens(lengths[i], kVocab, 100 + static_cast<uint32_t>(i)));
    }
    std::vector<int32_t> output = RandomTokens(20, kVocab, 7);
    // As vLLM's test: single tokens are always banned; the first longer word gets its
    // prefix planted at the end of the output (at most one plant).
    std::vector<int32_t> expected;
    for (const auto& w : words) {
      if (w.size() == 1) {
        expected.push_back(w[0]);
      } else {
        std::copy(w.begin(), w.end() - 1, output.end() - static_cast<long>(w.size() - 1));
        expected.push_back(w.back());
        break;
      }
    }
    std::vector<Span> spans(words.begin(), words.end());
    std::vector<float> z(kVocab, 1e-2f);
    BanBadWords(spans, output, z.data());
    std::sort(expected.begin(), expected.end());
    expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
    EXPECT_EQ(Banned(z), expected);
  }
}

// vLLM test_sampler_min_tokens_penalty: stop ids are -inf exactly while the output is
// shorter than min_tokens.
TEST(MinTokens, MasksStopIdsWhileTheOutputIsShort) {
  const std::vector<int32_t> stops = {2, 7, 1000};
  for (int32_t min_tokens : {0, 5, 20, 21, 39}) {
    std::vector<float> z(1024, 1e-2f);
    MaskStopTokens(min_tokens, 20, stops, z.data());
    if (min_tokens > 20) {
      EXPECT_EQ(Banned(z), stops) << min_tokens;
    } else {
      EXPECT_TRUE(Banned(z).empty()) << min_tokens;
    }
  }
}

// transformers' NoRepeatNGramLogitsProcessor: every n-gram (first n - 1 tokens) -> its
// last token, banned when the first n - 1 equal the text's last n - 1.
std::vector<int32_t> NaiveNgramBans(const std::vector<int32_t>& t, size_t n, size_t v) {
  std::vector<float> z(v, 0.0f);
  if (n == 0 || t.size() + 1 < n) return {};
  for (size_t i = 0; i + n <= t.size(); ++i) {
    if (std::equal(t.end() - static_cast<long>(n - 1), t.end(), t.begin() + static_cast<long>(i))) {
      z[t[i + n - 1]] = -kInf;
    }
  }
  return Banned(z);
}

TEST(NoRepeatNgram, HandCases) {
  std::vector<int32_t> work;
  // "a b c a b" with n = 3: the bigram "a b" was followed by c.
  std::vector<float> z(5, 0.0f);
  BanRepeatedNgrams(std::vector<int32_t>{0, 1, 2, 0, 1}, 3, &work, z.data());
  EXPECT_EQ(Banned(z), (std::vector<int32_t>{2}));
  // n = 1 bans every token seen; n = 2 after "a a a" bans a.
  z.assign(5, 0.0f);
  BanRepeatedNgrams(std::vector<int32_t>{4, 1, 4}, 1, &work, z.data());
  EXPECT_EQ(Banned(z), (std::vector<int32_t>{1, 4}));
  z.assign(5, 0.0f);
  BanRepeatedNgrams(std::vector<int32_t>{3, 3, 3}, 2, &work, z.data());
  EXPECT_EQ(Banned(z), (std::vector<int32_t>{3}));
  // Shorter than n: nothing.
  z.assign(5, 0.0f);
  BanRepeatedNgrams(std::vector<int32_t>{0, 1}, 3, &work, z.data());
  EXPECT_TRUE(Banned(z).empty());
}

TEST(NoRepeatNgram, MatchesTheNaiveRuleOnRandomTexts) {
  std::vector<int32_t> work;
  for (uint32_t seed = 0; seed < 200; ++seed) {
    const int32_t vocab = 2 + static_cast<int32_t>(seed % 6);  // small: many repeats
    const std::vector<int32_t> text = RandomTokens(seed % 60, vocab, seed);
    for (int32_t n = 1; n <= 5; ++n) {
      std::vector<float> z(static_cast<size_t>(vocab), 0.0f);
      BanRepeatedNgrams(text, n, &work, z.data());
      EXPECT_EQ(Banned(z), NaiveNgramBans(text, static_cast<size_t>(n), z.size()))
          << "seed " << seed << " n " << n;
    }
  }
}

TEST(NoRepeatNgram, LongPeriodicTextStaysFast) {
  // 100k tokens of one repeated token: every position matches; linear time keeps this
  // instant where a per-position comparison of n tokens would not be.
  std::vector<int32_t> text(100000, 7), work;
  std::vector<float> z(8, 0.0f);
  BanRepeatedNgrams(text, 5000, &work, z.data());
  EXPECT_EQ(Banned(z), (std::vector<int32_t>{7}));
}

std::vector<float> Penalised(const std::vector<int32_t>& prompt,
                             const std::vector<int32_t>& output, float repetition,
                             float presence, float frequency) {
  std::vector<int32_t> context = prompt;
  context.insert(context.end(), output.begin(), output.end());
  std::vector<float> z(1024, 1e-2f);
  std::vector<std::pair<int32_t, int32_t>> work;
  EXPECT_TRUE(ApplyVllmPenalties(context, prompt.size(), repetition, presence, frequency,
                                 &work, z.data())
                  .ok());
  return z;
}

bool Contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

int32_t ArgMax(const std::vector<float>& z) {
  return static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin());
}
int32_t ArgMin(const std::vector<float>& z) {
  return static_cast<int32_t>(std::min_element(z.begin(), z.end()) - z.begin());
}

// vLLM test_sampler_presence_penalty: presence counts the output only.
TEST(VllmPenalties, PresenceLooksAtTheOutputOnly) {
  const std::vector<int32_t> prompt = RandomTokens(30, 1024, 1);
  const std::vector<int32_t> output = RandomTokens(20, 1024, 2);
  for (float presence : {-2.0f, 2.0f}) {
    const std::vector<float> z = Penalised(prompt, output, 1.0f, presence, 0.0f);
    const int32_t low = ArgMin(z), high = ArgMax(z);
    if (presence > 0) {
      EXPECT_TRUE(Contains(output, low));
      EXPECT_FALSE(Contains(output, high));
    } else {
      EXPECT_TRUE(Contains(output, high));
      EXPECT_FALSE(Contains(output, low));
    }
    for (int32_t id : prompt) {
      if (!Contains(output, id)) {
        EXPECT_EQ(z[id], 1e-2f) << "prompt-only token " << id;
      }
    }
  }
}

// vLLM test_sampler_frequency_penalty: token i of a distinct set appears i + 1 times; the
// most frequent is the most penalised (or the least, for a negative penalty).
TEST(VllmPenalties, FrequencyCountsOccurrencesInTheOutput) {
  const std::vector<int32_t> distinct = {17, 400, 3, 999, 250};
  std::vector<int32_t> output;
  for (size_t i = 0; i < distinct.size(); ++i) output.insert(output.end(), i + 1, distinct[i]);
  for (float frequency : {-2.0f, 2.0f}) {
    const std::vector<float> z = Penalised({}, output, 1.0f, 0.0f, frequency);
    if (frequency > 0) {
      EXPECT_EQ(ArgMin(z), distinct.back());
      EXPECT_FALSE(Contains(distinct, ArgMax(z)));
    } else {
      EXPECT_EQ(ArgMax(z), distinct.back());
      EXPECT_FALSE(Contains(distinct, ArgMin(z)));
    }
    // In float32, frequency * count first, then presence (0 here).
    EXPECT_EQ(z[distinct.back()], 1e-2f - frequency * 5.0f);
  }
}

// vLLM test_sampler_repetition_penalty: repetition covers prompt and output.
TEST(VllmPenalties, RepetitionCoversPromptAndOutput) {
  const std::vector<int32_t> prompt = {10, 11, 12};
  const std::vector<int32_t> output = {20, 21};
  for (float repetition : {0.1f, 1.9f}) {
    const std::vector<float> z = Penalised(prompt, output, repetition, 0.0f, 0.0f);
    for (int32_t id : {10, 11, 12, 20, 21}) EXPECT_EQ(z[id], 1e-2f / repetition) << id;
    const int32_t low = ArgMin(z), high = ArgMax(z);
    const bool seen_low = Contains(prompt, low) || Contains(output, low);
    const bool seen_high = Contains(prompt, high) || Contains(output, high);
    EXPECT_EQ(seen_low, repetition > 1.0f);
    EXPECT_EQ(seen_high, repetition < 1.0f);
  }
}

TEST(VllmPenalties, NegativeLogitsAreMultipliedAndMaskedStayMasked) {
  std::vector<float> z = {-2.0f, 3.0f, -kInf};
  std::vector<std::pair<int32_t, int32_t>> work;
  const std::vector<int32_t> context = {0, 1, 2};
  ASSERT_TRUE(ApplyVllmPenalties(context, 3, 2.0f, 0.0f, 0.0f, &work, z.data()).ok());
  EXPECT_EQ(z, (std::vector<float>{-4.0f, 1.5f, -kInf}));
}

TEST(VllmBias, ClampedToPlusMinus100) {
  EXPECT_EQ(VllmBias(250.0f), 100.0f);
  EXPECT_EQ(VllmBias(-kInf), -100.0f);
  EXPECT_EQ(VllmBias(1.25f), 1.25f);
}

TEST(Validation, FieldPathsOfTheNewParameters) {
  const std::vector<int32_t> context = {1, 2, 3};
  const std::vector<int32_t> good = {1, 2}, empty = {}, bad_id = {1, 200};
  const std::vector<uint8_t> mask(12, 0xff);  // 3 words: V in [65, 96]
  SamplingParams base;
  base.context_token_ids = context;
  auto check = [&](const SamplingParams& p, size_t vocab, const std::string& want) {
    const absl::Status s = ValidateParams(p, vocab);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << want;
    EXPECT_EQ(s.message(), want);
  };
  SamplingParams p = base;
  p.num_prompt_tokens = 4;
  check(p, 100, "num_prompt_tokens: must be in [0, 3] (the number of context_token_ids), got 4");
  p = base;
  p.allowed_token_bitmask = {mask.data(), mask.size()};
  check(p, 100, "allowed_token_bitmask: must be 4 * ceil(V / 32) = 16 bytes for V = 100, got 12");
  EXPECT_TRUE(ValidateParams(p, 96).ok());
  EXPECT_TRUE(ValidateParams(p, 65).ok());
  check(p, 64, "allowed_token_bitmask: must be 4 * ceil(V / 32) = 8 bytes for V = 64, got 12");
  p = base;
  p.preset = Preset::kVllm;
  p.typical_p = 0.5f;
  check(p, 100, "params.typical_p: PRESET_VLLM has no typical sampling; leave it unset, got 0.5");
  p = base;
  p.min_tokens = -1;
  check(p, 100, "params.min_tokens: must be >= 0, got -1");
  p = base;
  p.stop_token_ids = bad_id;
  check(p, 100, "params.stop_token_ids[1]: token id 200 out of range [0, 100)");
  const std::vector<Span> words_empty = {good, empty};
  p = base;
  p.bad_words = words_empty;
  check(p, 100, "params.bad_words[1].token_ids: must hold 1 to 128 token ids, got 0");
  const std::vector<Span> words_bad = {good, bad_id};
  p.bad_words = words_bad;
  check(p, 100, "params.bad_words[1].token_ids[1]: token id 200 out of range [0, 100)");
  p = base;
  p.no_repeat_ngram_size = -2;
  check(p, 100, "params.no_repeat_ngram_size: must be >= 0, got -2");
  const std::vector<int32_t> many(129, 0);
  p = base;
  p.logprob_token_ids = many;
  check(p, 100, "params.logprob_token_ids: at most 128 token ids, got 129");
  p.logprob_token_ids = bad_id;
  check(p, 100, "params.logprob_token_ids[1]: token id 200 out of range [0, 100)");
}

}  // namespace
}  // namespace tokensampler::sampler::stages
