// In-process benchmarks of the sampler, side by side in one binary (issue 4):
//   limit/...      the cheapest exact normaliser: one max pass + one exp-sum pass
//   pipeline/...   Sampler::Sample / Distribution under the configurations
//   dense/...      the dense normalised distribution (decode+max, exp-sum, scale)
//   sort/...       hwy::Sorter on V floats, the bar for sorting GetDistribution's answer
//   reference/...  the slow double-precision oracle of tests/sampler/reference.cc
//   verify/...     speculative verification of one row (VerifyRow), k = 4 drafts
//   verify_residual/...  one rejected draft position on a computed target (the residual)
// Names are <group>/<config>/<rows>/V:<V>/batch:<B>[/dtype]; bench/summarise.py turns the
// JSON output into ratios to the limit with the same rows, V, batch and threads.
//
// Rows: logits from a fixed-seed normal distribution (sigma 3), or "peaked": N(0, 1)
// with one token 10 above the largest of the rest. Each iteration processes `batch`
// distinct rows; with threads:2 each thread runs its own Sampler on its own batch.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "benchmark/benchmark.h"
#include "hwy/contrib/sort/vqsort.h"
#include "sampler/draw.h"
#include "sampler/kernels.h"
#include "sampler/kernels.h"
#include "sampler/params.h"
#include "sampler/sampler.h"
#include "sampler/verify.h"
#include "tests/sampler/reference.h"

namespace tokensampler::sampler::bench {
namespace {

constexpr int kVocabs[] = {32000, 128256, 151936, 262144};
constexpr int kBatches[] = {1, 8, 64};
constexpr float kTemperature = 0.8f;

// kNpy: rows read from the 2-D float32 .npy file named by TOKENSAMPLER_BENCH_NPY (the
// PyTorch comparison, bench/torch_compare.py, times both on the same rows this way).
enum class RowKind { kNormal, kPeaked, kNpy };

const char* KindName(RowKind kind) {
  return kind == RowKind::kNormal ? "normal" : kind == RowKind::kPeaked ? "peaked" : "npy";
}

// `count` rows of `vocab` logits, a fixed function of the arguments; cached because
// 64 rows of 262144 take a while to draw.
struct RowSet {
  std::vector<std::vector<float>> f32;
  std::vector<std::vector<uint16_t>> bf16;  // round-to-nearest-even of f32
};

uint16_t ToBFloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

constexpr int kMaxBatch = 64;

// A minimal reader of 2-D little-endian float32 C-order .npy files (numpy.save).
bool ReadNpy(const char* path, RowSet* out, std::string* error) {
  std::FILE* f = std::fopen(path, "rb");
  if (f == nullptr) {
    *error = std::string("cannot open ") + path;
    return false;
  }
  std::string data;
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, got);
  std::fclose(f);
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) {
    *error = "not a .npy file";
    return false;
  }
  const int major = static_cast<unsigned char>(data[6]);
  size_t header_len = static_cast<unsigned char>(data[8]) |
                      (static_cast<size_t>(static_cast<unsigned char>(data[9])) << 8);
  size_t offset = 10;
  if (major >= 2) {
    header_len |= (static_cast<size_t>(static_cast<unsigned char>(data[10])) << 16) |
                  (static_cast<size_t>(static_cast<unsigned char>(data[11])) << 24);
    offset = 12;
  }
  const std::string header = data.substr(offset, header_len);
  if (header.find("'<f4'") == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos) {
    *error = "want float32 little-endian C-order, header " + header;
    return false;
  }
  long rows = 0, cols = 0;
  const size_t shape = header.find("'shape': (");
  if (shape == std::string::npos ||
      std::sscanf(header.c_str() + shape, "'shape': (%ld, %ld)", &rows, &cols) != 2 ||
      rows < 1 || cols < 1) {
    *error = "want a 2-D array, header " + header;
    return false;
  }
  const size_t body = offset + header_len;
  if (data.size() < body + 4 * static_cast<size_t>(rows * cols)) {
    *error = "file too short";
    return false;
  }
  for (long r = 0; r < rows; ++r) {
    std::vector<float> row(cols);
    std::memcpy(row.data(), data.data() + body + 4 * static_cast<size_t>(r * cols),
                4 * static_cast<size_t>(cols));
    std::vector<uint16_t> half(cols);
    for (long i = 0; i < cols; ++i) half[i] = ToBFloat16(row[i]);
    out->f32.push_back(std::move(row));
    out->bf16.push_back(std::move(half));
  }
  return true;
}

const RowSet& NpyRows() {
  static RowSet* rows = [] {
    auto* set = new RowSet;
    const char* path = std::getenv("TOKENSAMPLER_BENCH_NPY");
    std::string error;
    if (path != nullptr && !ReadNpy(path, set, &error)) {
      std::fprintf(stderr, "TOKENSAMPLER_BENCH_NPY=%s: %s\n", path, error.c_str());
      std::exit(2);
    }
    return set;
  }();
  return *rows;
}

// kMaxBatch rows; a batch of b uses the first b.
const RowSet& Rows(RowKind kind, int vocab, int /*batch*/) {
  if (kind == RowKind::kNpy) return NpyRows();
  const int count = kMaxBatch;
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::unique_ptr<RowSet>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{static_cast<int>(kind), vocab}];
  if (!slot) {
    slot = std::make_unique<RowSet>();
    std::mt19937_64 gen(0x5EED0000u + static_cast<uint64_t>(vocab) * 131 +
                        static_cast<uint64_t>(kind));
    std::normal_distribution<float> normal(0.0f, kind == RowKind::kNormal ? 3.0f : 1.0f);
    for (int r = 0; r < count; ++r) {
      std::vector<float> row(vocab);
      float top = -1e30f;
      for (float& z : row) {
        z = normal(gen);
        top = std::max(top, z);
      }
      if (kind == RowKind::kPeaked) row[gen() % vocab] = top + 10.0f;
      std::vector<uint16_t> half(vocab);
      for (int i = 0; i < vocab; ++i) half[i] = ToBFloat16(row[i]);
      slot->f32.push_back(std::move(row));
      slot->bf16.push_back(std::move(half));
    }
  }
  return *slot;
}

LogitsView View(const RowSet& rows, int r, Dtype dtype) {
  if (dtype == Dtype::kBFloat16) {
    return {rows.bf16[r].data(), rows.bf16[r].size(), Dtype::kBFloat16};
  }
  return LogitsView::Float32(rows.f32[r]);
}

// The pipeline configurations of issue 4. Logprobs are PROCESSED unless the name says
// raw: RAW logprobs need log-sum-exp of the untouched logits, one more exp pass over V
// whenever T != 1 and no top-k spares it (reported separately as *_rawlp).
struct Config {
  const char* name;
  SamplingParams params;
  bool distribution = false;  // Sampler::Distribution instead of Sample
  bool bitmask = false;       // with a structured-output bitmask allowing 3 tokens in 4
};

std::vector<Config> Configs() {
  std::vector<Config> out;
  SamplingParams p;
  p.logprobs_mode = LogprobsMode::kProcessed;
  p.seed = 42;
  SamplingParams greedy = p;
  greedy.temperature = 0.0f;
  out.push_back({"greedy", greedy});
  // What an RPC client that leaves logprobs_mode unset gets (the CLI's bench does).
  SamplingParams greedy_raw = greedy;
  greedy_raw.logprobs_mode = LogprobsMode::kRaw;
  out.push_back({"greedy_rawlp", greedy_raw});
  SamplingParams t = p;
  t.temperature = kTemperature;
  out.push_back({"t", t});
  SamplingParams topk = t;
  topk.top_k = 50;
  out.push_back({"t_topk50", topk});
  // Large k: the candidate pass must stay O(V) + O(k log k) however big the top k is.
  for (int32_t large_k : {1000, 4000}) {
    SamplingParams big = t;
    big.top_k = large_k;
    out.push_back({large_k == 1000 ? "t_topk1000" : "t_topk4000", big});
  }
  SamplingParams topp = t;
  topp.top_p = 0.95f;
  out.push_back({"t_topp95", topp});
  // The same through the peers' presets (their own cut rules, see docs/SAMPLING.md).
  SamplingParams topp_hf = topp;
  topp_hf.preset = Preset::kHf;
  out.push_back({"hf_t_topp95", topp_hf});
  SamplingParams topp_llama = topp;
  topp_llama.preset = Preset::kLlamaCpp;
  out.push_back({"llama_t_topp95", topp_llama});
  SamplingParams minp = t;  // min-p alone, as llama.cpp users often run it
  minp.min_p = 0.05f;
  out.push_back({"t_minp05", minp});
  SamplingParams all = t;
  all.top_k = 50;
  all.top_p = 0.95f;
  all.min_p = 0.05f;
  out.push_back({"t_topk50_topp95_minp05", all});
  SamplingParams all_raw = all;
  all_raw.logprobs_mode = LogprobsMode::kRaw;
  out.push_back({"t_topk50_topp95_minp05_rawlp", all_raw});
  SamplingParams t_raw = t;
  t_raw.logprobs_mode = LogprobsMode::kRaw;
  out.push_back({"t_rawlp", t_raw});
  out.push_back({"distribution_sorted", t, /*distribution=*/true});
  // Issue 14: the bitmask (its cost on the main configuration and on T only), the kept
  // set (at most one extra pass), and the VLLM preset's chain.
  out.push_back({"t_topk50_topp95_minp05_bitmask", all, false, /*bitmask=*/true});
  out.push_back({"t_bitmask", t, false, /*bitmask=*/true});
  out.push_back({"greedy_bitmask", greedy, false, /*bitmask=*/true});
  SamplingParams all_kept = all;
  all_kept.return_kept_set = true;
  out.push_back({"t_topk50_topp95_minp05_keptset", all_kept});
  SamplingParams t_kept = t;
  t_kept.return_kept_set = true;
  out.push_back({"t_keptset", t_kept});
  SamplingParams all_vllm = all;
  all_vllm.preset = Preset::kVllm;
  out.push_back({"vllm_t_topk50_topp95_minp05", all_vllm});
  SamplingParams all_rank = all;
  all_rank.logprobs_mode = LogprobsMode::kRaw;
  all_rank.top_logprobs = 1;
  out.push_back({"t_topk50_topp95_minp05_rawlp_rank", all_rank});
  return out;
}

void SetRows(benchmark::State& state, int batch) {
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["rows"] = batch;
}

void BM_Limit(benchmark::State& state, RowKind kind, int vocab, int batch) {
  const RowSet& rows = Rows(kind, vocab, batch);
  std::vector<float> w(vocab);
  for (auto _ : state) {
    for (int r = 0; r < batch; ++r) {
      const float* z = rows.f32[r].data();
      const float max = kernels::Max(z, vocab);
      double sum = kernels::ExpSum(z, vocab, max, 1.0f, w.data());
      benchmark::DoNotOptimize(sum);
    }
    benchmark::ClobberMemory();
  }
  SetRows(state, batch);
}

void BM_Pipeline(benchmark::State& state, const Config& config, RowKind kind, int vocab,
                 int batch, Dtype dtype) {
  const RowSet& rows = Rows(kind, vocab, batch);
  Sampler sampler;
  SampleResult sample;
  DistributionResult dist;
  uint64_t step = 0;
  SamplingParams params = config.params;
  std::vector<uint8_t> mask;
  if (config.bitmask) {
    mask.assign(4 * ((static_cast<size_t>(vocab) + 31) / 32), 0);
    std::mt19937 gen(5);
    for (uint8_t& byte : mask) byte = static_cast<uint8_t>(gen() | gen());  // ~3/4 set
    params.allowed_token_bitmask = {mask.data(), mask.size()};
  }
  for (auto _ : state) {
    for (int r = 0; r < batch; ++r) {
      const LogitsView view = View(rows, r, dtype);
      const absl::Status s = config.distribution
                                 ? sampler.Distribution(view, params, &dist)
                                 : sampler.Sample(view, params, step++, &sample);
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
    }
    benchmark::ClobberMemory();
  }
  SetRows(state, batch);
}

// The dense normalised distribution with the library's kernels, as Distribution()
// computes it before sorting: max over the row in place (no copy), exp-sum at T, and
// the probabilities (kernels::ProbOf) written over the weights.
void BM_Dense(benchmark::State& state, RowKind kind, int vocab, int batch) {
  const RowSet& rows = Rows(kind, vocab, batch);
  std::vector<float> w(vocab);
  for (auto _ : state) {
    for (int r = 0; r < batch; ++r) {
      const float* z = rows.f32[r].data();
      float max = 0.0f;
      kernels::MaxChecked(z, vocab, &max);
      const double sum = kernels::ExpSum(z, vocab, max, kTemperature, w.data());
      kernels::Probs(w.data(), vocab, sum, w.data());  // in place, as Distribution does
      benchmark::DoNotOptimize(w.data());
    }
    benchmark::ClobberMemory();
  }
  SetRows(state, batch);
}

// hwy::Sorter on V floats (the probabilities of one row), descending.
void BM_HwySorter(benchmark::State& state, RowKind kind, int vocab, int batch) {
  const RowSet& rows = Rows(kind, vocab, batch);
  std::vector<float> buf(vocab);
  hwy::Sorter sorter;
  for (auto _ : state) {
    for (int r = 0; r < batch; ++r) {
      std::memcpy(buf.data(), rows.f32[r].data(), vocab * sizeof(float));
      sorter(buf.data(), buf.size(), hwy::SortDescending());
      benchmark::DoNotOptimize(buf.data());
    }
  }
  SetRows(state, batch);
}

void BM_Reference(benchmark::State& state, const Config& config, RowKind kind, int vocab,
                  int batch) {
  const RowSet& rows = Rows(kind, vocab, batch);
  uint64_t step = 0;
  for (auto _ : state) {
    for (int r = 0; r < batch; ++r) {
      const std::vector<double> probs =
          testing::ReferenceDistribution(rows.f32[r], config.params);
      int32_t token = testing::ReferencePick(probs, DrawUniform(config.params.seed, step++, 0));
      benchmark::DoNotOptimize(token);
    }
  }
  SetRows(state, batch);
}

// Speculative verification of one row: k = kDraftTokens drafts over k + 1 distinct target
// rows. "accept_all": q_i = p_i and d_i = the target's own draw at position i, so every
// draft is accepted: k + 1 position passes and no residual. "reject_last": the same, but
// the last draft is one-hot at the least likely token, so it is rejected: k position
// passes plus one residual pass. Compare with pipeline/<config> (one Sample) of the same
// rows: the target is verify <= (k + 1) x Sample + one residual pass.
constexpr int kDraftTokens = 4;

void BM_Verify(benchmark::State& state, const Config& config, RowKind kind, int vocab,
               bool reject_last) {
  const RowSet& rows = Rows(kind, vocab, kDraftTokens + 1);
  std::vector<LogitsView> targets;
  for (int i = 0; i <= kDraftTokens; ++i) targets.push_back(View(rows, i, Dtype::kFloat32));
  Sampler sampler;
  std::vector<int32_t> context_and_drafts;
  std::vector<std::vector<float>> q(kDraftTokens, std::vector<float>(vocab, 0.0f));
  for (int i = 0; i < kDraftTokens; ++i) {
    SamplingParams at = config.params;
    at.context_token_ids = context_and_drafts;
    DistributionResult dist;
    SampleResult sample;
    if (!sampler.Distribution(targets[i], at, &dist).ok() ||
        !sampler.Sample(targets[i], at, 1000 + i, &sample).ok()) {
      state.SkipWithError("setup failed");
      return;
    }
    for (size_t j = 0; j < dist.token_ids.size(); ++j) q[i][dist.token_ids[j]] = dist.probs[j];
    int32_t draft = sample.samples[0].token_id;
    if (reject_last && i == kDraftTokens - 1) {
      draft = static_cast<int32_t>(std::min_element(rows.f32[i].begin(), rows.f32[i].end()) -
                                   rows.f32[i].begin());
      std::fill(q[i].begin(), q[i].end(), 0.0f);
      q[i][draft] = 1.0f;
    }
    context_and_drafts.push_back(draft);
  }
  std::vector<LogitsView> q_views;
  for (const auto& row : q) q_views.push_back(LogitsView::Float32(row));
  VerifyInputs in;
  in.target_logits = targets;
  in.draft_token_ids = context_and_drafts;
  in.draft_probs = q_views;
  in.params = config.params;
  in.step = 1000;
  SamplerTarget target(&sampler);
  VerifyResult result;
  for (auto _ : state) {
    const absl::Status s = VerifyRow(target, in, &result);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
    benchmark::ClobberMemory();
  }
  state.counters["accepted"] = result.num_accepted;
  SetRows(state, 1);
}

// One residual pass: VerifyPosition on a position already computed (SamplerTarget::Load
// outside the loop) whose draft, one-hot as a dense q row at the least likely token, is
// rejected: the accept test, the residual walk over the position's entries, the
// recovered token's logprob.
void BM_VerifyResidual(benchmark::State& state, const Config& config, RowKind kind, int vocab) {
  const RowSet& rows = Rows(kind, vocab, 1);
  const LogitsView target_row = View(rows, 0, Dtype::kFloat32);
  const int32_t draft = static_cast<int32_t>(
      std::min_element(rows.f32[0].begin(), rows.f32[0].end()) - rows.f32[0].begin());
  std::vector<float> q(vocab, 0.0f);
  q[draft] = 1.0f;
  DraftPosition position;
  position.token = draft;
  position.probs = LogitsView::Float32(q);
  Sampler sampler;
  SamplerTarget target(&sampler);
  if (!target.Load(target_row, config.params, /*step=*/0).ok()) {
    state.SkipWithError("setup failed");
    return;
  }
  VerifyScratch scratch;
  PositionOutcome outcome;
  for (auto _ : state) {
    const absl::Status s =
        VerifyPosition(target, position, config.params.seed, 7, &scratch, &outcome);
    if (!s.ok() || outcome.accepted) {
      state.SkipWithError("the draft was not rejected");
      return;
    }
    benchmark::DoNotOptimize(outcome.emitted.token_id);
  }
  SetRows(state, 1);
}

std::string Suffix(RowKind kind, int vocab, int batch) {
  return std::string("/") + KindName(kind) + "/V:" + std::to_string(vocab) +
         "/batch:" + std::to_string(batch);
}

template <class F>
void Register(const std::string& name, F&& f) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<F>(f))
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond)
      ->Threads(1)
      ->Threads(2);
}

void RegisterShape(RowKind kind, int vocab, int batch) {
  static const std::vector<Config> configs = Configs();
  const std::string suffix = Suffix(kind, vocab, batch);
  Register("limit/maxexpsum" + suffix, [=](benchmark::State& s) {
    BM_Limit(s, kind, vocab, batch);
  });
  for (const Config& config : configs) {
    Register("pipeline/" + std::string(config.name) + suffix,
             [=, &config](benchmark::State& s) {
               BM_Pipeline(s, config, kind, vocab, batch, Dtype::kFloat32);
             });
  }
  // bf16 input: the main configuration (also with a bitmask), greedy, T only, the sorted
  // distribution, and greedy and the main configuration with RAW logprobs (the RPC
  // bench's rows).
  for (const Config& config : configs) {
    const std::string name = config.name;
    if (name != "t_topk50_topp95_minp05" && name != "greedy" && name != "t" &&
        name != "distribution_sorted" && name != "greedy_rawlp" &&
        name != "t_topk50_topp95_minp05_rawlp" && name != "t_topk50_topp95_minp05_bitmask") {
      continue;
    }
    Register("pipeline/" + name + suffix + "/bf16", [=, &config](benchmark::State& s) {
      BM_Pipeline(s, config, kind, vocab, batch, Dtype::kBFloat16);
    });
  }
  Register("dense/normalised" + suffix, [=](benchmark::State& s) {
    BM_Dense(s, kind, vocab, batch);
  });
  Register("sort/hwy_sorter" + suffix, [=](benchmark::State& s) {
    BM_HwySorter(s, kind, vocab, batch);
  });
  if (batch == 1 && kind == RowKind::kNormal && vocab == 128256) {
    for (const Config& config : configs) {
      const std::string name = config.name;
      if (name != "greedy" && name != "t" && name != "t_topp95" &&
          name != "t_topk50_topp95_minp05") {
        continue;
      }
      benchmark::RegisterBenchmark(("verify_residual/" + name + suffix).c_str(),
                                   [=, &config](benchmark::State& s) {
                                     BM_VerifyResidual(s, config, kind, vocab);
                                   })
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      for (bool reject_last : {false, true}) {
        benchmark::RegisterBenchmark(
            ("verify/" + name + "/k:4/" + (reject_last ? "reject_last" : "accept_all") +
             suffix)
                .c_str(),
            [=, &config](benchmark::State& s) {
              BM_Verify(s, config, kind, vocab, reject_last);
            })
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  if (batch == 1 || kind == RowKind::kNpy) {
    for (const Config& config : configs) {
      const std::string name = config.name;
      if (name != "t_topk50_topp95_minp05" && name != "t") continue;
      benchmark::RegisterBenchmark(("reference/" + name + suffix).c_str(),
                                   [=, &config](benchmark::State& s) {
                                     BM_Reference(s, config, kind, vocab, batch);
                                   })
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond)
          ->Iterations(3);
    }
  }
}

// llama.cpp's other samplers (issue 13), one row at V = 128256 (normal rows, T = 0.8,
// PROCESSED logprobs): each next to pipeline/t, plus DRY over a 131072-token periodic
// history (long repeats everywhere: a quadratic scan would take minutes) and the whole
// llama.cpp chain with its defaults.
std::vector<Config> LlamaChainConfigs() {
  static const std::vector<int32_t>* const short_history = [] {
    auto* h = new std::vector<int32_t>;
    std::mt19937 gen(7);
    for (int i = 0; i < 1024; ++i) h->push_back(static_cast<int32_t>(gen() % 2000));
    return h;
  }();
  static const std::vector<int32_t>* const long_history = [] {
    auto* h = new std::vector<int32_t>(131072);
    for (size_t i = 0; i < h->size(); ++i) (*h)[i] = static_cast<int32_t>((i * 37) % 64);
    return h;
  }();
  static const std::vector<int32_t> breaker = {13};
  static const std::vector<absl::Span<const int32_t>> breakers = {breaker};
  std::vector<Config> out;
  SamplingParams t;
  t.logprobs_mode = LogprobsMode::kProcessed;
  t.seed = 42;
  t.temperature = kTemperature;
  SamplingParams c = t;
  c.top_n_sigma = 1.0f;
  out.push_back({"t_topnsigma1", c});
  c = t;
  c.xtc_probability = 1.0f;  // the coin always comes up
  c.xtc_threshold = 0.1f;
  out.push_back({"t_xtc", c});
  c = t;
  c.dynatemp_range = 0.5f;
  out.push_back({"t_dynatemp", c});
  for (int version : {1, 2}) {
    c = t;
    c.mirostat.version = version;
    c.mirostat.tau = 5.0f;
    c.mirostat.eta = 0.1f;
    out.push_back({version == 1 ? "t_mirostat1" : "t_mirostat2", c});
  }
  c = t;
  c.context_token_ids = *short_history;
  c.dry.multiplier = 0.8f;
  c.dry.base = 1.75f;
  c.dry.allowed_length = 2;
  c.dry.sequence_breakers = breakers;
  out.push_back({"t_dry_ctx1024", c});
  c.context_token_ids = *long_history;
  out.push_back({"t_dry_ctx131072_periodic", c});
  c = t;
  c.context_token_ids = *long_history;
  c.repetition_penalty = 1.1f;
  c.penalty_last_n = 64;
  out.push_back({"t_penalties_last64_ctx131072", c});
  // llama.cpp's default chain with DRY, top-n-sigma and XTC switched on.
  c = t;
  c.preset = Preset::kLlamaCpp;
  c.context_token_ids = *short_history;
  c.repetition_penalty = 1.1f;
  c.penalty_last_n = 64;
  c.dry.multiplier = 0.8f;
  c.dry.base = 1.75f;
  c.dry.sequence_breakers = breakers;
  c.top_n_sigma = 2.0f;
  c.top_k = 40;
  c.top_p = 0.95f;
  c.min_p = 0.05f;
  c.xtc_probability = 1.0f;
  c.xtc_threshold = 0.1f;
  out.push_back({"llama_full_chain", c});
  return out;
}

void RegisterLlamaChain() {
  static const std::vector<Config> configs = LlamaChainConfigs();
  const int vocab = 128256;
  const std::string suffix = Suffix(RowKind::kNormal, vocab, 1);
  for (const Config& config : configs) {
    Register("pipeline/" + std::string(config.name) + suffix, [=, &config](benchmark::State& s) {
      BM_Pipeline(s, config, RowKind::kNormal, vocab, 1, Dtype::kFloat32);
    });
  }
}

void RegisterAll() {
  RegisterLlamaChain();
  if (std::getenv("TOKENSAMPLER_BENCH_NPY") != nullptr) {
    const RowSet& rows = NpyRows();
    RegisterShape(RowKind::kNpy, static_cast<int>(rows.f32[0].size()),
                  static_cast<int>(rows.f32.size()));
    return;
  }
  for (RowKind kind : {RowKind::kNormal, RowKind::kPeaked}) {
    for (int vocab : kVocabs) {
      for (int batch : kBatches) RegisterShape(kind, vocab, batch);
    }
  }
}

}  // namespace
}  // namespace tokensampler::sampler::bench

int main(int argc, char** argv) {
  tokensampler::sampler::bench::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("simd_target", tokensampler::sampler::SimdTargetName());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
