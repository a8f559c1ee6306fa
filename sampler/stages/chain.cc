// The chain of each preset, as a table, and the step that turns the surviving candidate
// set into the processed distribution.
#include "sampler/stages/stages.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sampler/kernels.h"
#include "sampler/processed_distribution.h"
#include "sampler/stages/xtc.h"
#include "sampler/stages/vllm.h"
#include "sampler/workspace.h"

namespace tokensampler::sampler::stages {

namespace {

size_t MinKeep(const SamplingParams& p) { return static_cast<size_t>(p.min_tokens_to_keep); }

// Each row runs its stage when the stage's parameter is on.
using StageFn = void (*)(Workspace&, const SamplingParams&);
struct ChainRow {
  Preset preset;
  StageFn run;
};

void TopPStandardRow(Workspace& ws, const SamplingParams& p) {
  if (p.top_p < 1.0f && !ws.top_p_done) TopPStandard(ws, p.top_p, MinKeep(p));
}
void TopPHfRow(Workspace& ws, const SamplingParams& p) {
  if (p.top_p < 1.0f) TopPHf(ws, p.top_p, MinKeep(p));
}
void TopPLlamaRow(Workspace& ws, const SamplingParams& p) {
  if (p.top_p < 1.0f) TopPLlama(ws, p.top_p, MinKeep(p));
}
void MinPProbRow(Workspace& ws, const SamplingParams& p) {
  if (p.min_p > 0.0f) MinPProb(ws, p.min_p, MinKeep(p));
}
// VLLM's min-p keeps the candidates' order (that of MinPByLogits, which RunStages tries
// first and which then did the cut).
void MinPVllmRow(Workspace& ws, const SamplingParams& p) {
  if (p.min_p > 0.0f && !ws.min_p_done) MinPProb(ws, p.min_p, MinKeep(p), /*keep_order=*/true);
}
void MinPLlamaRow(Workspace& ws, const SamplingParams& p) {
  if (p.min_p > 0.0f) MinPLlama(ws, p.min_p, MinKeep(p));
}
void TypicalRow(Workspace& ws, const SamplingParams& p) {
  if (p.typical_p < 1.0f) Typical(ws, p.typical_p, MinKeep(p), p.preset);
}
// XTC on the candidates' weights (LLAMA_CPP: at T = 1; STANDARD: at T), when its coin
// came up (Workspace::xtc_fires, set by RunStages).
void XtcRow(Workspace& ws, const SamplingParams& p) {
  if (!ws.xtc_fires) return;
  ws.n = XtcCut(absl::MakeSpan(ws.ids.data(), ws.n), ws.w.data(), ws.z, CandidateMass(ws),
                p.xtc_threshold, MinKeep(p));
}
// VLLM cuts top-k after min-p; without min-p it ran first, on the logits (Process).
void TopKAfterMinPRow(Workspace& ws, const SamplingParams& p) {
  if (p.top_k > 0 && p.min_p > 0.0f) {
    TopKHf(ws, std::max(static_cast<size_t>(p.top_k), MinKeep(p)));
  }
}
void TopPVllmRow(Workspace& ws, const SamplingParams& p) {
  if (p.top_p < 1.0f) TopPAscending(ws, VllmTopPThreshold(p.top_p), MinKeep(p));
}

constexpr ChainRow kChain[] = {
    // STANDARD: top-k -> top-p -> min-p -> typical -> XTC -> draw (DRY and top-n-sigma
    // on the logits, then temperature, first).
    {Preset::kStandard, TopPStandardRow},
    {Preset::kStandard, MinPProbRow},
    {Preset::kStandard, TypicalRow},
    {Preset::kStandard, XtcRow},
    // HF: top-k (ties kept) -> top-p -> min-p -> typical (temperature first).
    {Preset::kHf, TopPHfRow},
    {Preset::kHf, MinPProbRow},
    {Preset::kHf, TypicalRow},
    // llama.cpp: (DRY -> top-n-sigma on the logits ->) top-k -> typical -> top-p -> min-p
    // -> XTC on softmax(z), temperature (or dynamic) last.
    {Preset::kLlamaCpp, TypicalRow},
    {Preset::kLlamaCpp, TopPLlamaRow},
    {Preset::kLlamaCpp, MinPLlamaRow},
    {Preset::kLlamaCpp, XtcRow},
    // vLLM v1: min-p -> top-k (ties kept) -> top-p (temperature first); llama.cpp's other
    // samplers are rejected (validate_chain.cc).
    {Preset::kVllm, MinPVllmRow},
    {Preset::kVllm, TopKAfterMinPRow},
    {Preset::kVllm, TopPVllmRow},
};

}  // namespace

void RunChain(Workspace& ws, const SamplingParams& p) {
  for (const ChainRow& row : kChain) {
    if (row.preset == p.preset) row.run(ws, p);
  }
}

// The candidate set ids[0, n) with weights w becomes the distribution: sparse (ids
// ascending, weights summed in that order) up to V/8 candidates, else dense, summed by
// kernels::Sum (32 interleaved double lanes in id order: a fixed order, in SIMD).
void Finalize(Workspace& ws, ProcessedDistribution* dist) {
  std::vector<float>& weights = *dist->weight_buffer();
  const size_t n = ws.n;
  if (n * 8 <= ws.vocab) {
    if (!std::is_sorted(ws.ids.begin(), ws.ids.begin() + n)) {
      if (n < kVectorSortMinSize) {
        std::sort(ws.ids.begin(), ws.ids.begin() + n);
      } else {
        ws.sorter(ws.ids.data(), n, hwy::SortAscending());
      }
    }
    weights.resize(n);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      weights[i] = ws.w[ws.ids[i]];
      sum += weights[i];
    }
    dist->SetSparse(ws.vocab, &ws.ids, &weights, n, sum);
    return;
  }
  weights.assign(ws.vocab, 0.0f);
  for (size_t i = 0; i < n; ++i) weights[ws.ids[i]] = ws.w[ws.ids[i]];
  const double total = kernels::Sum(weights.data(), ws.vocab);
  dist->SetDense(ws.vocab, &weights, total, nullptr);
}

}  // namespace tokensampler::sampler::stages
