// The whole pipeline on every compiled SIMD target: tokens and distributions of a corpus
// of rows identical across targets, 16-bit rows like their decoded float32 rows, and the
// top-p threshold path against the slow reference.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "sampler/kernels.h"
#include "sampler/sampler.h"
#include "sampler/stages/bitmask.h"
#include "tests/sampler/reference.h"
#include "tests/sampler/simd_targets.h"
#include "tests/sampler/test_util.h"

namespace tokensampler::sampler::kernels {
namespace {


class PipelineTargetTest : public SimdTargetTest {};

// A 16-bit row that top-k cuts first is scanned in place, only its candidates decoded:
// the tokens, logprobs, top logprobs and distribution are those of the float32 path on
// the decoded row, bit for bit, and the errors name the same element. Rows with ties,
// -inf, fewer finite tokens than k, a peak; k from 1 to near V/2 and past the sampled
// floor guess (k >= 256); both logprobs modes (RAW keeps the decoded copy); HF.
TEST_P(PipelineTargetTest, SixteenBitRowsSampleLikeTheirDecodedFloat32Rows) {
  Sampler sampler;
  for (size_t v : {17, 1000, 32000, 128256}) {
    std::vector<std::vector<float>> rows = {testing::NormalRow(v, 5, 3.0f),
                                            testing::TiedRow(v, 6), AwkwardRow(v, 7)};
    std::vector<float> peaked = testing::NormalRow(v, 8, 1.0f);
    peaked[v / 3] += 10.0f;
    rows.push_back(peaked);
    std::vector<float> few(v, -kInf);
    few[1] = 0.5f;
    few[v - 2] = 2.0f;
    few[v / 2] = 2.0f;
    rows.push_back(few);
    std::vector<SamplingParams> configs;
    SamplingParams p;
    p.temperature = 0.8f;
    p.top_k = 50;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    configs.push_back(p);
    for (int32_t k : {1, 1000, static_cast<int32_t>(v / 2) - 1}) {
      p.top_k = k;
      configs.push_back(p);
    }
    p.top_k = 40;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 0.9f;
    p.temperature = 1.5f;
    p.min_tokens_to_keep = 45;
    configs.push_back(p);
    p = configs[0];
    p.preset = Preset::kHf;  // keeps ties with the k-th: the decoded copy
    configs.push_back(p);
    for (size_t r = 0; r < rows.size(); ++r) {
      const Rows16 encoded(rows[r]);
      for (const LogitsView& view :
           {LogitsView{encoded.bf16.data(), v, Dtype::kBFloat16},
            LogitsView{encoded.fp16.data(), v, Dtype::kFloat16}}) {
        std::vector<float> decoded(v);
        float max = 0;
        ASSERT_EQ(DecodeAndMaxScalar(view, decoded.data(), &max), -1);
        for (size_t c = 0; c < configs.size(); ++c) {
          const std::string where = "V " + std::to_string(v) + " row " + std::to_string(r) +
                                    " config " + std::to_string(c) + " dtype " +
                                    std::to_string(static_cast<int>(view.dtype));
          for (LogprobsMode mode : {LogprobsMode::kProcessed, LogprobsMode::kRaw}) {
            SamplingParams q = configs[c];
            q.logprobs_mode = mode;
            q.seed = 40 + r;
            q.num_samples = 3;
            q.top_logprobs = 4;
            SampleResult got, want;
            ASSERT_TRUE(sampler.Sample(view, q, 7, &got).ok()) << where;
            ASSERT_TRUE(sampler.Sample(LogitsView::Float32(decoded), q, 7, &want).ok());
            ASSERT_EQ(got.samples.size(), want.samples.size());
            for (size_t s = 0; s < got.samples.size(); ++s) {
              ASSERT_EQ(got.samples[s].token_id, want.samples[s].token_id) << where;
              ASSERT_EQ(BitsOf(got.samples[s].logprob), BitsOf(want.samples[s].logprob));
              ASSERT_EQ(got.samples[s].top_logprobs.size(), want.samples[s].top_logprobs.size());
              for (size_t t = 0; t < got.samples[s].top_logprobs.size(); ++t) {
                ASSERT_EQ(got.samples[s].top_logprobs[t].token_id,
                          want.samples[s].top_logprobs[t].token_id) << where;
                ASSERT_EQ(BitsOf(got.samples[s].top_logprobs[t].logprob),
                          BitsOf(want.samples[s].top_logprobs[t].logprob)) << where;
              }
            }
          }
          DistributionResult got, want;
          ASSERT_TRUE(sampler.Distribution(view, configs[c], &got).ok()) << where;
          ASSERT_TRUE(sampler.Distribution(LogitsView::Float32(decoded), configs[c], &want).ok());
          ASSERT_EQ(got.token_ids, want.token_ids) << where;
          std::vector<uint32_t> got_bits, want_bits;
          for (float x : got.probs) got_bits.push_back(BitsOf(x));
          for (float x : want.probs) want_bits.push_back(BitsOf(x));
          ASSERT_EQ(got_bits, want_bits) << where;
          if (v > 32000) continue;
          // And the kept set is the reference's.
          const std::vector<double> ref = testing::ReferenceDistribution(decoded, configs[c]);
          std::vector<int32_t> ref_ids;
          for (size_t i = 0; i < v; ++i) {
            if (ref[i] > 1e-30) ref_ids.push_back(static_cast<int32_t>(i));
          }
          std::vector<int32_t> ids = got.token_ids;
          std::sort(ids.begin(), ids.end());
          ASSERT_EQ(ids, ref_ids) << where;
        }
      }
    }
  }
  // Errors: the first NaN/+inf by index, and a row of -inf, as the float32 path says.
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 50;
  p.top_p = 0.95f;
  const size_t v = 4099;
  std::vector<float> row = testing::NormalRow(v, 9, 3.0f);
  row[0] = 50.0f;
  for (size_t pos : {size_t{0}, size_t{31}, size_t{2048}, v - 1}) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), kInf}) {
      std::vector<float> with = row;
      with[pos] = bad;
      if (pos + 1 < v) with[pos + 1] = bad == kInf ? std::numeric_limits<float>::quiet_NaN() : kInf;
      Rows16 encoded(with);
      encoded.fp16[pos] = std::isnan(bad) ? 0x7E00 : 0x7C00;
      const std::string message = "logits[" + std::to_string(pos) + "]: must not be " +
                                  (std::isnan(bad) ? "NaN" : "+inf");
      SampleResult out;
      ASSERT_EQ(sampler.Sample(LogitsView::Float32(with), p, 0, &out).message(), message);
      ASSERT_EQ(sampler.Sample({encoded.bf16.data(), v, Dtype::kBFloat16}, p, 0, &out).message(),
                message);
      ASSERT_EQ(sampler.Sample({encoded.fp16.data(), v, Dtype::kFloat16}, p, 0, &out).message(),
                message);
    }
  }
  const std::vector<uint16_t> masked(v, 0xFF80);  // bf16 -inf
  SampleResult out;
  EXPECT_EQ(sampler.Sample({masked.data(), v, Dtype::kBFloat16}, p, 0, &out).message(),
            "logits: every token is masked");
}

// The pipeline on every target: tokens and distributions equal those of the baseline
// (EMU128, i.e. the scalar-equivalent target) for every row of a corpus.
struct Case {
  const char* name;
  SamplingParams params;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  SamplingParams p;
  cases.push_back({"t1", p});
  p.temperature = 0.7f;
  cases.push_back({"t07", p});
  p.top_k = 50;
  cases.push_back({"topk50", p});
  p.top_k = 0;
  p.top_p = 0.95f;
  cases.push_back({"topp95", p});
  p.top_k = 50;
  p.min_p = 0.05f;
  cases.push_back({"topk_topp_minp", p});
  SamplingParams g;
  g.temperature = 0.0f;
  cases.push_back({"greedy", g});
  SamplingParams hf = p;
  hf.preset = Preset::kHf;
  cases.push_back({"hf", hf});
  SamplingParams llama = p;
  llama.preset = Preset::kLlamaCpp;
  cases.push_back({"llama", llama});
  return cases;
}

std::vector<std::vector<float>> Corpus() {
  std::vector<std::vector<float>> rows;
  uint32_t seed = 100;
  for (size_t v : {3, 17, 1000, 32000, 128256}) {
    rows.push_back(testing::NormalRow(v, seed++, 3.0f));
    std::vector<float> peaked = testing::NormalRow(v, seed++, 1.0f);
    peaked[v / 2] += 10.0f;
    rows.push_back(peaked);
    rows.push_back(testing::TiedRow(v, seed++));
    rows.push_back(AwkwardRow(v, seed++));
  }
  return rows;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<std::vector<int32_t>> dist_ids;
  std::vector<std::vector<uint32_t>> dist_bits;
};

Outcome RunCorpus() {
  Outcome out;
  Sampler sampler;
  const std::vector<std::vector<float>> rows = Corpus();
  for (const Case& c : Cases()) {
    for (size_t r = 0; r < rows.size(); ++r) {
      SamplingParams p = c.params;
      p.seed = 1234 + r;
      p.num_samples = 3;
      p.top_logprobs = 2;
      SampleResult result;
      const LogitsView view = LogitsView::Float32(rows[r]);
      for (uint64_t step : {0u, 1u, 77u}) {
        const absl::Status s = sampler.Sample(view, p, step, &result);
        EXPECT_TRUE(s.ok()) << s;
        for (const auto& sample : result.samples) out.tokens.push_back(sample.token_id);
      }
      DistributionResult dist;
      EXPECT_TRUE(sampler.Distribution(view, p, &dist).ok());
      out.dist_ids.push_back(dist.token_ids);
      std::vector<uint32_t> bits;
      for (float prob : dist.probs) bits.push_back(BitsOf(prob));
      out.dist_bits.push_back(bits);
    }
  }
  return out;
}

TEST(SimdTargets, PipelineTokensAndDistributionsIdenticalOnEveryTarget) {
  const std::vector<int64_t> targets = Targets();
  const int64_t baseline = targets.back();  // the worst compiled target: EMU128 on x86
  Outcome expected;
  {
    ForceTarget force(baseline);
    ASSERT_EQ(DispatchedTarget(), baseline);
    expected = RunCorpus();
  }
  ASSERT_FALSE(expected.tokens.empty());
  for (int64_t target : targets) {
    ForceTarget force(target);
    ASSERT_EQ(DispatchedTarget(), target);
    const Outcome got = RunCorpus();
    EXPECT_EQ(got.tokens, expected.tokens) << hwy::TargetName(target);
    EXPECT_EQ(got.dist_ids, expected.dist_ids) << hwy::TargetName(target);
    EXPECT_EQ(got.dist_bits, expected.dist_bits) << hwy::TargetName(target);
  }
}

// The pipeline reads an aligned float32 row in place and copies every other row: both
// must give the same tokens and the same distribution bits.
TEST(SimdTargets, InPlaceAndCopiedRowsAgree) {
  Sampler sampler;
  for (size_t v : {5, 4096, 32000}) {
    const std::vector<float> row = testing::NormalRow(v, static_cast<uint32_t>(v), 3.0f);
    std::vector<unsigned char> shifted(4 * v + 1);
    std::memcpy(shifted.data() + 1, row.data(), 4 * v);
    const LogitsView in_place = LogitsView::Float32(row);
    const LogitsView copied = {shifted.data() + 1, v, Dtype::kFloat32};
    for (const Case& c : Cases()) {
      SamplingParams p = c.params;
      p.seed = 99;
      SampleResult a, b;
      ASSERT_TRUE(sampler.Sample(in_place, p, 5, &a).ok());
      ASSERT_TRUE(sampler.Sample(copied, p, 5, &b).ok());
      ASSERT_EQ(a.samples[0].token_id, b.samples[0].token_id) << c.name << " V " << v;
      ASSERT_EQ(BitsOf(a.samples[0].logprob), BitsOf(b.samples[0].logprob)) << c.name;
      DistributionResult da, db;
      ASSERT_TRUE(sampler.Distribution(in_place, p, &da).ok());
      ASSERT_TRUE(sampler.Distribution(copied, p, &db).ok());
      ASSERT_EQ(da.token_ids, db.token_ids) << c.name << " V " << v;
      ASSERT_EQ(da.probs, db.probs) << c.name << " V " << v;
    }
  }
}

// STANDARD top-p on rows large enough for the threshold path (sampled guess, collect,
// bucketed cut), against the slow reference: the same kept set, with min_tokens_to_keep
// inside and beyond the nucleus, on tied, peaked and near-uniform rows.
TEST(SimdTargets, TopPThresholdPathMatchesTheReference) {
  Sampler sampler;
  for (size_t v : {4096, 32000, 128256}) {
    std::vector<std::vector<float>> rows = {testing::NormalRow(v, 1, 3.0f),
                                            testing::NormalRow(v, 2, 0.3f),
                                            testing::TiedRow(v, 3)};
    std::vector<float> peaked = testing::NormalRow(v, 4, 1.0f);
    peaked[v / 5] += 10.0f;
    rows.push_back(peaked);
    for (size_t r = 0; r < rows.size(); ++r) {
      for (float top_p : {1e-7f, 0.3f, 0.9f, 0.95f, 0.999f}) {
        for (int32_t min_keep : {1, 3, 700}) {
          SamplingParams p;
          p.temperature = 0.8f;
          p.top_p = top_p;
          p.min_tokens_to_keep = min_keep;
          const std::vector<float> got = testing::DenseDistribution(sampler, rows[r], p);
          const std::vector<double> want = testing::ReferenceDistribution(rows[r], p);
          ASSERT_EQ(got.size(), want.size());
          size_t mismatches = 0;
          for (size_t i = 0; i < v; ++i) {
            if ((got[i] > 0.0f) != (want[i] > 1e-30)) {
              ADD_FAILURE() << "token " << i << " got " << got[i] << " want " << want[i];
              if (++mismatches == 3) break;
            }
          }
          ASSERT_EQ(mismatches, 0u) << "V " << v << " row " << r << " top_p " << top_p
                                    << " min_keep " << min_keep;
        }
      }
    }
  }
}

// A token bitmask gives what masking the same tokens by id gives, on every target and
// every path a bitmask takes: read in place by the kernels (greedy, top-k first under
// STANDARD, HF and VLLM, the whole row at T), decoded with the mask (16-bit rows, top-p,
// min-p, LLAMA_CPP, mirostat, penalties): tokens, logprobs, ranks, chosen-token values
// and kept sets in every logprobs mode, bit for bit, and the same distribution.
TEST_P(PipelineTargetTest, BitmaskSamplesLikeTheAllowedIdsPath) {
  Sampler sampler;
  std::vector<SamplingParams> configs;
  SamplingParams p;
  p.seed = 11;
  configs.push_back(p);  // T = 1, the whole row
  p.temperature = 0.8f;
  configs.push_back(p);
  p.temperature = 0.0f;
  configs.push_back(p);  // greedy
  p.temperature = 0.8f;
  p.top_k = 50;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  configs.push_back(p);  // the benchmark's full pipeline
  for (Preset preset : {Preset::kHf, Preset::kVllm, Preset::kLlamaCpp}) {
    SamplingParams q = p;
    q.preset = preset;
    configs.push_back(q);
    q.min_p = 0.0f;
    configs.push_back(q);
  }
  SamplingParams topp;
  topp.temperature = 0.9f;
  topp.top_p = 0.9f;
  configs.push_back(topp);
  topp.top_p = 1.0f;
  topp.min_p = 0.001f;  // a large set: a dense distribution
  configs.push_back(topp);
  SamplingParams miro;
  miro.mirostat.version = 2;
  configs.push_back(miro);
  SamplingParams penalised = p;
  const std::vector<int32_t> context = {0, 5, 5, 30, 31};
  penalised.context_token_ids = context;
  penalised.repetition_penalty = 1.3f;
  configs.push_back(penalised);
  for (size_t v : {1u, 31u, 32u, 33u, 32000u, 128256u}) {
    std::vector<float> row = testing::NormalRow(v, static_cast<uint32_t>(v) + 17, 3.0f);
    for (size_t i = 4; i < v; i += 41) row[i] = row[0];  // ties, allowed and masked
    std::vector<uint8_t> mask(stages::BitmaskBytes(v), 0);
    std::vector<int32_t> allowed;
    for (size_t i = 0; i < v; ++i) {
      if (i % 3 == 0 || i % 7 == 1) {
        stages::BitmaskSet(mask.data(), i);
        allowed.push_back(static_cast<int32_t>(i));
      }
    }
    const Rows16 encoded(row);
    for (const LogitsView& view :
         {LogitsView::Float32(row), LogitsView{encoded.bf16.data(), v, Dtype::kBFloat16}}) {
      for (size_t c = 0; c < configs.size(); ++c) {
        if (!configs[c].context_token_ids.empty() && v <= 31) continue;  // ids past V
        const std::string where = "V " + std::to_string(v) + " dtype " +
                                  std::to_string(static_cast<int>(view.dtype)) + " config " +
                                  std::to_string(c);
        SamplingParams by_mask = configs[c];
        by_mask.allowed_token_bitmask = {mask.data(), mask.size()};
        by_mask.return_kept_set = true;
        const std::vector<int32_t> asked = {0, static_cast<int32_t>(v / 2)};
        by_mask.logprob_token_ids = asked;
        by_mask.top_logprobs = 2;
        by_mask.num_samples = 2;
        SamplingParams by_ids = by_mask;
        by_ids.allowed_token_bitmask = {};
        by_ids.allowed_token_ids = allowed;
        for (LogprobsMode mode : {LogprobsMode::kRaw, LogprobsMode::kProcessed,
                                  LogprobsMode::kRawLogits, LogprobsMode::kProcessedLogits}) {
          by_mask.logprobs_mode = mode;
          by_ids.logprobs_mode = mode;
          SampleResult got, want;
          ASSERT_TRUE(sampler.Sample(view, by_mask, 3, &got).ok()) << where;
          ASSERT_TRUE(sampler.Sample(view, by_ids, 3, &want).ok()) << where;
          ASSERT_EQ(got.kept_set, want.kept_set) << where;
          for (size_t s = 0; s < got.samples.size(); ++s) {
            const Sample& a = got.samples[s];
            const Sample& b = want.samples[s];
            ASSERT_EQ(a.token_id, b.token_id) << where;
            ASSERT_EQ(BitsOf(a.logprob), BitsOf(b.logprob)) << where;
            ASSERT_EQ(a.rank, b.rank) << where;
            ASSERT_EQ(a.top_logprobs.size(), b.top_logprobs.size()) << where;
            for (size_t t = 0; t < a.top_logprobs.size(); ++t) {
              ASSERT_EQ(a.top_logprobs[t].token_id, b.top_logprobs[t].token_id) << where;
              ASSERT_EQ(BitsOf(a.top_logprobs[t].logprob), BitsOf(b.top_logprobs[t].logprob));
            }
            for (size_t t = 0; t < a.token_logprobs.size(); ++t) {
              ASSERT_EQ(BitsOf(a.token_logprobs[t].logprob), BitsOf(b.token_logprobs[t].logprob))
                  << where;
            }
          }
        }
        DistributionResult got, want;
        ASSERT_TRUE(sampler.Distribution(view, by_mask, &got).ok()) << where;
        ASSERT_TRUE(sampler.Distribution(view, by_ids, &want).ok()) << where;
        ASSERT_EQ(got.token_ids, want.token_ids) << where;
        ASSERT_EQ(got.probs, want.probs) << where;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryTarget, PipelineTargetTest, ::testing::ValuesIn(Targets()),
                         TargetParamName);

}  // namespace
}  // namespace tokensampler::sampler::kernels
