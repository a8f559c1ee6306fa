// Turning the CLI's --server string into a gRPC channel target.
#ifndef TOKENSAMPLER_CLIENT_ADDRESS_H_
#define TOKENSAMPLER_CLIENT_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tokensampler::client {

// A resolved channel target and how to balance over it.
struct ChannelTarget {
  // What grpc::CreateCustomChannel receives, e.g. "127.0.0.1:50051",
  // "dns:///sampler:50051" or "ipv4:10.0.0.1:50051,10.0.0.2:50051".
  std::string target;
  // True when the channel should use the round_robin policy (dns:/// and comma lists).
  bool round_robin = false;
};

// Accepted forms:
//   host:port, [v6]:port                 -> one address, gRPC's default pick_first
//   dns:///host:port                     -> every address the name resolves to, round_robin
//   h1:p1,h2:p2,...                      -> "ipv4:..." or "ipv6:..." list, round_robin;
//                                           host names in a list are resolved here, once
//   ipv4:..., ipv6:..., unix:...         -> passed through (ipv4/ipv6 lists use round_robin)
// Ports must be in [1, 65535]. Errors name the offending part.
absl::StatusOr<ChannelTarget> ParseServerAddress(absl::string_view address);

}  // namespace tokensampler::client

#endif  // TOKENSAMPLER_CLIENT_ADDRESS_H_
