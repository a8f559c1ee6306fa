// Samples in-process with an installed tokensampler::sampler and checks the draws
// against the known answers of the README ("The draw").
#include <cstdio>
#include <vector>

#include <tokensampler/sampler/draw.h>
#include <tokensampler/sampler/params.h>
#include <tokensampler/sampler/sampler.h>

namespace ts = tokensampler::sampler;

int main() {
  int failures = 0;
  // (seed 42, step 0, index 0) -> 0.6129598801477738, exactly.
  const double u = ts::DrawUniform(42, 0, 0);
  if (u != 0.6129598801477738) {
    std::fprintf(stderr, "DrawUniform(42, 0, 0) = %.17g, want 0.6129598801477738\n", u);
    ++failures;
  }
  // Two equally likely tokens: the token is 1 when u >= 0.5, else 0. Seed 42 step 0
  // gives u = 0.6130 (index 0) and 0.0101 (index 1); seed 0 step 0 gives u = 0.3990.
  const std::vector<float> logits = {0.0f, 0.0f};
  struct Case {
    uint64_t seed;
    int num_samples;
    std::vector<int> want;
  };
  const Case cases[] = {{42, 2, {1, 0}}, {0, 1, {0}}};
  ts::Sampler sampler;
  for (const Case& c : cases) {
    ts::SamplingParams params;
    params.seed = c.seed;
    params.num_samples = c.num_samples;
    ts::SampleResult result;
    const absl::Status status =
        sampler.Sample(ts::LogitsView::Float32(logits), params, /*step=*/0, &result);
    if (!status.ok()) {
      std::fprintf(stderr, "Sample(seed %llu): %s\n", static_cast<unsigned long long>(c.seed),
                   status.ToString().c_str());
      return 1;
    }
    for (size_t i = 0; i < c.want.size(); ++i) {
      const int got = i < result.samples.size() ? result.samples[i].token_id : -1;
      if (got != c.want[i]) {
        std::fprintf(stderr, "seed %llu sample %zu: token %d, want %d\n",
                     static_cast<unsigned long long>(c.seed), i, got, c.want[i]);
        ++failures;
      }
    }
  }
  // Bad input is an error naming the field, not a crash.
  ts::SamplingParams bad;
  bad.top_p = 1.5f;
  ts::SampleResult ignored;
  const absl::Status status = sampler.Sample(ts::LogitsView::Float32(logits), bad, 0, &ignored);
  if (status.ok() || status.message().find("params.top_p") == absl::string_view::npos) {
    std::fprintf(stderr, "top_p = 1.5: want an error naming params.top_p, got %s\n",
                 status.ToString().c_str());
    ++failures;
  }
  std::printf("sampler (%s): %s\n", ts::SimdTargetName(), failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
