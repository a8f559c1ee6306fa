#include "sampler/sampler.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <functional>
#include <cstring>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "hwy/contrib/sort/vqsort.h"
#include "hwy/targets.h"
#include "sampler/dist_sort.h"
#include "sampler/draw.h"
#include "sampler/kernels.h"
#include "sampler/kernels_hwy.h"
#include "sampler/stages/bad_words.h"
#include "sampler/stages/bitmask.h"
#include "sampler/stages/min_tokens.h"
#include "sampler/stages/no_repeat_ngram.h"
#include "sampler/stages/vllm.h"
#include "sampler/validate_output.h"

namespace tokensampler::sampler {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

// The double nearest to the shortest decimal that round-trips `v` (0.8f -> 0.8). The
// HF preset uses it where Python would see the caller's decimal literal as a double.
double DecimalValue(float v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  double d = v;
  if (r.ec == std::errc()) std::from_chars(buf, r.ptr, d);
  return d;
}

absl::Status CheckIds(absl::string_view field, absl::Span<const int32_t> ids,
                      size_t vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= vocab_size) {
      return Invalid(absl::StrCat(field, "[", i, "]: token id ", ids[i], " out of range [0, ",
                                  vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

bool AnyTruncation(const SamplingParams& p) {
  return p.top_k > 0 || p.top_p < 1.0f || p.min_p > 0.0f || p.typical_p < 1.0f;
}

bool RepetitionOn(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f && p.repetition_penalty != 0.0f;
}

// The stages of stages/bitmask.h, bad_words.h, min_tokens.h and no_repeat_ngram.h.
bool OutputStagesOn(const SamplingParams& p) {
  const size_t output = p.output_token_ids().size();
  return !p.allowed_token_bitmask.empty() || !p.bad_words.empty() ||
         (p.min_tokens > 0 && !p.stop_token_ids.empty() &&
          output < static_cast<size_t>(p.min_tokens)) ||
         (p.no_repeat_ngram_size > 0 && output > 0);
}

bool ModifiesLogits(const SamplingParams& p) {
  const bool penalties =
      RepetitionOn(p) || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
  return !p.allowed_token_ids.empty() || !p.banned_token_ids.empty() || !p.logit_bias.empty() ||
         (penalties && !p.context_token_ids.empty()) || OutputStagesOn(p);
}

// The pipeline starts with STANDARD top-k on the logits as given (RunStages'
// TopKByLogits): after its candidate scan, no stage reads a logit outside the candidates.
bool TopKFirst(const SamplingParams& p, size_t vocab) {
  const size_t k = std::max(static_cast<size_t>(p.top_k),
                            static_cast<size_t>(p.min_tokens_to_keep));
  return p.preset == Preset::kStandard && p.temperature > 0.0f && p.top_k > 0 &&
         2 * k < vocab && !ModifiesLogits(p);
}

// Element i of `row` as float (exact).
float ElementOf(const LogitsView& row, size_t i) {
  const unsigned char* bytes = static_cast<const unsigned char*>(row.data);
  if (row.dtype == Dtype::kFloat32) {
    float v;
    std::memcpy(&v, bytes + 4 * i, sizeof(v));
    return v;
  }
  uint16_t bits;
  std::memcpy(&bits, bytes + 2 * i, sizeof(bits));
  return row.dtype == Dtype::kBFloat16 ? kernels::BFloat16ToFloat(bits)
                                       : kernels::Float16ToFloat(bits);
}

}  // namespace

absl::Status ValidateParams(const SamplingParams& p, size_t vocab_size) {
  if (vocab_size == 0) return Invalid("logits: must not be empty");
  if (vocab_size > static_cast<size_t>(kMaxVocab)) {
    return Invalid(absl::StrCat("logits: size ", vocab_size,
                                " exceeds the maximum vocabulary size ", kMaxVocab));
  }
  if (!(std::isfinite(p.temperature) && p.temperature >= 0.0f)) {
    return Invalid(absl::StrCat("params.temperature: must be finite and >= 0, got ",
                                p.temperature));
  }
  if (p.top_k < 0) return Invalid(absl::StrCat("params.top_k: must be >= 0, got ", p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return Invalid(absl::StrCat("params.top_p: must be in (0, 1], got ", p.top_p));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    return Invalid(absl::StrCat("params.min_p: must be in [0, 1], got ", p.min_p));
  }
  if (!(p.typical_p > 0.0f && p.typical_p <= 1.0f)) {
    return Invalid(absl::StrCat("params.typical_p: must be in (0, 1], got ", p.typical_p));
  }
  if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty >= 0.0f)) {
    return Invalid(absl::StrCat("params.repetition_penalty: must be finite and >= 0, got ",
                                p.repetition_penalty));
  }
  if (!std::isfinite(p.presence_penalty)) {
    return Invalid(
        absl::StrCat("params.presence_penalty: must be finite, got ", p.presence_penalty));
  }
  if (!std::isfinite(p.frequency_penalty)) {
    return Invalid(
        absl::StrCat("params.frequency_penalty: must be finite, got ", p.frequency_penalty));
  }
  if (p.num_samples < 1) {
    return Invalid(absl::StrCat("params.num_samples: must be >= 1, got ", p.num_samples));
  }
  if (p.num_samples > kMaxNumSamples) {
    return Invalid(absl::StrCat("params.num_samples: must be <= ", kMaxNumSamples, ", got ",
                                p.num_samples));
  }
  if (p.top_logprobs < 0 || p.top_logprobs > kMaxTopLogprobs) {
    return Invalid(absl::StrCat("params.top_logprobs: must be in [0, ", kMaxTopLogprobs,
                                "], got ", p.top_logprobs));
  }
  if (p.min_tokens_to_keep < 1) {
    return Invalid(
        absl::StrCat("params.min_tokens_to_keep: must be >= 1, got ", p.min_tokens_to_keep));
  }
  if (p.preset != Preset::kStandard && p.preset != Preset::kHf &&
      p.preset != Preset::kLlamaCpp && p.preset != Preset::kVllm) {
    return Invalid(
        absl::StrCat("params.preset: unknown value ", static_cast<int>(p.preset)));
  }
  if (p.logprobs_mode != LogprobsMode::kRaw && p.logprobs_mode != LogprobsMode::kProcessed &&
      p.logprobs_mode != LogprobsMode::kRawLogits &&
      p.logprobs_mode != LogprobsMode::kProcessedLogits) {
    return Invalid(absl::StrCat("params.logprobs_mode: unknown value ",
                                static_cast<int>(p.logprobs_mode)));
  }
  // logit_bias is a map in the API, so its path names the token id, not a position.
  for (const LogitBias& b : p.logit_bias) {
    if (b.token_id < 0 || static_cast<size_t>(b.token_id) >= vocab_size) {
      return Invalid(absl::StrCat("params.logit_bias[", b.token_id,
                                  "]: token id out of range [0, ", vocab_size, ")"));
    }
    if (!(std::isfinite(b.bias) || b.bias == -kInf)) {
      return Invalid(absl::StrCat("params.logit_bias[", b.token_id,
                                  "]: bias must be finite or -inf, got ", b.bias));
    }
  }
  if (p.logit_bias.size() > 1 && p.logit_bias.size() <= 32) {
    // Small maps (the usual case): pairwise, without allocating.
    for (size_t i = 1; i < p.logit_bias.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (p.logit_bias[i].token_id == p.logit_bias[j].token_id) {
          return Invalid(absl::StrCat("params.logit_bias[", p.logit_bias[i].token_id,
                                      "]: duplicate token id"));
        }
      }
    }
  } else if (p.logit_bias.size() > 32) {
    std::vector<int32_t> ids;
    ids.reserve(p.logit_bias.size());
    for (const LogitBias& b : p.logit_bias) ids.push_back(b.token_id);
    std::sort(ids.begin(), ids.end());
    for (size_t i = 1; i < ids.size(); ++i) {
      if (ids[i] == ids[i - 1]) {
        return Invalid(absl::StrCat("params.logit_bias[", ids[i], "]: duplicate token id"));
      }
    }
  }
  absl::Status s = CheckIds("params.allowed_token_ids", p.allowed_token_ids, vocab_size);
  if (!s.ok()) return s;
  s = CheckIds("params.banned_token_ids", p.banned_token_ids, vocab_size);
  if (!s.ok()) return s;
  s = CheckIds("context_token_ids", p.context_token_ids, vocab_size);
  if (!s.ok()) return s;
  return ValidateOutputParams(p, vocab_size);
}

// All per-row state. The vectors only grow, so a steady stream of rows allocates
// nothing here.
struct Sampler::Scratch {
  // The logits the stages read: the caller's float32 row itself when nothing modifies
  // it (no copy), else z_buf: decoded, then masked/biased/penalised. For a 16-bit row
  // whose first stage is top-k (TopKFirst), z_buf holds only the candidates' logits.
  // Valid during one Sample()/Distribution() call.
  const float* z = nullptr;
  std::vector<float> z_buf;
  size_t prescanned = 0;  // top-k candidates in ids that Process() scanned, else 0
  std::vector<float> raw;    // decoded logits kept for RAW logprobs when a stage edits z
  std::vector<float> w;      // unnormalised probabilities exp((z - max) / T)
  std::vector<float> dense;  // final weights by id when a large candidate set is densified
  std::vector<int32_t> ids;  // candidate token ids
  std::vector<int32_t> context;
  std::vector<uint8_t> allowed;
  std::vector<std::pair<double, int32_t>> scored;
  std::vector<double> log_probs;           // typical: log p of each candidate
  std::vector<hwy::uint128_t> score_keys;  // typical: (score bits, id) sort keys
  std::vector<std::pair<float, int32_t>> ranked;
  std::vector<double> cum;
  std::vector<float> probs;      // final probabilities by position (Distribution)
  std::vector<uint64_t> keys;    // 64-bit sort keys (top-p)
  DistributionSorter dist_sorter;  // Distribution's final order
  std::vector<std::pair<float, float>> sampled;  // (z, w) of a strided sample (top-p)
  std::vector<std::pair<float, float>> sampled_sorted;
  std::vector<float> floor_sample;  // top-k: strided logits for the starting bar
  std::vector<double> bucket_mass;  // top-p: mass per logit bucket of the listed set
  std::vector<uint16_t> listed_bucket;  // top-p: logit bucket of each listed id
  std::vector<float> listed_z, listed_w;  // top-p: logit and weight of each listed id
  std::vector<uint32_t> at_cut;  // top-p: positions of the listed ids in the cut bucket
  std::vector<double> block_sums;  // sums of w per kDrawBlock block (ExpSumBlocks)
  mutable std::vector<float> gathered;  // final weights of a sparse set, for the draw
  hwy::Sorter sorter;            // vectorised sort; owns its scratch
  std::vector<int32_t> ngram_work;                       // stages::BanRepeatedNgrams
  std::vector<std::pair<int32_t, int32_t>> vllm_work;    // stages::ApplyVllmPenalties
  SamplingParams vllm_greedy;  // a VLLM row with T < 1e-5, as greedy (Effective())

  // The processed distribution, set by Process().
  size_t vocab = 0;
  bool one_hot = false;      // greedy: all mass on `token`
  int32_t token = 0;
  bool dense_final = false;  // candidates are [0, vocab) with weights fin_w (0 = removed)
  const float* fin_w = nullptr;
  const double* fin_block_sums = nullptr;  // ExpSumBlocks' sums of fin_w, if it made them
  size_t n = 0;              // else candidates are ids[0, n), ascending
  double total = 0.0;        // sum of the final weights
  // RAW logprobs (valid when Process() was asked for them): the untouched logits are
  // raw_z, or, when it is null, the caller's row raw_row itself (read element by element;
  // Process() decoded none of it, or only top-k candidates).
  const float* raw_z = nullptr;
  LogitsView raw_row;
  double raw_lse = 0.0;
  float RawLogit(int32_t id) const {
    return raw_z != nullptr ? raw_z[id] : ElementOf(raw_row, static_cast<size_t>(id));
  }

  absl::Status Process(const LogitsView& logits, const SamplingParams& params, bool need_raw);
  // `params`, or for VLLM below kVllmGreedyTemperature a copy with temperature 0.
  const SamplingParams& Effective(const SamplingParams& params) {
    if (params.preset != Preset::kVllm || params.temperature >= kVllmGreedyTemperature ||
        params.temperature == 0.0f) {
      return params;
    }
    vllm_greedy = params;
    vllm_greedy.temperature = 0.0f;
    return vllm_greedy;
  }
  // The value of token `id` under `mode` in the processed distribution (after Process).
  float ProcessedValue(int32_t id, LogprobsMode mode) const;
  // The decoded caller's row (decodes it into `raw` on first use).
  const float* RawRow();
  // 1 + the tokens whose value under `mode` is >= token's, other than itself.
  int32_t Rank(int32_t token, LogprobsMode mode);
  // The support (p > 0) as a bitmask.
  void KeptSet(std::string* out) const;
  float temperature = 1.0f;  // of the processed distribution (1 when greedy)
  // The stages after masks and penalties, on z with maximum `max`.
  absl::Status RunStages(const SamplingParams& params, float max);
  double unit_sum = -1.0;  // sum of exp(z - max) when a stage computed it, else < 0

  // The final probability of token i (a candidate): the value Distribution() reports
  // and the draw accumulates.
  float Prob(int32_t i) const {
    return kernels::ProbOf(fin_w[i], total);
  }
  int32_t Draw(uint64_t seed, uint64_t step, uint32_t index) const;
  void DrawMany(uint64_t seed, uint64_t step, int32_t count, SampleResult* out);
  void TopLogprobs(int32_t count, LogprobsMode mode, std::vector<TokenLogprob>* out);
  // The final probability of any token (0 outside the support).
  float FinalProb(int32_t id) const;
  // Token `id`'s value under `mode`: what Sample.logprob reports.
  float ValueOf(int32_t id, LogprobsMode mode);
  // PRESET_VLLM after temperature: min-p -> top-k (ties kept) -> top-p.
  void RunVllmStages(const SamplingParams& params, float max);

 private:
  // Token a comes before token b in descending-logit order, ties to the lower id.
  bool Before(int32_t a, int32_t b) const {
    return z[a] > z[b] || (z[a] == z[b] && a < b);
  }
  // Sorts ids[0, n) by Before.
  void SortCandidates();
  absl::Status ApplyMasksAndPenalties(const SamplingParams& p);
  void Collect(bool by_weight);
  bool Candidate(size_t i, bool by_weight) const {
    return by_weight ? w[i] > 0.0f : z[i] > -kInf;
  }
  int64_t TopKScan(size_t k, const LogitsView* row, size_t* count);
  void CollectTopK(size_t k, bool by_weight, bool keep_ties);
  template <typename Keep>
  void AddTiesWithKth(Keep keep);
  void TopKByLogits(size_t k, bool keep_ties, float max, float temperature);
  double CandidateMass() const;
  void KeepTop(size_t count);
  void TopKExact(size_t k);
  void TopKHf(size_t k);
  void TopPStandard(double top_p, size_t min_keep);
  // REQUIRES: w and block_sums from ExpSumWithBlocks.
  bool TopPByThreshold(double top_p, size_t min_keep, float z_max, float temperature);
  // Removes from the least likely end while the float32 cumulative is <= threshold.
  void TopPHf(float threshold, size_t min_keep);
  void TopPLlama(float top_p, size_t min_keep);
  void MinPProb(float min_p, size_t min_keep);
  void MinPLlama(float min_p, size_t min_keep);
  void Typical(float typical_p, size_t min_keep, Preset preset);
  size_t MassCut(double target);
  double ExpSumWithBlocks(float max, float temperature);
  void Finalize();
};

namespace {
// "Reaches p" in STANDARD top-p and typical: cumulative mass >= p - kMassTolerance.
// Absorbs the float rounding of the probabilities so that a set whose exact mass is p
// stops there ([0.3, 0.1, 0.1, 0.5] at p = 0.8 keeps {0.5, 0.3}).
constexpr double kMassTolerance = 1e-6;

// A logit's bits as an unsigned key that orders like the logit; -0 is keyed as +0, since
// the candidate order ties them (by id), as Before does.
uint32_t LogitKey(float z) {
  const float v = z + 0.0f;  // -0 + 0 = +0
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return bits ^ (static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) | 0x80000000u);
}
}  // namespace

absl::Status Sampler::Scratch::ApplyMasksAndPenalties(const SamplingParams& p) {
  const size_t v = vocab;
  if (!p.allowed_token_ids.empty()) {
    allowed.assign(v, 0);
    for (int32_t id : p.allowed_token_ids) allowed[id] = 1;
    for (size_t i = 0; i < v; ++i) {
      if (!allowed[i]) z_buf[i] = -kInf;
    }
  }
  if (!p.allowed_token_bitmask.empty()) {
    stages::ApplyBitmask(p.allowed_token_bitmask.data, z_buf.data(), v, z_buf.data());
  }
  for (int32_t id : p.banned_token_ids) z_buf[id] = -kInf;
  stages::BanBadWords(p.bad_words, p.output_token_ids(), z_buf.data());
  stages::BanRepeatedNgrams(p.output_token_ids(), p.no_repeat_ngram_size, &ngram_work,
                            z_buf.data());
  stages::MaskStopTokens(p.min_tokens, p.output_token_ids().size(), p.stop_token_ids,
                         z_buf.data());
  const bool vllm = p.preset == Preset::kVllm;
  for (const LogitBias& b : p.logit_bias) {
    const float biased = z[b.token_id] + (vllm ? stages::VllmBias(b.bias) : b.bias);
    if (biased == kInf) {
      return Invalid(absl::StrCat("params.logit_bias[", b.token_id, "]: logit ",
                                  z[b.token_id], " + bias ", b.bias, " overflows to +inf"));
    }
    z_buf[b.token_id] = biased;
  }
  if (vllm) {
    return stages::ApplyVllmPenalties(p.context_token_ids, p.num_prompt_tokens,
                                      p.repetition_penalty, p.presence_penalty,
                                      p.frequency_penalty, &vllm_work, z_buf.data());
  }
  const bool repetition = RepetitionOn(p);
  if (p.context_token_ids.empty() ||
      (!repetition && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f)) {
    return absl::OkStatus();
  }
  context.assign(p.context_token_ids.begin(), p.context_token_ids.end());
  std::sort(context.begin(), context.end());
  for (size_t i = 0; i < context.size();) {
    const int32_t id = context[i];
    size_t j = i;
    while (j < context.size() && context[j] == id) ++j;
    const double count = static_cast<double>(j - i);
    i = j;
    float value = z[id];
    if (value == -kInf) continue;
    if (repetition) {
      value = value < 0.0f ? value * p.repetition_penalty : value / p.repetition_penalty;
    }
    const double shifted = static_cast<double>(value) - p.presence_penalty -
                           static_cast<double>(p.frequency_penalty) * count;
    value = static_cast<float>(shifted);
    if (value == kInf) {
      return Invalid(absl::StrCat("context_token_ids: the penalties turn the logit of token ",
                                  id, " into +inf"));
    }
    z_buf[id] = value;
  }
  return absl::OkStatus();
}

void Sampler::Scratch::Collect(bool by_weight) {
  ids.resize(vocab);
  size_t count = 0;
  for (size_t i = 0; i < vocab; ++i) {
    if (by_weight ? w[i] > 0.0f : z[i] > -kInf) ids[count++] = static_cast<int32_t>(i);
  }
  n = count;
}

// Top-k straight from the dense row without a candidate list of V: one pass keeps a
// buffer of at most 2k ids; when it fills, its best k stay (nth_element) and the k-th
// becomes the bar later tokens must beat. O(V) with one compare per token on typical
// rows. keep_ties (HF) adds, in a second pass, every token tied with the k-th.
void Sampler::Scratch::CollectTopK(size_t k, bool by_weight, bool keep_ties) {
  size_t count = 0;
  TopKScan(k, nullptr, &count);
  if (by_weight) {
    size_t kept = 0;
    for (size_t i = 0; i < count; ++i) {
      if (w[ids[i]] > 0.0f) ids[kept++] = ids[i];
    }
    count = kept;
  }
  n = count;
  KeepTop(k);
  if (keep_ties && n >= k) AddTiesWithKth([&](size_t i) { return Candidate(i, by_weight); });
}

// The candidate scan of both top-k paths (the SIMD kernel: a bar that later ids must
// beat strictly), into ids; returns the count. For a large k the bar starts at a floor
// guessed from a strided sample of the row, a logit that about 1.3k + 8 strides of tokens
// beat: the buffer then fills about once, where a bar starting at -inf refills a 2k
// buffer about ln(V / k) times (an nth_element over 2k ids each). The guess only
// changes the cost: if fewer than k tokens beat it, the scan runs again without it.
// With `row` (bf16 or fp16, not yet checked) the scan reads that row in place instead of
// z, finding the same candidates in the same order, and checks it: returns the first
// NaN/+inf index, else -1.
int64_t Sampler::Scratch::TopKScan(size_t k, const LogitsView* row, size_t* count) {
  constexpr size_t kSamples = 1024;
  float floor = -kInf;
  size_t cap = 2 * k + 64;
  if (k >= 256 && vocab >= 8 * kSamples) {
    const size_t stride = vocab / kSamples;
    const size_t rank = 13 * k / (10 * stride) + 8;  // about rank * stride tokens beat it
    if (rank < kSamples / 2) {
      floor_sample.resize(kSamples);
      bool finite = true;  // an unchecked row's sample may hold NaN/+inf: no guess then
      for (size_t j = 0; j < kSamples; ++j) {
        const size_t i = j * stride + stride / 2;
        floor_sample[j] = row == nullptr ? z[i] : ElementOf(*row, i);
        finite &= floor_sample[j] < kInf;
      }
      if (finite) {
        std::nth_element(floor_sample.begin(), floor_sample.begin() + rank,
                         floor_sample.end(), std::greater<float>());
        floor = floor_sample[rank];
        cap = std::max(cap, 2 * (rank + 8) * stride + 64);
      }
    }
  }
  ids.resize(std::max(vocab, cap));
  auto scan = [&](float from, size_t room) -> int64_t {
    float bar = 0.0f;
    if (row == nullptr) {
      *count = kernels::TopKCandidates(z, vocab, k, ids.data(), room, &bar, from);
      return -1;
    }
    return kernels::DecodeTopKCandidates(*row, k, ids.data(), room, count, &bar, from);
  };
  const int64_t bad = scan(floor, cap);
  if (bad >= 0 || *count >= k || floor == -kInf) return bad;
  return scan(-kInf, 2 * k + 64);
}

// The exact top k (ids[0, n)) holds the lowest ids of the group tied with the k-th; adds
// the rest of that group, the later tokens with the k-th's logit for which keep(id) holds.
template <typename Keep>
void Sampler::Scratch::AddTiesWithKth(Keep keep) {
  int32_t kth = ids[0];
  for (size_t i = 1; i < n; ++i) {
    if (Before(kth, ids[i])) kth = ids[i];
  }
  const float threshold = z[kth];
  int32_t last_tied = kth;
  for (size_t i = 0; i < n; ++i) {
    if (z[ids[i]] == threshold) last_tied = std::max(last_tied, ids[i]);
  }
  for (size_t i = static_cast<size_t>(last_tied) + 1; i < vocab; ++i) {
    if (z[i] == threshold && keep(i)) ids[n++] = static_cast<int32_t>(i);
  }
}

// Top-k before any exp over V (STANDARD and HF): the candidates come from one SIMD pass
// over z, and only they get a weight, the bits ExpSum would give them. A token whose
// weight underflows to 0 is no candidate, as in Collect(by_weight). keep_ties (HF) adds
// every later token tied with the k-th.
void Sampler::Scratch::TopKByLogits(size_t k, bool keep_ties, float max, float temperature) {
  size_t count = prescanned;
  if (count == 0) TopKScan(k, nullptr, &count);
  auto weigh = [&](size_t id) {
    return w[id] = kernels::ExpNonPositive((z[id] - max) / temperature);
  };
  size_t kept = 0;
  for (size_t i = 0; i < count; ++i) {
    if (weigh(ids[i]) > 0.0f) ids[kept++] = ids[i];
  }
  n = kept;
  KeepTop(k);
  if (keep_ties && n >= k) AddTiesWithKth([&](size_t i) { return weigh(i) > 0.0f; });
}

// In a fixed order that is not one chain of dependent adds: candidate i goes to lane
// i mod 4, then (lane 0 + lane 1) + (lane 2 + lane 3).
double Sampler::Scratch::CandidateMass() const {
  double lane[4] = {0.0, 0.0, 0.0, 0.0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (size_t j = 0; j < 4; ++j) lane[j] += w[ids[i + j]];
  }
  for (; i < n; ++i) lane[i % 4] += w[ids[i]];
  return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

// Moves the best `count` candidates (in Before order) to ids[0, count), unordered.
void Sampler::Scratch::KeepTop(size_t count) {
  if (count >= n) return;
  auto before = [this](int32_t a, int32_t b) { return Before(a, b); };
  std::nth_element(ids.begin(), ids.begin() + (count - 1), ids.begin() + n, before);
  n = count;
}

void Sampler::Scratch::TopKExact(size_t k) { KeepTop(k); }

void Sampler::Scratch::TopKHf(size_t k) {
  if (k >= n) return;
  const size_t all = n;
  KeepTop(k);
  const float threshold = z[ids[k - 1]];
  size_t keep = k;
  for (size_t j = k; j < all; ++j) {
    if (z[ids[j]] == threshold) std::swap(ids[keep++], ids[j]);
  }
  n = keep;
}

// The smallest c such that the best c candidates (Before order) have weight >= target,
// leaving them in ids[0, c) (unordered). Expected O(n): a quickselect that recurses
// only into the side holding the cut. Returns n if the whole set falls short. The
// decision sums differ from a sorted prefix sum only by double rounding, far below
// kMassTolerance.
size_t Sampler::Scratch::MassCut(double target) {
  if (target <= 0.0) return 0;
  auto before = [this](int32_t a, int32_t b) { return Before(a, b); };
  int32_t* data = ids.data();
  size_t lo = 0, hi = n;
  double acc = 0.0;  // weight of ids[0, lo), all before everything in [lo, hi)
  // Median-of-3 pivots can be defeated by crafted rows; after 2 log2(n) + 8 rounds the
  // rest is sorted instead, which bounds the worst case to O(n log n).
  int rounds_left = 8;
  for (size_t m = n; m > 1; m >>= 1) rounds_left += 2;
  while (hi - lo > 32 && rounds_left-- > 0) {
    int32_t a = data[lo], b = data[lo + (hi - lo) / 2], c = data[hi - 1];
    if (before(b, a)) std::swap(a, b);
    if (before(c, b)) std::swap(b, c);
    if (before(b, a)) std::swap(a, b);
    const int32_t pivot = b;
    int32_t* split_ptr = std::partition(data + lo, data + hi,
                                        [&](int32_t x) { return before(x, pivot); });
    const size_t split = static_cast<size_t>(split_ptr - data);
    for (size_t i = split; i < hi; ++i) {
      if (data[i] == pivot) {
        std::swap(data[i], data[split]);
        break;
      }
    }
    double mass = 0.0;
    for (size_t i = lo; i < split; ++i) mass += w[data[i]];
    if (acc + mass >= target) {
      hi = split;
      continue;
    }
    acc += mass + w[pivot];
    if (acc >= target) return split + 1;
    lo = split + 1;
  }
  std::sort(data + lo, data + hi, before);
  for (size_t i = lo; i < hi; ++i) {
    acc += w[data[i]];
    if (acc >= target) return i + 1;
  }
  return hi;
}

void Sampler::Scratch::TopPStandard(double top_p, size_t min_keep) {
  const double mass = CandidateMass();
  const size_t cut = MassCut((top_p - kMassTolerance) * mass);
  if (cut >= min_keep || cut >= n) {
    n = std::min(cut, n);
    return;
  }
  // ids[0, cut) are the best `cut`; pick the next best from the rest.
  const size_t want = std::min(min_keep, n);
  auto before = [this](int32_t a, int32_t b) { return Before(a, b); };
  std::nth_element(ids.begin() + cut, ids.begin() + (want - 1), ids.begin() + n, before);
  n = want;
}

// STANDARD top-p without listing or sorting V. The nucleus is a prefix of the
// descending order, so it lies inside any set {z >= t} whose mass reaches the target.
// t is guessed from a strided sample of the row (the sample's own nucleus, with a
// margin); one SIMD pass collects {z >= t} in ascending id order together with its
// mass; the exact cut (MassCut) runs on that set only. O(V) for the pass. Returns false
// (candidates undefined, the caller runs Collect + TopPStandard) when the guesses fall
// short or min_keep reaches past the set.
bool Sampler::Scratch::TopPByThreshold(double top_p, size_t min_keep, float z_max,
                                       float temperature) {
  constexpr size_t kSamples = 512;
  constexpr size_t kBuckets = 2048;
  if (vocab < 8 * kSamples || !(total > 0.0)) return false;
  const size_t stride = vocab / kSamples;
  sampled.clear();
  double sample_mass = 0.0;
  for (size_t j = 0; j < kSamples; ++j) {
    const size_t i = j * stride + stride / 2;
    if (w[i] > 0.0f) {
      sampled.push_back({z[i], w[i]});
      sample_mass += w[i];
    }
  }
  if (sampled.empty()) return false;
  // Two estimates of where the nucleus ends, in sample positions (descending z): the
  // sample's own nucleus (few samples, noisy), and the point above which the sampled tail
  // (many light tokens, each standing for `stride` of them) leaves at most 85% of the
  // mass top-p may drop (steadier: the tail is well sampled). Each with a margin; the
  // tighter one first, then the looser one (at least twice the first).
  // Sorted by z descending with one vectorised sort of (order-preserving z bits, index).
  keys.resize(sampled.size());
  for (size_t j = 0; j < sampled.size(); ++j) {
    keys[j] = (static_cast<uint64_t>(LogitKey(sampled[j].first)) << 32) | j;
  }
  sorter(keys.data(), keys.size(), hwy::SortDescending());
  sampled_sorted.resize(sampled.size());
  for (size_t j = 0; j < sampled.size(); ++j) {
    sampled_sorted[j] = sampled[static_cast<uint32_t>(keys[j])];
  }
  sampled.swap(sampled_sorted);
  size_t c = sampled.size() - 1;
  double acc = 0.0;
  for (size_t j = 0; j < sampled.size(); ++j) {
    acc += sampled[j].second;
    if (acc >= top_p * sample_mass) {
      c = j;
      break;
    }
  }
  const double droppable = 0.85 * (1.0 - top_p) * total;
  double below = 0.0;
  size_t tail_at = sampled.size() - 1;
  while (tail_at > 0) {
    below += static_cast<double>(stride) * sampled[tail_at].second;
    if (below > droppable) break;
    --tail_at;
  }
  const size_t by_tail = tail_at + tail_at / 2 + 4;
  const size_t by_head = c + c / 4 + 4;
  const size_t first_at = std::min(by_tail, by_head);
  const size_t second_at = std::max(std::max(by_tail, by_head), 2 * first_at + 16);
  ids.resize(vocab);
  // ExpSum's total carries float block partials (~1e-7 relative): the cut needs the mass
  // as exactly as Collect + TopPStandard's double sum, which ExpSumBlocks' double block
  // sums give.
  double all_mass = 0.0;
  for (double b : block_sums) all_mass += b;
  double target = 0.0;
  // Three tries: the two guesses, then (or at once, if a guess would list most of V) the
  // whole row, as on near-uniform rows whose nucleus is most of the vocabulary.
  size_t tries[3];
  size_t n_tries = 0;
  if (first_at < sampled.size()) tries[n_tries++] = first_at;
  if (second_at < sampled.size()) tries[n_tries++] = second_at;
  tries[n_tries++] = sampled.size();  // the whole row
  for (size_t attempt = 0; attempt < n_tries; ++attempt) {
    const size_t at = tries[attempt];
    const bool whole_row = at == sampled.size();
    double mass = 0.0;
    // The set's logits and weights come out compact next to its ids: the passes below
    // read them in order instead of one cache line per id.
    listed_z.resize(vocab);
    listed_w.resize(vocab);
    // The whole row: every token whose weight is at least exp(-100) (a lower one cannot
    // reach the cut unless the listed mass falls short, which is checked below).
    const float listed_from = whole_row ? z_max - 100.0f * temperature : sampled[at].first;
    const size_t count = kernels::CollectAtLeast(z, w.data(), vocab, listed_from, ids.data(),
                                                 &mass, listed_z.data(), listed_w.data());
    target = (top_p - kMassTolerance) * all_mass;
    // `mass` has float block partials: a margin well above their rounding. Should the
    // set's double sums still fall short, the cut below finds no bucket and we give up.
    if (!(mass >= target * (1.0 + 1e-5))) continue;
    size_t kept = count;
    if (!(kernels::ExpNonPositive((listed_from - z_max) / temperature) > 0.0f)) {
      kept = 0;  // zero weights sort last and never help reach the target: drop them
      for (size_t i = 0; i < count; ++i) {
        if (listed_w[i] > 0.0f) {
          ids[kept] = ids[i];
          listed_z[kept] = listed_z[i];
          listed_w[kept++] = listed_w[i];
        }
      }
    }
    if (min_keep > kept) return false;
    // ids[0, kept) is the set, ascending; it stays in place until the final filter.
    // Order it by (z descending, id ascending) through 64-bit keys (order-preserving
    // logit bits over the complemented id).
    auto key_of = [this](int32_t id) {
      return (static_cast<uint64_t>(LogitKey(z[id])) << 32) |
             (0xFFFFFFFFu - static_cast<uint32_t>(id));
    };
    // First a mass histogram of the set over buckets of z (monotone: a better bucket
    // means a strictly larger logit); only the bucket holding the cut gets sorted. Each
    // token's bucket is kept for the passes after it.
    // The buckets span [t, z_max]; for the whole row t is the lowest sampled logit and
    // the few tokens below it share the last bucket (still monotone).
    const float t = sampled[whole_row ? sampled.size() - 1 : at].first;
    const float scale = static_cast<float>(kBuckets) / std::max(z_max - t, 1e-30f);
    listed_bucket.resize(kept);
    kernels::LogitBuckets(listed_z.data(), kept, z_max, scale, kBuckets - 1,
                          listed_bucket.data());
    bucket_mass.assign(kBuckets, 0.0);
    for (size_t i = 0; i < kept; ++i) bucket_mass[listed_bucket[i]] += listed_w[i];
    // The first bucket where the running mass reaches the target: whole groups of
    // buckets first (their sums are independent), then the buckets of one group.
    constexpr size_t kGroup = 16;
    double acc = 0.0;
    size_t cut_bucket = kBuckets;
    for (size_t g = 0; g < kBuckets; g += kGroup) {
      double group = 0.0;
      for (size_t b = g; b < g + kGroup; ++b) group += bucket_mass[b];
      if (acc + group < target) {
        acc += group;
        continue;
      }
      for (size_t b = g; b < g + kGroup; ++b) {
        if (acc + bucket_mass[b] >= target) {
          cut_bucket = b;
          break;
        }
        acc += bucket_mass[b];
      }
      break;
    }
    if (cut_bucket == kBuckets) return false;  // the set falls short after all
    const uint16_t cut = static_cast<uint16_t>(cut_bucket);
    at_cut.resize(kept);
    size_t n_at_cut = 0;
    const size_t before_cut =
        kernels::SplitAtBucket(listed_bucket.data(), kept, cut, at_cut.data(), &n_at_cut);
    keys.clear();
    for (size_t j = 0; j < n_at_cut; ++j) keys.push_back(key_of(ids[at_cut[j]]));
    // The cut bucket is empty only when the target is <= 0 (it is bucket 0 then):
    // nothing is kept by mass and min_tokens_to_keep decides below.
    size_t kept_count = before_cut;
    uint64_t worst = 0;
    if (!keys.empty()) {
      std::sort(keys.begin(), keys.end(), std::greater<uint64_t>());
      worst = keys.back();
      for (uint64_t key : keys) {
        acc += w[0xFFFFFFFFu - static_cast<uint32_t>(key)];
        if (acc >= target) {
          worst = key;
          break;
        }
      }
      for (uint64_t key : keys) kept_count += key >= worst;
    }
    size_t out = 0;
    if (kept_count < min_keep) {
      // min_tokens_to_keep reaches past the cut: order the whole set instead.
      keys.resize(kept);
      for (size_t i = 0; i < kept; ++i) keys[i] = key_of(ids[i]);
      sorter(keys.data(), kept, hwy::SortDescending());
      worst = keys[min_keep - 1];
      for (size_t i = 0; i < kept; ++i) {
        const int32_t id = ids[i];
        ids[out] = id;
        out += key_of(id) >= worst;
      }
    } else {
      // The kept set is every key >= worst: a better bucket than the cut's, or the cut's
      // with a key >= worst. Filtered in place, in order, so that Finalize finds the ids
      // already sorted.
      float z_worst = -std::numeric_limits<float>::infinity();
      int32_t id_worst = std::numeric_limits<int32_t>::max();
      if (!keys.empty()) {
        id_worst = static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(worst));
        z_worst = z[id_worst] + 0.0f;
      }
      out = kernels::KeepAboveCut(ids.data(), listed_z.data(), listed_bucket.data(), kept, cut,
                                  z_worst, id_worst);
    }
    n = out;
    return true;
  }
  return false;
}

// Beyond a few hundred ids, one vectorised sort of 64-bit keys (LogitKey, complemented
// for descending, over the id) instead of std::sort with two indirect loads per
// comparison: ~12x faster at V = 128256.
void Sampler::Scratch::SortCandidates() {
  if (n < 512) {
    std::sort(ids.begin(), ids.begin() + n,
              [this](int32_t a, int32_t b) { return Before(a, b); });
    return;
  }
  keys.resize(n);
  for (size_t i = 0; i < n; ++i) {
    keys[i] = (static_cast<uint64_t>(~LogitKey(z[ids[i]])) << 32) | static_cast<uint32_t>(ids[i]);
  }
  sorter(keys.data(), n, hwy::SortAscending());
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(static_cast<uint32_t>(keys[i]));
}

void Sampler::Scratch::TopPHf(float threshold, size_t min_keep) {
  // transformers TopPLogitsWarper (and vLLM's): sort ascending, float32 softmax and
  // cumsum, remove where cumsum <= threshold (1 - top_p), always keep the last
  // min_tokens_to_keep.
  const double mass = CandidateMass();
  SortCandidates();
  float cum = 0.0f;
  size_t removed = 0;
  for (size_t i = n; i-- > 0;) {
    cum += static_cast<float>(static_cast<double>(w[ids[i]]) / mass);
    if (cum <= threshold) {
      ++removed;
    } else {
      break;
    }
  }
  n = std::max(n - removed, std::min(min_keep, n));
}

void Sampler::Scratch::TopPLlama(float top_p, size_t min_keep) {
  // llama.cpp top-p: sort descending, keep the smallest prefix whose float cumulative
  // probability is >= p and which holds at least min_keep tokens.
  const double mass = CandidateMass();
  SortCandidates();
  float cum = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    cum += static_cast<float>(static_cast<double>(w[ids[i]]) / mass);
    if (cum >= top_p && i + 1 >= min_keep) {
      n = i + 1;
      return;
    }
  }
}

void Sampler::Scratch::MinPProb(float min_p, size_t min_keep) {
  // Keeps p_i = float(w_i / mass) >= min_p * p_max. p is monotone in w, so p_max is the
  // largest w's, and the test is w_i >= w_min for the smallest float w_min that passes
  // (a binary search over the float bits): one division per probe instead of per token.
  const double mass = CandidateMass();
  auto prob = [mass](float wi) { return static_cast<float>(static_cast<double>(wi) / mass); };
  float w_max = 0.0f;
  for (size_t i = 0; i < n; ++i) w_max = std::max(w_max, w[ids[i]]);
  const float threshold = min_p * prob(w_max);
  uint32_t lo = 0;  // bits of a weight that may fail
  uint32_t hi;      // bits of a weight that passes (w_max does: min_p <= 1)
  std::memcpy(&hi, &w_max, sizeof(hi));
  if (prob(0.0f) >= threshold) hi = 0;
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    float wm;
    std::memcpy(&wm, &mid, sizeof(wm));
    (prob(wm) >= threshold ? hi : lo) = mid;
  }
  float w_min;
  std::memcpy(&w_min, &hi, sizeof(w_min));
  const size_t all = n;
  auto keep = std::partition(ids.begin(), ids.begin() + all,
                             [&](int32_t id) { return w[id] >= w_min; });
  const size_t kept = static_cast<size_t>(keep - ids.begin());
  if (kept >= min_keep) {
    n = kept;
  } else {
    KeepTop(std::min(min_keep, all));
  }
}

void Sampler::Scratch::MinPLlama(float min_p, size_t min_keep) {
  // llama.cpp min-p works on logits: keep z >= z_max + log(min_p).
  float z_max = -kInf;
  for (size_t i = 0; i < n; ++i) z_max = std::max(z_max, z[ids[i]]);
  const float threshold = z_max + std::log(min_p);
  const size_t all = n;
  auto keep = std::partition(ids.begin(), ids.begin() + all,
                             [&](int32_t id) { return z[id] >= threshold; });
  const size_t kept = static_cast<size_t>(keep - ids.begin());
  if (kept >= min_keep) {
    n = kept;
  } else {
    KeepTop(std::min(min_keep, all));
  }
}

void Sampler::Scratch::Typical(float typical_p, size_t min_keep, Preset preset) {
  const double mass = CandidateMass();
  const double log_mass = std::log(mass);
  double entropy = 0.0;
  log_probs.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float wi = w[ids[i]];
    if (wi > 0.0f) {
      const double lp = std::log(static_cast<double>(wi)) - log_mass;
      log_probs[i] = lp;
      entropy -= std::exp(lp) * lp;
    }
  }
  // Ordered by (score, id) through 128-bit keys (a non-negative double's bits order like
  // it), one vectorised sort.
  score_keys.resize(n);
  for (size_t i = 0; i < n; ++i) {
    double score = std::numeric_limits<double>::infinity();
    if (w[ids[i]] > 0.0f) score = std::fabs(-log_probs[i] - entropy);
    // transformers compares float32 scores: ties there are ties here.
    if (preset == Preset::kHf) score = static_cast<float>(score);
    uint64_t bits;
    std::memcpy(&bits, &score, sizeof(bits));
    score_keys[i].hi = bits;
    score_keys[i].lo = static_cast<uint32_t>(ids[i]);
  }
  if (n >= 512 && kernels::DispatchedTarget() != HWY_SCALAR) {
    sorter(score_keys.data(), n, hwy::SortAscending());
  } else {  // short, or a target whose vqsort has no 128-bit keys
    std::sort(score_keys.begin(), score_keys.end(),
              [](const hwy::uint128_t& a, const hwy::uint128_t& b) {
                return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
              });
  }
  scored.resize(n);
  for (size_t i = 0; i < n; ++i) {
    double score;
    std::memcpy(&score, &score_keys[i].hi, sizeof(score));
    scored[i] = {score, static_cast<int32_t>(score_keys[i].lo)};
  }
  size_t keep = n;
  if (preset == Preset::kStandard) {
    double cum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      cum += static_cast<double>(w[scored[i].second]) / mass;
      if (cum >= typical_p - kMassTolerance) {
        keep = i + 1;
        break;
      }
    }
    keep = std::max(keep, std::min(min_keep, n));
  } else if (preset == Preset::kHf) {
    // last = number of positions whose float32 cumulative mass is < p; remove the
    // tokens scoring strictly worse than the one at `last`.
    float cum = 0.0f;
    size_t last = 0;
    for (size_t i = 0; i < n; ++i) {
      cum += static_cast<float>(static_cast<double>(w[scored[i].second]) / mass);
      if (cum < typical_p) ++last;
    }
    last = std::min(last, n - 1);
    const double cutoff = scored[last].first;
    keep = last + 1;
    while (keep < n && scored[keep].first <= cutoff) ++keep;
    keep = std::max(keep, std::min(min_keep, n));
  } else {
    // llama.cpp: smallest prefix whose float cumulative mass is > p (strict), at least
    // min_keep tokens.
    float cum = 0.0f;
    for (size_t i = 0; i < n; ++i) {
      cum += static_cast<float>(static_cast<double>(w[scored[i].second]) / mass);
      if (cum > typical_p && i + 1 >= min_keep) {
        keep = i + 1;
        break;
      }
    }
  }
  for (size_t i = 0; i < keep; ++i) ids[i] = scored[i].second;
  n = keep;
}

// total = ExpSum over the row into w, with block_sums filled in the same pass.
double Sampler::Scratch::ExpSumWithBlocks(float max, float temperature) {
  block_sums.resize((vocab + kernels::kDrawBlock - 1) / kernels::kDrawBlock);
  return kernels::ExpSumBlocks(z, vocab, max, temperature, w.data(), block_sums.data());
}

// Puts the candidates in ascending id order and sums the final weights in that order; a
// set of more than V/8 is densified instead and summed by kernels::Sum (32 interleaved
// double lanes in id order: a fixed order, in SIMD).
void Sampler::Scratch::Finalize() {
  one_hot = false;
  fin_block_sums = nullptr;
  if (n * 8 <= vocab) {
    if (!std::is_sorted(ids.begin(), ids.begin() + n)) {
      if (n < 512) {
        std::sort(ids.begin(), ids.begin() + n);
      } else {
        sorter(ids.data(), n, hwy::SortAscending());  // vectorised: ~10x std::sort here
      }
    }
    dense_final = false;
    fin_w = w.data();
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += w[ids[i]];
    total = sum;
    return;
  }
  dense.assign(vocab, 0.0f);
  for (size_t i = 0; i < n; ++i) dense[ids[i]] = w[ids[i]];
  total = kernels::Sum(dense.data(), vocab);
  dense_final = true;
  fin_w = dense.data();
}

absl::Status Sampler::Scratch::Process(const LogitsView& logits,
                                       const SamplingParams& requested, bool need_raw) {
  absl::Status status = ValidateParams(requested, logits.size);
  if (!status.ok()) return status;
  const SamplingParams& params = Effective(requested);
  temperature = params.temperature == 0.0f ? 1.0f : params.temperature;
  z = nullptr;
  if (logits.data == nullptr) return Invalid("logits: data is null");
  if (logits.dtype != Dtype::kFloat32 && logits.dtype != Dtype::kBFloat16 &&
      logits.dtype != Dtype::kFloat16) {
    return Invalid(
        absl::StrCat("logits: unknown dtype ", static_cast<int>(logits.dtype)));
  }
  vocab = logits.size;
  if (params.temperature == 0.0f && !ModifiesLogits(params) &&
      (params.preset != Preset::kLlamaCpp || !AnyTruncation(params))) {
    // Greedy with nothing to apply first: one argmax pass over the caller's row, no
    // decoded copy; RAW logprobs add one exp pass over the row in place. A bad element
    // falls through to the regular path, which names it.
    size_t best = 0;
    float best_value = 0.0f;
    if (kernels::DecodeArgmaxSimd(logits, &best, &best_value) < 0) {
      if (best_value == -kInf) return Invalid("logits: every token is masked");
      one_hot = true;
      token = static_cast<int32_t>(best);
      raw_z = nullptr;
      raw_row = logits;
      if (need_raw) {
        raw_lse = best_value + std::log(kernels::ExpSumTotal(logits, best_value, 1.0f));
      }
      return absl::OkStatus();
    }
  }
  const bool modifies = ModifiesLogits(params);
  w.resize(vocab);
  float max = 0.0f;
  int64_t bad;
  prescanned = 0;
  bool z_sparse = false;  // z_buf holds only the top-k candidates
  if (logits.dtype != Dtype::kFloat32 && TopKFirst(params, vocab)) {
    // A 16-bit row that top-k cuts first: its candidate scan reads the row in place and
    // checks it, and only the candidates are decoded, into z_buf at their ids; the row's
    // maximum is theirs. No stage reads another logit (TopKFirst); RAW logprobs read
    // the caller's row (raw_row).
    const size_t k = std::max(static_cast<size_t>(params.top_k),
                              static_cast<size_t>(params.min_tokens_to_keep));
    size_t count = 0;
    bad = TopKScan(k, &logits, &count);
    z_buf.resize(vocab);
    z = z_buf.data();
    max = -kInf;
    for (size_t j = 0; bad < 0 && j < count; ++j) {
      const float v = ElementOf(logits, ids[j]);
      z_buf[ids[j]] = v;
      max = v > max ? v : max;
    }
    prescanned = count;
    z_sparse = true;
  } else if (logits.dtype == Dtype::kFloat32 && !modifies &&
             reinterpret_cast<uintptr_t>(logits.data) % alignof(float) == 0) {
    // Nothing will modify the logits: read the caller's row in place, no decoded copy.
    z = static_cast<const float*>(logits.data);
    bad = kernels::MaxChecked(z, vocab, &max);
  } else {
    z_buf.resize(vocab);
    z = z_buf.data();
    bad = kernels::DecodeAndMax(logits, z_buf.data(), &max);
  }
  if (bad >= 0) {
    // The decode pass stops at a bad element without storing it; read it here.
    const float value = ElementOf(logits, static_cast<size_t>(bad));
    return Invalid(
        absl::StrCat("logits[", bad, "]: must not be ", std::isnan(value) ? "NaN" : "+inf"));
  }
  if (max == -kInf) return Invalid("logits: every token is masked");
  raw_z = z_sparse ? nullptr : z;
  raw_row = logits;
  if (need_raw && modifies) {
    raw_lse = max + std::log(kernels::ExpSumTotal(z, vocab, max, 1.0f));
    raw.resize(vocab);
    std::memcpy(raw.data(), z, vocab * sizeof(float));
    raw_z = raw.data();
  }
  if (modifies) {
    status = ApplyMasksAndPenalties(params);
    if (!status.ok()) return status;
    max = kernels::Max(z, vocab);
    if (max == -kInf) return Invalid("logits: every token is masked");
  }
  unit_sum = -1.0;
  status = RunStages(params, max);
  if (!status.ok()) return status;
  if (need_raw && !modifies) {
    // The logits are untouched: a T = 1 pass of the pipeline already summed exp(z - max),
    // else sum it over the caller's row (the same values as z; a 16-bit row is half the
    // bytes).
    if (unit_sum < 0.0) unit_sum = kernels::ExpSumTotal(logits, max, 1.0f);
    raw_lse = max + std::log(unit_sum);
  }
  return absl::OkStatus();
}

absl::Status Sampler::Scratch::RunStages(const SamplingParams& params, float max) {
  const size_t min_keep = static_cast<size_t>(params.min_tokens_to_keep);
  const bool truncates = AnyTruncation(params);
  const float temperature = params.temperature;

  if (params.preset == Preset::kLlamaCpp) {
    // Truncations on softmax(z) (T = 1), temperature last.
    if (!truncates) {
      if (temperature == 0.0f) {
        one_hot = true;
        token = static_cast<int32_t>(kernels::Argmax(z, vocab));
        return absl::OkStatus();
      }
      total = ExpSumWithBlocks(max, temperature);
      if (temperature == 1.0f) unit_sum = total;
      one_hot = false;
      dense_final = true;
      fin_w = w.data();
      fin_block_sums = block_sums.data();
      return absl::OkStatus();
    }
    unit_sum = kernels::ExpSum(z, vocab, max, 1.0f, w.data());
    const size_t k = std::max(static_cast<size_t>(params.top_k), min_keep);
    if (params.top_k > 0 && 2 * k < vocab) {
      CollectTopK(k, /*by_weight=*/false, /*keep_ties=*/false);
    } else {
      Collect(/*by_weight=*/false);
      if (params.top_k > 0) TopKExact(k);
    }
    if (params.typical_p < 1.0f) Typical(params.typical_p, min_keep, Preset::kLlamaCpp);
    if (params.top_p < 1.0f) TopPLlama(params.top_p, min_keep);
    if (params.min_p > 0.0f) MinPLlama(params.min_p, min_keep);
    int32_t best = ids[0];
    for (size_t i = 1; i < n; ++i) {
      if (Before(ids[i], best)) best = ids[i];
    }
    if (temperature == 0.0f) {
      one_hot = true;
      token = best;
      return absl::OkStatus();
    }
    const float survivor_max = z[best];
    for (size_t i = 0; i < n; ++i) {
      // The kernels' exp, not libm's: the same bits on every machine.
      w[ids[i]] = kernels::ExpNonPositive((z[ids[i]] - survivor_max) / temperature);
    }
    Finalize();
    return absl::OkStatus();
  }

  if (temperature == 0.0f) {
    one_hot = true;
    token = static_cast<int32_t>(kernels::Argmax(z, vocab));
    return absl::OkStatus();
  }
  if (params.preset == Preset::kVllm) {
    RunVllmStages(params, max);
    return absl::OkStatus();
  }
  const size_t k = std::max(static_cast<size_t>(params.top_k), min_keep);
  const bool hf = params.preset == Preset::kHf;
  bool top_p_done = false;
  if (params.top_k > 0 && 2 * k < vocab) {
    // No exp over V: the later stages renormalise over the survivors anyway.
    TopKByLogits(k, /*keep_ties=*/hf, max, temperature);
  } else {
    // Block sums serve the dense draw and the exact mass of top-p by threshold.
    const bool by_threshold = !hf && params.top_k == 0 && params.top_p < 1.0f;
    total = !truncates || by_threshold
                ? ExpSumWithBlocks(max, temperature)
                : kernels::ExpSum(z, vocab, max, temperature, w.data());
    if (temperature == 1.0f) unit_sum = total;
    if (!truncates) {
      one_hot = false;
      dense_final = true;
      fin_w = w.data();
      fin_block_sums = block_sums.data();
      return absl::OkStatus();
    }
    if (by_threshold && TopPByThreshold(params.top_p, min_keep, max, temperature)) {
      top_p_done = true;
    } else {
      Collect(/*by_weight=*/true);
    }
    if (params.top_k > 0) {
      if (hf) {
        TopKHf(k);
      } else {
        TopKExact(k);
      }
    }
  }
  if (!hf) {
    if (params.top_p < 1.0f && !top_p_done) TopPStandard(params.top_p, min_keep);
    if (params.min_p > 0.0f) MinPProb(params.min_p, min_keep);
    if (params.typical_p < 1.0f) Typical(params.typical_p, min_keep, Preset::kStandard);
  } else {
    if (params.top_p < 1.0f) {
      TopPHf(static_cast<float>(1.0 - DecimalValue(params.top_p)), min_keep);
    }
    if (params.min_p > 0.0f) MinPProb(params.min_p, min_keep);
    if (params.typical_p < 1.0f) Typical(params.typical_p, min_keep, Preset::kHf);
  }
  Finalize();
  return absl::OkStatus();
}

void Sampler::Scratch::RunVllmStages(const SamplingParams& params, float max) {
  const size_t min_keep = static_cast<size_t>(params.min_tokens_to_keep);
  const size_t k = std::max(static_cast<size_t>(params.top_k), min_keep);
  const float t = params.temperature;
  if (!AnyTruncation(params)) {
    total = ExpSumWithBlocks(max, t);
    if (t == 1.0f) unit_sum = total;
    one_hot = false;
    dense_final = true;
    fin_w = w.data();
    fin_block_sums = block_sums.data();
    return;
  }
  if (params.min_p == 0.0f && params.top_k > 0 && 2 * k < vocab) {
    TopKByLogits(k, /*keep_ties=*/true, max, t);  // top-k is the first cut
  } else {
    total = kernels::ExpSum(z, vocab, max, t, w.data());
    if (t == 1.0f) unit_sum = total;
    Collect(/*by_weight=*/true);
    if (params.min_p > 0.0f) MinPProb(params.min_p, min_keep);
    if (params.top_k > 0) TopKHf(k);
  }
  if (params.top_p < 1.0f) TopPHf(stages::VllmTopPThreshold(params.top_p), min_keep);
  Finalize();
}

int32_t Sampler::Scratch::Draw(uint64_t seed, uint64_t step, uint32_t index) const {
  if (one_hot) return token;
  const double u = DrawUniform(seed, step, index);
  if (dense_final) {
    // The same walk, decided from SIMD block sums (kernels_hwy.h); exact by contract.
    const int64_t picked = kernels::PickDense(fin_w, vocab, total, u, fin_block_sums);
    if (picked >= 0) return static_cast<int32_t>(picked);
  } else if (n >= 4 * kernels::kDrawBlock) {
    // A large sparse set: the same walk over its weights gathered in id order.
    gathered.resize(n);
    for (size_t i = 0; i < n; ++i) gathered[i] = fin_w[ids[i]];
    const int64_t picked = kernels::PickDense(gathered.data(), n, total, u);
    if (picked >= 0) return ids[picked];
  }
  const size_t count = dense_final ? vocab : n;
  auto id_at = [&](size_t i) {
    return dense_final ? static_cast<int32_t>(i) : ids[i];
  };
  double cum_n = 0.0;
  for (size_t i = 0; i < count; ++i) {
    const float p = Prob(id_at(i));
    if (p > 0.0f) cum_n += p;
  }
  const double target = u * cum_n;
  double cum = 0.0;
  int32_t last = id_at(0);
  for (size_t i = 0; i < count; ++i) {
    const int32_t id = id_at(i);
    const float p = Prob(id);
    if (p > 0.0f) {
      cum += p;
      last = id;
      if (cum > target) return id;
    }
  }
  return last;
}

void Sampler::Scratch::DrawMany(uint64_t seed, uint64_t step, int32_t count,
                                SampleResult* out) {
  if (one_hot || count == 1) {
    for (int32_t s = 0; s < count; ++s) {
      out->samples[s].token_id = Draw(seed, step, static_cast<uint32_t>(s));
    }
    return;
  }
  // Several draws: one cumulative array, then a binary search per draw. cum[i] is the
  // same double as the walk in Draw() computes, so the tokens are identical.
  const size_t m = dense_final ? vocab : n;
  auto id_at = [&](size_t i) {
    return dense_final ? static_cast<int32_t>(i) : ids[i];
  };
  cum.resize(m);
  double acc = 0.0;
  int32_t last = id_at(0);
  for (size_t i = 0; i < m; ++i) {
    const float p = Prob(id_at(i));
    if (p > 0.0f) {
      acc += p;
      last = id_at(i);
    }
    cum[i] = acc;
  }
  for (int32_t s = 0; s < count; ++s) {
    const double target = DrawUniform(seed, step, static_cast<uint32_t>(s)) * acc;
    const auto it = std::upper_bound(cum.begin(), cum.begin() + m, target);
    out->samples[s].token_id =
        it == cum.begin() + m ? last : id_at(static_cast<size_t>(it - cum.begin()));
  }
}

void Sampler::Scratch::TopLogprobs(int32_t count, LogprobsMode mode,
                                   std::vector<TokenLogprob>* out) {
  const bool raw_mode = mode == LogprobsMode::kRaw || mode == LogprobsMode::kRawLogits;
  out->clear();
  if (count <= 0) return;
  const size_t want = std::min(static_cast<size_t>(count), vocab);
  // (value, id), best first; `value` is a raw logit or a final probability. Scanning
  // ids in ascending order and inserting only strictly better values breaks ties by id.
  ranked.clear();
  auto offer = [&](float value, int32_t id) {
    if (ranked.size() == want && !(value > ranked.back().first)) return;
    auto pos = ranked.end();
    while (pos != ranked.begin() && value > (pos - 1)->first) --pos;
    if (ranked.size() == want) ranked.pop_back();
    ranked.insert(pos, {value, id});
  };
  if (raw_mode) {
    const float* row = RawRow();
    for (size_t i = 0; i < vocab; ++i) offer(row[i], static_cast<int32_t>(i));
    for (const auto& [value, id] : ranked) out->push_back({id, ValueOf(id, mode)});
    return;
  }
  if (one_hot) {
    offer(1.0f, token);
    for (size_t i = 0; i < vocab && ranked.size() < want; ++i) {
      if (static_cast<int32_t>(i) != token) ranked.push_back({0.0f, static_cast<int32_t>(i)});
    }
  } else if (dense_final) {
    for (size_t i = 0; i < vocab; ++i) offer(Prob(static_cast<int32_t>(i)), static_cast<int32_t>(i));
  } else {
    for (size_t i = 0; i < n; ++i) {
      const float p = Prob(ids[i]);
      if (p > 0.0f) offer(p, ids[i]);
    }
    // Pad with probability-0 tokens, lowest ids first.
    for (size_t i = 0; i < vocab && ranked.size() < want; ++i) {
      const int32_t id = static_cast<int32_t>(i);
      const bool positive = std::binary_search(ids.begin(), ids.begin() + n, id) && Prob(id) > 0.0f;
      if (!positive) ranked.push_back({0.0f, id});
    }
  }
  for (const auto& [p, id] : ranked) {
    out->push_back({id, p > 0.0f ? ValueOf(id, mode) : -kInf});
  }
}

const float* Sampler::Scratch::RawRow() {
  if (raw_z == nullptr) {
    // Scan a decoded copy of the caller's row rather than decode element by element.
    raw.resize(vocab);
    float ignored;
    kernels::DecodeAndMax(raw_row, raw.data(), &ignored);
    raw_z = raw.data();
  }
  return raw_z;
}

float Sampler::Scratch::FinalProb(int32_t id) const {
  if (one_hot) return id == token ? 1.0f : 0.0f;
  if (dense_final || std::binary_search(ids.begin(), ids.begin() + n, id)) return Prob(id);
  return 0.0f;  // ids[0, n) is ascending after Finalize
}

float Sampler::Scratch::ValueOf(int32_t id, LogprobsMode mode) {
  switch (mode) {
    case LogprobsMode::kRaw:
      return static_cast<float>(static_cast<double>(RawLogit(id)) - raw_lse);
    case LogprobsMode::kRawLogits:
      return RawLogit(id);
    case LogprobsMode::kProcessed: {
      if (one_hot) return id == token ? 0.0f : -kInf;
      return static_cast<float>(std::log(static_cast<double>(FinalProb(id))));
    }
    case LogprobsMode::kProcessedLogits:
    default: {
      if (FinalProb(id) == 0.0f) return -kInf;
      // Greedy's fast path reads the caller's row and sets no z: the logit is the raw one.
      const float logit = z != nullptr ? z[id] : RawLogit(id);
      return one_hot ? logit : logit / temperature;
    }
  }
}

int32_t Sampler::Scratch::Rank(int32_t id, LogprobsMode mode) {
  int32_t count = 0;
  if (mode == LogprobsMode::kRaw || mode == LogprobsMode::kRawLogits) {
    // The raw logprob order is the raw logit order: one counting pass over the row.
    const float* row = RawRow();
    const float v = row[id];
    for (size_t i = 0; i < vocab; ++i) count += row[i] >= v;
    return count;
  }
  if (one_hot) return 1;
  // Processed: only the support can tie or beat a sampled token (p > 0).
  const bool by_logit = mode == LogprobsMode::kProcessedLogits;
  const float v = by_logit ? ValueOf(id, mode) : Prob(id);
  auto add = [&](int32_t i) {
    const float p = Prob(i);
    if (p > 0.0f) count += (by_logit ? z[i] / temperature : p) >= v;
  };
  if (dense_final) {
    for (size_t i = 0; i < vocab; ++i) add(static_cast<int32_t>(i));
  } else {
    for (size_t i = 0; i < n; ++i) add(ids[i]);
  }
  return count;
}

void Sampler::Scratch::KeptSet(std::string* out) const {
  out->assign(stages::BitmaskBytes(vocab), '\0');
  uint8_t* bits = reinterpret_cast<uint8_t*>(&(*out)[0]);
  if (one_hot) {
    stages::BitmaskSet(bits, static_cast<size_t>(token));
  } else if (dense_final) {
    for (size_t i = 0; i < vocab; ++i) {
      if (Prob(static_cast<int32_t>(i)) > 0.0f) stages::BitmaskSet(bits, i);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      if (Prob(ids[i]) > 0.0f) stages::BitmaskSet(bits, static_cast<size_t>(ids[i]));
    }
  }
}

Sampler::Sampler() : scratch_(std::make_unique<Scratch>()) {}
Sampler::~Sampler() = default;

absl::Status Sampler::Sample(LogitsView logits, const SamplingParams& params, uint64_t step,
                             SampleResult* out) {
  Scratch& s = *scratch_;
  const LogprobsMode mode = params.logprobs_mode;
  absl::Status status = s.Process(
      logits, params, mode == LogprobsMode::kRaw || mode == LogprobsMode::kRawLogits);
  if (!status.ok()) return status;
  out->samples.resize(static_cast<size_t>(params.num_samples));
  s.DrawMany(params.seed, step, params.num_samples, out);
  std::vector<TokenLogprob>& top = out->samples[0].top_logprobs;
  s.TopLogprobs(params.top_logprobs, mode, &top);
  std::vector<TokenLogprob>& asked = out->samples[0].token_logprobs;
  asked.clear();
  for (int32_t id : params.logprob_token_ids) asked.push_back({id, s.ValueOf(id, mode)});
  const bool ranks = params.top_logprobs > 0 || !params.logprob_token_ids.empty();
  for (size_t i = 0; i < out->samples.size(); ++i) {
    ::tokensampler::sampler::Sample& sample = out->samples[i];
    if (i > 0) {
      sample.top_logprobs = top;
      sample.token_logprobs = asked;
    }
    sample.logprob = s.ValueOf(sample.token_id, mode);
    // Draws of one row often repeat a token: its rank is counted once.
    const bool repeat = i > 0 && sample.token_id == out->samples[i - 1].token_id;
    sample.rank = !ranks ? 0
                  : repeat ? out->samples[i - 1].rank
                           : s.Rank(sample.token_id, mode);
  }
  if (params.return_kept_set) {
    s.KeptSet(&out->kept_set);
  } else {
    out->kept_set.clear();
  }
  return absl::OkStatus();
}

absl::Status Sampler::Distribution(LogitsView logits, const SamplingParams& params,
                                   DistributionResult* out) {
  Scratch& s = *scratch_;
  absl::Status status = s.Process(logits, params, /*need_raw=*/false);
  if (!status.ok()) return status;
  if (s.one_hot) {
    out->token_ids.assign(1, s.token);
    out->probs.assign(1, 1.0f);
    return absl::OkStatus();
  }
  // The sort resizes the answer's vectors and writes every entry: not clearing them
  // first saves zero-filling a reused result's V entries.
  const size_t count = s.dense_final ? s.vocab : s.n;
  const float* probs;
  if (s.dense_final && s.fin_w == s.w.data()) {
    // In place: nothing reads the weights after this, and the row stays in cache.
    kernels::Probs(s.fin_w, count, s.total, s.w.data());
    probs = s.w.data();
  } else {
    s.probs.resize(count);
    if (s.dense_final) {
      kernels::Probs(s.fin_w, count, s.total, s.probs.data());
    } else {
      for (size_t i = 0; i < count; ++i) s.probs[i] = s.Prob(s.ids[i]);
    }
    probs = s.probs.data();
  }
  s.dist_sorter.Sort(probs, s.dense_final ? nullptr : s.ids.data(), count, &out->token_ids,
                     &out->probs);
  return absl::OkStatus();
}

const char* SimdTargetName() { return hwy::TargetName(kernels::DispatchedTarget()); }

}  // namespace tokensampler::sampler
