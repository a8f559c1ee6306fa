// The library against the slow double-precision reference, on random rows of awkward
// sizes, for every stage and every preset.
#include "tests/sampler/reference.h"

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sampler/draw.h"
#include "sampler/half.h"
#include "sampler/sampler.h"
#include "sampler/stages/xtc.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler {

// Readable parameter names in test output.
void PrintTo(Preset preset, std::ostream* os) {
  *os << (preset == Preset::kStandard ? "STANDARD"
          : preset == Preset::kHf     ? "HF"
          : preset == Preset::kVllm   ? "VLLM"
                                      : "LLAMA_CPP");
}

namespace {

struct Config {
  const char* name;
  SamplingParams params;
};

std::vector<Config> Configs(Preset preset) {
  std::vector<Config> configs;
  auto add = [&](const char* name, auto set) {
    SamplingParams p;
    p.preset = preset;
    set(&p);
    if (preset == Preset::kVllm && p.typical_p < 1.0f) return;  // not in vLLM
    configs.push_back({name, p});
  };
  add("temperature", [](SamplingParams* p) { p->temperature = 0.7f; });
  add("greedy", [](SamplingParams* p) { p->temperature = 0.0f; });
  add("top_k_1", [](SamplingParams* p) { p->top_k = 1; });
  add("top_k_5", [](SamplingParams* p) { p->top_k = 5; });
  add("top_k_50_hot", [](SamplingParams* p) {
    p->top_k = 50;
    p->temperature = 1.7f;
  });
  add("top_p_0.9", [](SamplingParams* p) { p->top_p = 0.9f; });
  add("top_p_0.3", [](SamplingParams* p) {
    p->top_p = 0.3f;
    p->temperature = 2.0f;
  });
  add("min_p_0.05", [](SamplingParams* p) { p->min_p = 0.05f; });
  add("min_p_0.5_cold", [](SamplingParams* p) {
    p->min_p = 0.5f;
    p->temperature = 0.5f;
  });
  add("typical_0.9", [](SamplingParams* p) { p->typical_p = 0.9f; });
  add("typical_0.4", [](SamplingParams* p) { p->typical_p = 0.4f; });
  add("chain", [](SamplingParams* p) {
    p->temperature = 0.8f;
    p->top_k = 50;
    p->top_p = 0.9f;
    p->min_p = 0.02f;
  });
  add("chain_typical", [](SamplingParams* p) {
    p->temperature = 1.2f;
    p->top_k = 200;
    p->top_p = 0.95f;
    p->typical_p = 0.8f;
  });
  add("min_keep", [](SamplingParams* p) {
    p->top_p = 0.01f;
    p->min_p = 0.9f;
    p->min_tokens_to_keep = 4;
  });
  add("greedy_after_truncation", [](SamplingParams* p) {
    p->temperature = 0.0f;
    p->typical_p = 0.3f;
    p->top_k = 10;
  });
  return configs;
}

// Compares a library distribution with the reference: the same tokens kept (ignoring
// tokens the reference gives less than 1e-30, which float underflows to 0), and every
// probability within float rounding.
void ExpectMatches(const std::vector<float>& got, const std::vector<double>& want,
                   const std::string& label) {
  ASSERT_EQ(got.size(), want.size());
  int failures = 0;
  for (size_t i = 0; i < got.size() && failures < 5; ++i) {
    const double w = want[i];
    bool ok;
    if (w == 0.0) {
      ok = got[i] == 0.0f;
    } else if (w < 1e-30) {
      ok = got[i] < 1e-25f;
    } else {
      ok = got[i] > 0.0f && std::fabs(got[i] - w) <= 1e-7 + 2e-5 * w;
    }
    if (!ok) {
      ++failures;
      ADD_FAILURE() << label << " token " << i << ": got " << got[i] << " want " << w;
    }
  }
}

class ReferenceTest : public ::testing::TestWithParam<Preset> {};

TEST_P(ReferenceTest, MatchesOnRandomRows) {
  const Preset preset = GetParam();
  const size_t sizes[] = {1, 2, 7, 8, 9, 31, 33, 1000, 32000, 128256};
  Sampler sampler;
  for (size_t n : sizes) {
    const int kinds = n > 1000 ? 2 : 3;
    for (int kind = 0; kind < kinds; ++kind) {
      const uint32_t seed = static_cast<uint32_t>(n * 31 + kind);
      std::vector<float> row = kind == 0   ? testing::NormalRow(n, seed)
                               : kind == 1 ? testing::TiedRow(n, seed)
                                           : testing::NormalRow(n, seed, 30.0f);
      if (n > 4) row[n / 3] = -std::numeric_limits<float>::infinity();
      for (const Config& config : Configs(preset)) {
        if (n > 1000 && (config.params.typical_p < 1.0f) && kind == 1) continue;
        const std::vector<float> got = testing::DenseDistribution(sampler, row, config.params);
        const std::vector<double> want = testing::ReferenceDistribution(row, config.params);
        ExpectMatches(got, want, absl::StrCat(config.name, " n=", n, " kind=", kind));
      }
    }
  }
}

TEST_P(ReferenceTest, MasksBiasAndPenaltiesMatch) {
  const Preset preset = GetParam();
  Sampler sampler;
  for (size_t n : {9u, 1000u, 32000u}) {
    const std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(n) + 5);
    std::vector<int32_t> context;
    for (size_t i = 0; i < 300; ++i) context.push_back(static_cast<int32_t>((i * i * 7) % n));
    const std::vector<int32_t> banned = {0, static_cast<int32_t>(n - 1)};
    std::vector<int32_t> allowed;
    for (size_t i = 0; i < n; i += 3) allowed.push_back(static_cast<int32_t>(i));
    const std::vector<LogitBias> bias = {{3, 2.5f}, {static_cast<int32_t>(n / 2), -1.0f},
                                         {6, -std::numeric_limits<float>::infinity()}};
    for (int variant = 0; variant < 3; ++variant) {
      SamplingParams p;
      p.preset = preset;
      p.context_token_ids = context;
      p.repetition_penalty = 1.3f;
      p.presence_penalty = 0.4f;
      p.frequency_penalty = 0.2f;
      p.banned_token_ids = banned;
      p.logit_bias = bias;
      if (variant == 1) p.allowed_token_ids = allowed;
      if (variant == 2) {
        p.top_k = 40;
        p.top_p = 0.8f;
        p.temperature = 0.9f;
      }
      const std::vector<float> got = testing::DenseDistribution(sampler, row, p);
      const std::vector<double> want = testing::ReferenceDistribution(row, p);
      ExpectMatches(got, want, absl::StrCat("n=", n, " variant=", variant));
    }
  }
}

// The stages that look at the output and the token bitmask, with a prompt/output split,
// under every preset (VLLM's presence and frequency then count the output only).
TEST_P(ReferenceTest, OutputStagesAndBitmaskMatch) {
  const Preset preset = GetParam();
  Sampler sampler;
  for (size_t n : {1u, 33u, 1000u, 32000u}) {
    const std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(n) + 11);
    std::mt19937 gen(static_cast<uint32_t>(n));
    std::vector<int32_t> context;
    for (size_t i = 0; i < 60; ++i) {
      context.push_back(static_cast<int32_t>(gen() % std::min<size_t>(n, 7)));  // repeats
    }
    std::vector<uint8_t> mask(4 * ((n + 31) / 32));
    for (uint8_t& byte : mask) byte = static_cast<uint8_t>(gen() | gen());  // ~3/4 allowed
    mask[0] |= 1;  // token 0 always allowed: never all masked
    const std::vector<int32_t> w1 = {context[58], context[59]}, w2 = {3 % static_cast<int32_t>(n)},
                               w3 = {context[59], 2 % static_cast<int32_t>(n)};
    const std::vector<absl::Span<const int32_t>> bad = {w1, w2, w3};
    const std::vector<int32_t> stops = {static_cast<int32_t>(n - 1), 1 % static_cast<int32_t>(n)};
    for (int variant = 0; variant < 4; ++variant) {
      SamplingParams p;
      p.preset = preset;
      p.context_token_ids = context;
      p.num_prompt_tokens = variant == 0 ? 0 : 20;
      p.allowed_token_bitmask = {mask.data(), mask.size()};
      if (n > 1) {
        p.bad_words = bad;
        p.no_repeat_ngram_size = variant < 2 ? 2 : 3;
        p.min_tokens = variant == 3 ? 100 : 10;
        p.stop_token_ids = stops;
      }
      p.repetition_penalty = 1.2f;
      p.presence_penalty = 0.3f;
      p.frequency_penalty = 0.1f;
      if (variant >= 2) {
        p.temperature = 0.8f;
        p.top_k = 20;
        p.top_p = 0.9f;
        p.min_p = 0.01f;
      }
      const std::vector<double> want = testing::ReferenceDistribution(row, p);
      double mass = 0.0;
      for (double w : want) mass += w;
      if (!(mass > 0.0)) continue;  // the reference found every token banned
      const std::vector<float> got = testing::DenseDistribution(sampler, row, p);
      ExpectMatches(got, want, absl::StrCat("n=", n, " variant=", variant));
    }
  }
}

TEST_P(ReferenceTest, DrawsMatchTheReferencePickOnTheSameDistribution) {
  // The library's draw equals the reference inverse CDF over the distribution the
  // library reports (that is what a client replays).
  const Preset preset = GetParam();
  Sampler sampler;
  for (size_t n : {2u, 33u, 1000u}) {
    const std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(n) + 9, 1.0f);
    SamplingParams p;
    p.preset = preset;
    p.top_p = 0.9f;
    p.seed = n;
    p.num_samples = 50;
    const std::vector<float> dist = testing::DenseDistribution(sampler, row, p);
    const std::vector<double> dist_double(dist.begin(), dist.end());
    SampleResult r;
    ASSERT_TRUE(sampler.Sample(LogitsView::Float32(row), p, 3, &r).ok());
    for (uint32_t i = 0; i < 50; ++i) {
      EXPECT_EQ(r.samples[i].token_id,
                testing::ReferencePick(dist_double, DrawUniform(p.seed, 3, i)));
    }
  }
}

TEST_P(ReferenceTest, StructuredRowsMatch) {
  // Ramps, constant and organ-pipe rows: the patterns that defeat naive pivots and put
  // every cut inside a tie group.
  const Preset preset = GetParam();
  Sampler sampler;
  const size_t n = 32000;
  std::vector<std::vector<float>> rows(4, std::vector<float>(n));
  for (size_t i = 0; i < n; ++i) {
    rows[0][i] = static_cast<float>(i) / 2000.0f;
    rows[1][i] = -static_cast<float>(i) / 2000.0f;
    rows[2][i] = 1.0f;
    rows[3][i] = static_cast<float>(i < n / 2 ? i : n - i) / 1000.0f;
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    for (float top_p : {0.5f, 0.95f}) {
      for (int top_k : {0, 100}) {
        SamplingParams p;
        p.preset = preset;
        p.top_p = top_p;
        p.top_k = top_k;
        const std::vector<float> got = testing::DenseDistribution(sampler, rows[r], p);
        const std::vector<double> want = testing::ReferenceDistribution(rows[r], p);
        ExpectMatches(got, want, absl::StrCat("row ", r, " top_p ", top_p, " top_k ", top_k));
      }
    }
  }
}

TEST_P(ReferenceTest, LargeTopKMatches) {
  // Large k starts the candidate scan from a bar guessed from a strided sample of the
  // row; these rows include ones where the guess is too high (the sampled positions hold
  // the best logits), ties at every value, and a row that is mostly -inf.
  const Preset preset = GetParam();
  Sampler sampler;
  const size_t n = 128256;
  const size_t stride = n / 1024;
  std::vector<std::vector<float>> rows = {testing::NormalRow(n, 77, 3.0f),
                                          testing::TiedRow(n, 78), testing::NormalRow(n, 79, 0.5f)};
  std::vector<float> fooled = testing::NormalRow(n, 80);
  for (size_t j = 0; j < 1024; ++j) fooled[j * stride + stride / 2] += 20.0f;
  rows.push_back(fooled);
  std::vector<float> sparse(n, -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < n; i += 29) sparse[i] = static_cast<float>(i % 1009) / 100.0f;
  rows.push_back(sparse);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int top_k : {300, 1500, 4000, 20000}) {
      for (float top_p : {1.0f, 0.9f}) {
        SamplingParams p;
        p.preset = preset;
        p.temperature = 0.8f;
        p.top_k = top_k;
        p.top_p = top_p;
        const std::vector<float> got = testing::DenseDistribution(sampler, rows[r], p);
        const std::vector<double> want = testing::ReferenceDistribution(rows[r], p);
        ExpectMatches(got, want, absl::StrCat("row ", r, " top_k ", top_k, " top_p ", top_p));
      }
    }
  }
}

TEST_P(ReferenceTest, TopPWithANucleusOfMostOfTheRowMatches) {
  // Near-uniform rows: for STANDARD the nucleus is listed from the whole row (tens of
  // thousands of tokens); also a row with masked and hopeless tokens (zero weights), a
  // tied one, and min_tokens_to_keep beyond the nucleus.
  const Preset preset = GetParam();
  Sampler sampler;
  std::vector<std::vector<float>> rows;
  for (size_t n : {size_t{4096}, size_t{32000}, size_t{128256}}) {
    rows.push_back(testing::NormalRow(n, static_cast<uint32_t>(n) + 5, 0.5f));
  }
  std::vector<float> holes = testing::NormalRow(32000, 91, 1.0f);
  for (size_t i = 0; i < holes.size(); i += 7) holes[i] = -std::numeric_limits<float>::infinity();
  for (size_t i = 3; i < holes.size(); i += 11) holes[i] = -500.0f;
  rows.push_back(holes);
  rows.push_back(testing::TiedRow(32000, 92));
  for (size_t r = 0; r < rows.size(); ++r) {
    for (float top_p : {0.5f, 0.9f, 0.95f, 0.999f}) {
      for (int min_keep : {1, 30000}) {
        SamplingParams p;
        p.preset = preset;
        p.temperature = r == 0 ? 2.0f : 0.8f;
        p.top_p = top_p;
        p.min_tokens_to_keep = min_keep;
        const std::vector<float> got = testing::DenseDistribution(sampler, rows[r], p);
        const std::vector<double> want = testing::ReferenceDistribution(rows[r], p);
        ExpectMatches(got, want,
                      absl::StrCat("row ", r, " top_p ", top_p, " min_keep ", min_keep));
      }
    }
  }
}

TEST_P(ReferenceTest, TopPOrdersSignedZerosAndTiesByIdOnLargeRows) {
  // Large candidate sets are sorted through 64-bit keys: -0 and +0 must tie (and go by
  // id) as in the comparison order, whatever the preset's cut rule.
  const Preset preset = GetParam();
  Sampler sampler;
  for (size_t n : {size_t{600}, size_t{5000}}) {
    std::vector<float> row(n);
    for (size_t i = 0; i < n; ++i) {
      row[i] = i % 3 == 0 ? -0.0f : i % 3 == 1 ? 0.0f : (i % 5 == 0 ? 1.0f : -1.0f);
    }
    for (float top_p : {0.2f, 0.5f, 0.7f, 0.9f}) {
      SamplingParams p;
      p.preset = preset;
      p.temperature = 1.0f;
      p.top_p = top_p;
      const std::vector<float> got = testing::DenseDistribution(sampler, row, p);
      const std::vector<double> want = testing::ReferenceDistribution(row, p);
      ExpectMatches(got, want, absl::StrCat("n ", n, " top_p ", top_p));
    }
  }
}

TEST_P(ReferenceTest, RandomParameterCombinationsMatch) {
  // Every stage on at once, with random values, on small and medium rows.
  const Preset preset = GetParam();
  std::mt19937 gen(2026 + static_cast<int>(preset));
  auto uniform = [&](float lo, float hi) {
    return std::uniform_real_distribution<float>(lo, hi)(gen);
  };
  Sampler sampler;
  for (int trial = 0; trial < 300; ++trial) {
    const size_t n = 1 + gen() % (trial < 250 ? 64 : 5000);
    const std::vector<float> row = trial % 3 == 0 ? testing::TiedRow(n, gen())
                                                   : testing::NormalRow(n, gen(), 2.5f);
    std::vector<int32_t> context;
    for (size_t i = 0, c = gen() % 20; i < c; ++i) context.push_back(gen() % n);
    SamplingParams p;
    p.preset = preset;
    p.temperature = gen() % 8 == 0 ? 0.0f : uniform(0.2f, 2.5f);
    p.top_k = gen() % 2 ? static_cast<int32_t>(gen() % (n + 2)) : 0;
    p.top_p = gen() % 2 ? uniform(0.05f, 1.0f) : 1.0f;
    p.min_p = gen() % 2 ? uniform(0.0f, 0.5f) : 0.0f;
    p.typical_p = gen() % 3 == 0 ? uniform(0.1f, 1.0f) : 1.0f;
    if (preset == Preset::kVllm) p.typical_p = 1.0f;  // vLLM has no typical sampling
    p.min_tokens_to_keep = 1 + static_cast<int32_t>(gen() % 4);
    p.context_token_ids = context;
    p.repetition_penalty = gen() % 2 ? uniform(0.5f, 2.0f) : 1.0f;
    p.presence_penalty = gen() % 2 ? uniform(-1.0f, 1.0f) : 0.0f;
    p.frequency_penalty = gen() % 2 ? uniform(-0.5f, 0.5f) : 0.0f;
    const std::vector<float> got = testing::DenseDistribution(sampler, row, p);
    const std::vector<double> want = testing::ReferenceDistribution(row, p);
    ExpectMatches(got, want, absl::StrCat("trial ", trial, " n=", n));
    if (HasFailure()) break;
  }
}

// llama.cpp's other samplers (DRY, top-n-sigma, XTC, dynamic temperature, penalty window,
// mirostat) with random values, histories with repeats and breakers, every dtype. HF
// rejects them, so STANDARD and LLAMA_CPP only.
class ChainReferenceTest : public ::testing::TestWithParam<Preset> {};

// A row of `n` logits of `dtype`: random 16-bit patterns (or floats) within +-12, and the
// same values as float for the reference.
struct TypedRow {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
  LogitsView View(Dtype dtype) const { return {bytes.data(), values.size(), dtype}; }
};

TypedRow RandomTypedRow(size_t n, Dtype dtype, std::mt19937& gen) {
  TypedRow row;
  while (row.values.size() < n) {
    const uint16_t bits = static_cast<uint16_t>(gen());
    float v;
    if (dtype == Dtype::kFloat32) {
      v = std::normal_distribution<float>(0.0f, 2.5f)(gen);
    } else {
      v = dtype == Dtype::kBFloat16 ? BFloat16ToFloat(bits)
                                    : Float16ToFloat(bits);
      if (!(std::fabs(v) <= 12.0f)) continue;
    }
    row.values.push_back(v);
    if (dtype == Dtype::kFloat32) {
      const auto* b = reinterpret_cast<const uint8_t*>(&v);
      row.bytes.insert(row.bytes.end(), b, b + 4);
    } else {
      row.bytes.push_back(static_cast<uint8_t>(bits));
      row.bytes.push_back(static_cast<uint8_t>(bits >> 8));
    }
  }
  return row;
}

TEST_P(ChainReferenceTest, MatchesOnRandomRowsHistoriesAndDtypes) {
  const Preset preset = GetParam();
  std::mt19937 gen(1313 + static_cast<int>(preset));
  auto uniform = [&](float lo, float hi) {
    return std::uniform_real_distribution<float>(lo, hi)(gen);
  };
  Sampler sampler;
  const Dtype dtypes[] = {Dtype::kFloat32, Dtype::kBFloat16, Dtype::kFloat16};
  for (int trial = 0; trial < 600; ++trial) {
    const size_t n = 1 + gen() % (trial < 500 ? 48 : 3000);
    const Dtype dtype = dtypes[trial % 3];
    const TypedRow row = RandomTypedRow(n, dtype, gen);
    // A history with repeats: copies of earlier stretches, from a small alphabet.
    const int32_t alphabet = static_cast<int32_t>(std::min<size_t>(n, 1 + gen() % 6));
    std::vector<int32_t> context;
    for (size_t i = 0, c = gen() % 60; i < c; ++i) {
      if (context.size() > 4 && gen() % 3 == 0) {
        const size_t from = gen() % (context.size() - 2);
        for (size_t j = 0, len = 1 + gen() % 5; j < len && from + j < context.size(); ++j) {
          context.push_back(context[from + j]);
        }
      } else {
        context.push_back(static_cast<int32_t>(gen() % alphabet));
      }
    }
    std::vector<std::vector<int32_t>> breaker_storage;
    for (size_t b = 0, count = gen() % 3; b < count; ++b) {
      std::vector<int32_t> seq;
      for (size_t j = 0, len = 1 + gen() % 2; j < len; ++j) seq.push_back(gen() % alphabet);
      breaker_storage.push_back(seq);
    }
    const std::vector<absl::Span<const int32_t>> breakers(breaker_storage.begin(),
                                                          breaker_storage.end());
    SamplingParams p;
    p.preset = preset;
    p.seed = gen();
    const uint64_t step = gen() % 5;
    p.context_token_ids = context;
    p.temperature = gen() % 8 == 0 ? 0.0f : uniform(0.3f, 2.0f);
    p.penalty_last_n = gen() % 2 ? static_cast<int32_t>(gen() % 20) : 0;
    p.repetition_penalty = gen() % 2 ? uniform(0.8f, 1.5f) : 1.0f;
    p.frequency_penalty = gen() % 2 ? uniform(-0.3f, 0.5f) : 0.0f;
    if (gen() % 3 != 0) {
      p.dry.multiplier = uniform(0.1f, 2.0f);
      p.dry.base = uniform(1.05f, 2.5f);
      p.dry.allowed_length = static_cast<int32_t>(gen() % 4);
      p.dry.penalty_last_n = gen() % 2 ? static_cast<int32_t>(gen() % 30) : 0;
      p.dry.sequence_breakers = breakers;
    }
    if (gen() % 3 == 0) p.dynatemp_range = uniform(0.1f, 1.5f);
    if (gen() % 4 == 0) p.dynatemp_exponent = uniform(0.5f, 2.0f);
    const bool mirostat = gen() % 4 == 0;
    if (mirostat) {
      p.mirostat.version = 1 + static_cast<int32_t>(gen() % 2);
      p.mirostat.tau = uniform(0.5f, 6.0f);
      p.mirostat.eta = 0.1f;
      if (gen() % 2) p.mirostat.mu = uniform(0.5f, 10.0f);
      p.mirostat.m = 1 + static_cast<int32_t>(gen() % 120);
      if (preset == Preset::kLlamaCpp) {  // its mirostat chain has no penalties
        p.repetition_penalty = 1.0f;
        p.frequency_penalty = 0.0f;
        p.dry.multiplier = 0.0f;
        p.dynatemp_range = 0.0f;
      }
    } else {
      if (gen() % 3 == 0) p.top_n_sigma = uniform(0.2f, 3.0f);
      if (gen() % 2) {
        p.xtc_probability = gen() % 3 == 0 ? 1.0f : uniform(0.2f, 0.9f);
        p.xtc_threshold = uniform(0.02f, 0.5f);
      }
      p.top_k = gen() % 3 == 0 ? static_cast<int32_t>(gen() % (n + 2)) : 0;
      p.top_p = gen() % 3 == 0 ? uniform(0.3f, 1.0f) : 1.0f;
      p.min_p = gen() % 3 == 0 ? uniform(0.0f, 0.3f) : 0.0f;
      p.min_tokens_to_keep = 1 + static_cast<int32_t>(gen() % 3);
    }
    ASSERT_TRUE(ValidateParams(p, n).ok()) << ValidateParams(p, n);
    DistributionResult d;
    const absl::Status status = sampler.Distribution(row.View(dtype), p, step, &d);
    const std::vector<double> want =
        testing::ReferenceDistribution(row.values, p, XtcCoin(p.seed, step));
    bool all_masked = true;
    for (double w : want) all_masked = all_masked && !(w > 0.0);
    if (!status.ok()) {
      // Only a DRY penalty that reaches -inf on every token may fail.
      EXPECT_TRUE(all_masked) << status;
      continue;
    }
    std::vector<float> got(n, 0.0f);
    for (size_t i = 0; i < d.token_ids.size(); ++i) got[d.token_ids[i]] = d.probs[i];
    ExpectMatches(
        got, want,
        absl::StrCat("trial ", trial, " n=", n, " dtype=", static_cast<int>(dtype),
                     " T=", p.temperature, " last_n=", p.penalty_last_n, " dry=", p.dry.multiplier,
                     "/", p.dry.base, "/", p.dry.allowed_length, "/", p.dry.penalty_last_n, "/",
                     breakers.size(), " dynatemp=", p.dynatemp_range, "^", p.dynatemp_exponent,
                     " mirostat=", p.mirostat.version, " nsigma=", p.top_n_sigma,
                     " xtc=", p.xtc_probability, "/", p.xtc_threshold,
                     " coin=", XtcCoin(p.seed, step), " k=", p.top_k, " p=", p.top_p,
                     " min_p=", p.min_p, " keep=", p.min_tokens_to_keep, " ctx=", context.size()));
    if (HasFailure()) break;
  }
}

TEST(ChainReferenceTest, MirostatOnLargeRowsMatches) {
  // v1 takes its top m and top k by top-k scans on large rows (k inside m, beyond m, all
  // of the row); v2 one pass over the weights.
  Sampler sampler;
  for (size_t n : {size_t{1000}, size_t{32000}}) {
    for (float sigma : {1.0f, 3.0f}) {
      const std::vector<float> row = testing::NormalRow(n, static_cast<uint32_t>(n) + 3, sigma);
      for (int version : {1, 2}) {
        for (int32_t m : {5, 100}) {
          for (float mu : {1.0f, 6.0f, 12.0f, 30.0f}) {
            SamplingParams p;
            p.temperature = 0.8f;
            p.mirostat.version = version;
            p.mirostat.m = m;
            p.mirostat.mu = mu;
            const std::vector<float> got = testing::DenseDistribution(sampler, row, p);
            ExpectMatches(
                got, testing::ReferenceDistribution(row, p),
                absl::StrCat("n ", n, " sigma ", sigma, " v", version, " m ", m, " mu ", mu));
          }
        }
      }
    }
  }
}

TEST(ChainReferenceTest, DynamicTemperatureSeesTheWholeRowBeforeTopKInEveryDtype) {
  // STANDARD's dynamic temperature takes the entropy of the whole row, so a 16-bit row
  // must not take the top-k-first path that decodes only the candidates.
  std::mt19937 gen(99);
  const size_t n = 4096;
  for (Dtype dtype : {Dtype::kFloat32, Dtype::kBFloat16, Dtype::kFloat16}) {
    const TypedRow row = RandomTypedRow(n, dtype, gen);
    SamplingParams p;
    p.top_k = 40;
    p.temperature = 0.9f;
    p.dynatemp_range = 0.6f;
    Sampler sampler;
    DistributionResult d;
    ASSERT_TRUE(sampler.Distribution(row.View(dtype), p, &d).ok());
    std::vector<float> got(n, 0.0f);
    for (size_t i = 0; i < d.token_ids.size(); ++i) got[d.token_ids[i]] = d.probs[i];
    ExpectMatches(got, testing::ReferenceDistribution(row.values, p),
                  absl::StrCat("dtype ", static_cast<int>(dtype)));
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, ChainReferenceTest,
                         ::testing::Values(Preset::kStandard, Preset::kLlamaCpp),
                         [](const ::testing::TestParamInfo<Preset>& param_info) {
                           return std::string(param_info.param == Preset::kStandard ? "Standard"
                                                                                    : "LlamaCpp");
                         });

INSTANTIATE_TEST_SUITE_P(Presets, ReferenceTest,
                         ::testing::Values(Preset::kStandard, Preset::kHf, Preset::kLlamaCpp,
                                           Preset::kVllm),
                         [](const ::testing::TestParamInfo<Preset>& param_info) {
                           switch (param_info.param) {
                             case Preset::kStandard:
                               return std::string("Standard");
                             case Preset::kHf:
                               return std::string("Hf");
                             case Preset::kVllm:
                               return std::string("Vllm");
                             default:
                               return std::string("LlamaCpp");
                           }
                         });

}  // namespace
}  // namespace tokensampler::sampler
