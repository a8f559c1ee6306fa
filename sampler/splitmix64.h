// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, fully specified 64-bit generator.
// Used where the same numbers must come out on every platform (the client's
// --random-seed logits) and to turn a counter into distinct seeds (the server's picked
// seeds: the step is a bijection of the state, so distinct states give distinct values).
#ifndef TOKENSAMPLER_SAMPLER_SPLITMIX64_H_
#define TOKENSAMPLER_SAMPLER_SPLITMIX64_H_

#include <cstdint>

namespace tokensampler::sampler {

// Advances `state` by the golden-ratio increment and returns the mixed new state.
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace tokensampler::sampler

#endif  // TOKENSAMPLER_SAMPLER_SPLITMIX64_H_
