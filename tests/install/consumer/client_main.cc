// Uses an installed tokensampler::client: constructs a Client and, given a server
// address, samples the row of sampler_main.cc over gRPC and checks that the server drew
// the same tokens as the in-process sampler.
//   consumer_client                   construct only
//   consumer_client 127.0.0.1:PORT    also call the server there
#include <cstdio>
#include <vector>

#include <tokensampler/client/client.h>
#include <tokensampler/sampler/sampler.h>
#include <tokensampler/v1/sampler.pb.h>

namespace ts = tokensampler;

int main(int argc, char** argv) {
  const char* address = argc > 1 ? argv[1] : "127.0.0.1:1";
  ts::client::ClientOptions options;
  options.timeout = absl::Seconds(10);
  auto client = ts::client::Client::Create(address, options);
  if (!client.ok()) {
    std::fprintf(stderr, "Client::Create(%s): %s\n", address, client.status().ToString().c_str());
    return 1;
  }
  // A bad address is refused when the client is made.
  if (ts::client::Client::Create("localhost").ok()) {
    std::fprintf(stderr, "Client::Create(\"localhost\") (no port) succeeded\n");
    return 1;
  }
  if (argc < 2) {
    std::printf("client: constructed for %s\n", (*client)->address().c_str());
    return 0;
  }

  const std::vector<float> logits = {0.0f, 0.0f};
  ts::v1::SampleRequest request;
  ts::v1::Row* row = request.add_rows();
  for (float v : logits) row->mutable_logits()->add_values(v);
  row->mutable_params()->set_seed(42);
  row->mutable_params()->set_num_samples(2);
  auto response = (*client)->Sample(request);
  if (!response.ok()) {
    std::fprintf(stderr, "Sample: %s\n", response.status().ToString().c_str());
    return 1;
  }

  ts::sampler::Sampler sampler;
  ts::sampler::SamplingParams params;
  params.seed = 42;
  params.num_samples = 2;
  ts::sampler::SampleResult local;
  if (!sampler.Sample(ts::sampler::LogitsView::Float32(logits), params, 0, &local).ok()) {
    std::fprintf(stderr, "in-process Sample failed\n");
    return 1;
  }
  const auto& remote = response->results(0).samples();
  if (remote.size() != 2 || local.samples.size() != 2) {
    std::fprintf(stderr, "want 2 samples, server gave %d\n", remote.size());
    return 1;
  }
  for (int i = 0; i < 2; ++i) {
    if (remote[i].token_id() != local.samples[i].token_id) {
      std::fprintf(stderr, "sample %d: server token %d, in-process token %d\n", i,
                   remote[i].token_id(), local.samples[i].token_id);
      return 1;
    }
  }
  auto info = (*client)->GetServerInfo();
  std::printf("client: server %s drew tokens %d %d, the same as in-process\n",
              info.ok() ? info->version().c_str() : "?", remote[0].token_id(),
              remote[1].token_id());
  return 0;
}
