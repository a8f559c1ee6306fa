// Protobuf pieces the fuzz targets build from the fuzzer's choices: logits in every
// encoding, draft probabilities, sampling parameters.
#ifndef TOKENSAMPLER_TESTS_FUZZ_FUZZ_MESSAGES_H_
#define TOKENSAMPLER_TESTS_FUZZ_FUZZ_MESSAGES_H_

#include <cstdint>
#include <vector>

#include "sampler/params.h"
#include "tests/fuzz/fuzz_data.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::fuzz {

// `values` as a Logits message in the encoding the fuzzer picks (values, or raw
// float32 / bfloat16 / float16 bytes), or now and then a malformed one.
inline void PutLogits(FuzzedDataProvider& in, const std::vector<float>& values, v1::Logits* out) {
  switch (in.ConsumeIntegralInRange<int>(0, 15)) {
    case 1:
      out->set_dtype(v1::DTYPE_FLOAT32);
      out->set_raw(EncodeRow(values, sampler::Dtype::kFloat32));
      return;
    case 2:
      out->set_dtype(v1::DTYPE_BFLOAT16);
      out->set_raw(EncodeRow(values, sampler::Dtype::kBFloat16));
      return;
    case 3:
      out->set_dtype(v1::DTYPE_FLOAT16);
      out->set_raw(EncodeRow(values, sampler::Dtype::kFloat16));
      return;
    case 4:  // malformed: both encodings, a ragged raw, an unknown dtype, or a region
      switch (in.ConsumeIntegralInRange<int>(0, 4)) {
        case 0:
          out->add_values(0.5f);
          out->set_raw("\1\2\3\4");
          return;
        case 1:
          out->set_dtype(v1::DTYPE_FLOAT16);
          out->set_raw("\1\2\3");
          return;
        case 2:
          out->set_dtype(static_cast<v1::Dtype>(in.ConsumeIntegralInRange<int>(0, 9)));
          out->set_raw(EncodeRow(values, sampler::Dtype::kFloat32));
          return;
        case 3:
          out->mutable_shared_memory()->set_region("r");
          out->set_dtype(v1::DTYPE_FLOAT32);
          return;
        default:
          return;  // no logits at all
      }
    default:
      for (const float v : values) out->add_values(v);
  }
}

// A draft's probabilities over `vocab` tokens for draft token `token` (in range): small
// integer weights padded up to a power of two, so that they are exact in every dtype and
// sum to exactly 1, with weight on the token; or now and then an invalid row (a negative
// or NaN entry, a bad sum, no weight on the token).
inline std::vector<float> DraftProbs(FuzzedDataProvider& in, size_t vocab, int32_t token) {
  std::vector<float> weights(vocab);
  uint32_t sum = 0;
  for (float& w : weights) {
    w = static_cast<float>(in.ConsumeIntegralInRange<int>(0, 3));
    sum += static_cast<uint32_t>(w);
  }
  if (weights[token] == 0) {
    weights[token] = 1;
    ++sum;
  }
  uint32_t total = 1;
  while (total < sum) total *= 2;
  weights[token] += static_cast<float>(total - sum);
  for (float& w : weights) w /= static_cast<float>(total);
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) {
    const size_t at = in.ConsumeIntegralInRange<size_t>(0, vocab - 1);
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
        weights[at] = -weights[at] - 0.25f;
        break;
      case 1:
        weights[at] = in.ConsumeFloatingPoint<float>();
        break;
      case 2:
        weights[at] += 0.01f;
        break;
      default:
        weights[token] = 0;
        break;
    }
  }
  return weights;
}

// The fields a Verify row's params may carry, each set or not as the bytes say.
inline void PutParams(FuzzedDataProvider& in, int32_t vocab, v1::SamplingParams* p) {
  const uint32_t set = in.ConsumeIntegral<uint32_t>();
  auto id = [&] { return in.ConsumeIntegralInRange<int32_t>(-1, vocab); };
  if (set & (1u << 0)) p->set_temperature(in.ConsumeIntegralInRange<int>(0, 8) / 4.0f);
  if (set & (1u << 1)) p->set_top_k(in.ConsumeIntegralInRange<int32_t>(-1, vocab + 1));
  if (set & (1u << 2)) p->set_top_p(in.ConsumeIntegralInRange<int>(0, 5) / 4.0f);
  if (set & (1u << 3)) p->set_min_p(in.ConsumeIntegralInRange<int>(0, 5) / 4.0f);
  if (set & (1u << 4)) p->set_typical_p(in.ConsumeIntegralInRange<int>(0, 5) / 4.0f);
  if (set & (1u << 5)) p->set_repetition_penalty(in.ConsumeIntegralInRange<int>(0, 8) / 4.0f);
  if (set & (1u << 6)) p->set_presence_penalty(in.ConsumeIntegralInRange<int>(-4, 4) / 2.0f);
  if (set & (1u << 7)) p->set_frequency_penalty(in.ConsumeIntegralInRange<int>(-4, 4) / 2.0f);
  if (set & (1u << 8)) {
    const int32_t token = id();
    (*p->mutable_logit_bias())[token] = ConsumeLogit(in);
  }
  if (set & (1u << 9)) p->add_allowed_token_ids(id());
  if (set & (1u << 10)) p->add_banned_token_ids(id());
  if (set & (1u << 11)) p->set_seed(in.ConsumeIntegral<uint64_t>());
  if (set & (1u << 12)) p->set_num_samples(in.ConsumeIntegralInRange<int32_t>(-1, 2));
  if (set & (1u << 13)) p->set_top_logprobs(in.ConsumeIntegralInRange<int32_t>(-1, 21));
  if (set & (1u << 14)) {
    p->set_logprobs_mode(static_cast<v1::LogprobsMode>(in.ConsumeIntegralInRange<int>(0, 5)));
  }
  if (set & (1u << 15))
    p->set_preset(static_cast<v1::Preset>(in.ConsumeIntegralInRange<int>(0, 5)));
  if (set & (1u << 16)) p->set_min_tokens_to_keep(in.ConsumeIntegralInRange<int32_t>(-1, 3));
  if (set & (1u << 17)) {
    p->set_xtc_probability(in.ConsumeIntegralInRange<int>(0, 4) / 4.0f);
    p->set_xtc_threshold(in.ConsumeIntegralInRange<int>(0, 4) / 8.0f);
  }
  if (set & (1u << 18)) p->set_top_n_sigma(in.ConsumeIntegralInRange<int>(-1, 8) / 2.0f);
  if (set & (1u << 19)) {
    p->mutable_dry()->set_multiplier(in.ConsumeIntegralInRange<int>(0, 4) / 2.0f);
    p->mutable_dry()->set_base(in.ConsumeIntegralInRange<int>(0, 8) / 4.0f);
    p->mutable_dry()->set_allowed_length(in.ConsumeIntegralInRange<int32_t>(0, 3));
  }
  if (set & (1u << 20)) {
    p->set_min_tokens(in.ConsumeIntegralInRange<int32_t>(0, 4));
    p->add_stop_token_ids(id());
  }
  if (set & (1u << 21)) p->add_bad_words()->add_token_ids(id());
  if (set & (1u << 22)) p->set_no_repeat_ngram_size(in.ConsumeIntegralInRange<int32_t>(0, 3));
  if (set & (1u << 23)) {
    p->mutable_mirostat()->set_version(in.ConsumeIntegralInRange<int32_t>(0, 3));
    p->mutable_mirostat()->set_tau(in.ConsumeIntegralInRange<int>(0, 8) / 2.0f);
    p->mutable_mirostat()->set_eta(in.ConsumeIntegralInRange<int>(0, 4) / 4.0f);
  }
  if (set & (1u << 24)) p->set_dynatemp_range(in.ConsumeIntegralInRange<int>(0, 4) / 4.0f);
  if (set & (1u << 25)) p->add_logprob_token_ids(id());
}

}  // namespace tokensampler::fuzz

#endif  // TOKENSAMPLER_TESTS_FUZZ_FUZZ_MESSAGES_H_
