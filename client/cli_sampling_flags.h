// The CLI's sampling flags (sample, dist, verify, bench): one table from each flag to the
// field of SamplingFlagValues or RowFlagValues it fills, read for the flags given.
#ifndef TOKENSAMPLER_CLIENT_CLI_SAMPLING_FLAGS_H_
#define TOKENSAMPLER_CLIENT_CLI_SAMPLING_FLAGS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cli_command.h"
#include "client/sampling_flags.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler::client {

// The sampling flags, in help order.
const std::vector<FlagRef>& SamplingFlagRefs();

// What the sampling flags given on the command line said; a flag not given is nullopt.
struct GivenSamplingFlags {
  SamplingFlagValues params;
  RowFlagValues row;
};
GivenSamplingFlags ReadSamplingFlags(const Invocation& inv);

// The request's SamplingParams: `base` with every sampling flag given set on top.
// Errors name the flag.
absl::StatusOr<v1::SamplingParams> SamplingFromFlags(const Invocation& inv,
                                                     v1::SamplingParams base = {});

// --context as token ids (empty when not given); --step.
absl::StatusOr<std::vector<int32_t>> ContextFromFlags();
uint64_t StepFromFlags();

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_CLI_SAMPLING_FLAGS_H_
