// What every fuzz target that samples needs once per process: a Sampler (scratch
// memory reused across inputs) and protobuf's log silenced (it logs every string field
// with invalid UTF-8 it refuses; the refusal is what is tested, the line is noise and
// slows the fuzzer down).
#ifndef TOKENSAMPLER_TESTS_FUZZ_FUZZ_SETUP_H_
#define TOKENSAMPLER_TESTS_FUZZ_FUZZ_SETUP_H_

#include "google/protobuf/stubs/logging.h"
#include "sampler/sampler.h"

namespace tokensampler::fuzz {

inline sampler::Sampler& FuzzSampler() {
  static sampler::Sampler* const sampler = [] {
    google::protobuf::SetLogHandler(nullptr);
    return new sampler::Sampler();
  }();
  return *sampler;
}

}  // namespace tokensampler::fuzz

#endif  // TOKENSAMPLER_TESTS_FUZZ_FUZZ_SETUP_H_
