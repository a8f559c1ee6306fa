// The stages of the pipeline, one file per family under sampler/stages/. Each works on
// the Workspace's logits z, weights w and candidate set ids[0, n); the chain of each
// preset is the table in sampler/stages/chain.cc. Adding a stage: a file here, its
// declaration below, a row in that table.
#ifndef TOKENSAMPLER_SAMPLER_STAGES_STAGES_H_
#define TOKENSAMPLER_SAMPLER_STAGES_STAGES_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "sampler/params.h"
#include "sampler/processed_distribution.h"
#include "sampler/workspace.h"

namespace tokensampler::sampler::stages {

// "Reaches p" in STANDARD top-p and typical: cumulative mass >= p - kMassTolerance.
// Absorbs the float rounding of the probabilities so that a set whose exact mass is p
// stops there ([0.3, 0.1, 0.1, 0.5] at p = 0.8 keeps {0.5, 0.3}).
inline constexpr double kMassTolerance = 1e-6;

// ---- chain.cc ----
// Runs the truncations of p.preset's chain, in its order, on the candidate set formed by
// Process (top-k first, or every token with weight).
void RunChain(Workspace& ws, const SamplingParams& p);
// The candidate set ids[0, n) with weights w becomes the distribution: sparse (ids
// ascending, weights summed in that order) up to V/8 candidates, else dense, summed by
// kernels::Sum (32 interleaved double lanes in id order: a fixed order, in SIMD).
void Finalize(Workspace& ws, ProcessedDistribution* dist);

// ---- masks_penalties.cc ----
// The repetition penalty is on (neither 1 nor 0).
bool RepetitionOn(const SamplingParams& p);
// Some stage of bad_words.h, min_tokens.h or no_repeat_ngram.h is on.
bool OutputStagesOn(const SamplingParams& p);
// Some mask, bias or penalty edits the logits, or a token bitmask masks them.
bool ModifiesLogits(const SamplingParams& p);
// Some mask, bias or penalty edits the logits in z_buf (ApplyMasksAndPenalties, DRY,
// top-n-sigma): ModifiesLogits but for the token bitmask, which the first pass over the
// row applies as it reads (kernels.h), never a stage.
bool EditsLogits(const SamplingParams& p);
// Applies allowed ids, banned ids, bad words, no_repeat_ngram, min_tokens, logit_bias
// (clamped for VLLM) and the penalties (VLLM's split for VLLM) to z_buf (z == z_buf,
// the token bitmask already applied by the decode).
// Errors (INVALID_ARGUMENT) when a bias or penalty turns a logit into +inf.
absl::Status ApplyMasksAndPenalties(Workspace& ws, const SamplingParams& p);

// The context tokens the repetition, presence and frequency penalties count: the last
// penalty_last_n of them, or all.
absl::Span<const int32_t> PenaltyWindow(const SamplingParams& p);

// ---- top_k.cc ----
// The candidate scan of the top-k paths into ids; *count receives the count. With `row`
// (bf16 or fp16, not yet checked) the scan reads that row in place instead of z and
// checks it: returns the first NaN/+inf index, else -1. Tokens ws.bitmask masks are never
// candidates.
int64_t TopKScan(Workspace& ws, size_t k, const LogitsView* row, size_t* count);
// Top-k straight from the row: candidates with w > 0 (by_weight) or z > -inf.
// keep_ties (HF) adds every later token tied with the k-th.
void CollectTopK(Workspace& ws, size_t k, bool by_weight, bool keep_ties);
// Top-k before any exp over V: only the candidates get a weight (ExpSum's bits).
void TopKByLogits(Workspace& ws, size_t k, bool keep_ties, float max, float temperature);
// HF top-k on the candidate set: the best k and every token tied with the k-th.
void TopKHf(Workspace& ws, size_t k);

// ---- top_p.cc ----
// STANDARD top-p: the smallest best-first prefix reaching top_p of the mass.
void TopPStandard(Workspace& ws, double top_p, size_t min_keep);
// STANDARD top-p on the whole row (w and block_sums from ExpSumBlocks, total their
// ExpSum total) without listing or sorting V. Returns false, candidates undefined, when
// it cannot decide (the caller then runs Collect + TopPStandard).
bool TopPByThreshold(Workspace& ws, double top_p, size_t min_keep, float z_max,
                     float temperature);
void TopPHf(Workspace& ws, float top_p, size_t min_keep);
// The rule of TopPHf with the threshold given: sort ascending, remove while the float32
// cumulative probability is <= threshold, keep at least min_keep (VLLM: 1 - p in float).
void TopPAscending(Workspace& ws, float threshold, size_t min_keep);
void TopPLlama(Workspace& ws, float top_p, size_t min_keep);

// ---- min_p_typical.cc ----
// Min-p on the candidates' probabilities: keeps p >= min_p * p_max, or the best min_keep.
// With keep_order the kept candidates stay in their order (VLLM, whose MinPByLogits
// lists them ascending), else in no particular order.
void MinPProb(Workspace& ws, float min_p, size_t min_keep, bool keep_order = false);
// VLLM's min-p (first, before top-k) over the whole row without an exp pass over it:
// the tokens whose logit is at least z_max + T (log(min_p) - a margin), listed in one
// SIMD pass, are the only ones that may pass; their weights decide. Leaves exactly the
// candidates (ascending, weights set) and order that Collect(by_weight) + MinPProb(
// keep_order) leave, and returns true; returns false, candidates undefined, when a weight
// lies too close to the cut for the float rounding of p = w / mass not to matter, when
// fewer than min_keep pass, or when min_p < 1e-20 (the caller then takes that path).
// REQUIRES: w has room for V; z_max the row's maximum (finite); temperature > 0.
bool MinPByLogits(Workspace& ws, float min_p, size_t min_keep, float z_max, float temperature);
void MinPLlama(Workspace& ws, float min_p, size_t min_keep);
void Typical(Workspace& ws, float typical_p, size_t min_keep, Preset preset);

}  // namespace tokensampler::sampler::stages

#endif  // TOKENSAMPLER_SAMPLER_STAGES_STAGES_H_
