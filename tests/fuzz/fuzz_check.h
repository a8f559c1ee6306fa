// The fuzz targets' assertion: a broken invariant aborts with a message (libFuzzer and
// the replay main both report an abort as a failure).
#ifndef TOKENSAMPLER_TESTS_FUZZ_FUZZ_CHECK_H_
#define TOKENSAMPLER_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

#endif  // TOKENSAMPLER_TESTS_FUZZ_FUZZ_CHECK_H_
