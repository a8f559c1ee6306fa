// An in-process stand-in for the tokensampler server, for testing the client side
// without the real one: Sample answers the argmax, seed and step; a row whose
// sequence_id is "sleep" waits 2 s; "fail" rows get INVALID_ARGUMENT naming the field;
// every `fail_every`-th Sample call gets RESOURCE_EXHAUSTED; the first
// `unavailable_first` Sample calls get UNAVAILABLE.
#ifndef TOKENSAMPLER_TESTS_CLIENT_FAKE_SERVER_H_
#define TOKENSAMPLER_TESTS_CLIENT_FAKE_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::client::testing {

class FakeSampler final : public v1::Sampler::Service {
 public:
  explicit FakeSampler(std::string name) : name_(std::move(name)) {}

  std::atomic<int> sample_calls{0};
  std::atomic<int> stream_messages{0};
  std::atomic<int> streams_opened{0};
  std::atomic<int> stream_delay_ms{0};  // each stream message waits this long
  std::atomic<int> last_vocab{0};
  std::atomic<int> last_rows{0};
  int fail_every = 0;
  std::atomic<int> unavailable_first{0};  // this many Sample calls get UNAVAILABLE first

  grpc::Status Sample(grpc::ServerContext*, const v1::SampleRequest* request,
                      v1::SampleResponse* response) override {
    const int n = ++sample_calls;
    if (unavailable_first.fetch_sub(1) > 0) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "going away");
    }
    if (fail_every > 0 && n % fail_every == 0) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full");
    }
    return Answer(*request, response, /*stream_step=*/-1);
  }

  grpc::Status GetDistribution(grpc::ServerContext*, const v1::SampleRequest* request,
                               v1::DistributionResponse* response) override {
    for (const v1::Row& row : request->rows()) {
      v1::Distribution* d = response->add_distributions();
      // A fixed two-token answer: the argmax with 0.75, then the next id with 0.25.
      const int best = Argmax(row);
      d->add_token_ids(best);
      d->add_probs(0.75f);
      d->add_token_ids(best + 1);
      d->add_probs(0.25f);
    }
    return grpc::Status::OK;
  }

  grpc::Status SampleStream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::SampleResponse, v1::SampleRequest>* stream) override {
    ++streams_opened;
    v1::SampleRequest request;
    int step = 0;
    while (stream->Read(&request)) {
      ++stream_messages;
      std::this_thread::sleep_for(std::chrono::milliseconds(stream_delay_ms.load()));
      v1::SampleResponse response;
      grpc::Status status = Answer(request, &response, step++);
      if (!status.ok()) return status;
      stream->Write(response);
    }
    return grpc::Status::OK;
  }

  grpc::Status GetServerInfo(grpc::ServerContext*, const v1::GetServerInfoRequest*,
                             v1::ServerInfo* info) override {
    info->set_version("0.0.0-fake");
    info->set_instance(name_);
    info->set_max_vocab(1 << 20);
    info->add_presets(v1::PRESET_STANDARD);
    info->add_dtypes(v1::DTYPE_BFLOAT16);
    info->set_requests_served(sample_calls.load());
    return grpc::Status::OK;
  }

 private:
  static int Vocab(const v1::Row& row) {
    if (row.logits().values_size() > 0) return row.logits().values_size();
    return static_cast<int>(row.logits().raw().size() /
                            (row.logits().dtype() == v1::DTYPE_FLOAT32 ? 4 : 2));
  }

  static int Argmax(const v1::Row& row) {
    const auto& v = row.logits().values();
    if (v.empty()) return 0;
    return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
  }

  grpc::Status Answer(const v1::SampleRequest& request, v1::SampleResponse* response,
                      int stream_step) {
    last_rows = request.rows_size();
    for (int r = 0; r < request.rows_size(); ++r) {
      const v1::Row& row = request.rows(r);
      if (row.sequence_id() == "sleep") std::this_thread::sleep_for(std::chrono::seconds(2));
      if (row.sequence_id() == "fail" || (row.params().has_top_p() && row.params().top_p() > 1)) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("rows[", r, "].params.top_p: must be in (0, 1], got ",
                                         row.params().top_p()));
      }
      last_vocab = Vocab(row);
      v1::SampleResult* result = response->add_results();
      v1::Sample* s = result->add_samples();
      s->set_token_id(Argmax(row));
      s->set_logprob(-0.5f);
      v1::TokenLogprob* alt = s->add_top_logprobs();
      alt->set_token_id(Argmax(row));
      alt->set_logprob(-0.5f);
      result->set_seed(row.params().has_seed() ? row.params().seed() : 777);
      result->set_step(stream_step >= 0 ? stream_step : row.step());
      result->set_sequence_id(row.sequence_id());
    }
    return grpc::Status::OK;
  }

  std::string name_;
};

// A FakeSampler served on 127.0.0.1 at a free port, with the default health service.
class FakeServer {
 public:
  explicit FakeServer(std::string name = "fake") : service_(std::move(name)) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.SetMaxReceiveMessageSize(256 << 20);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    server_->GetHealthCheckService()->SetServingStatus("tokensampler.v1.Sampler", true);
  }
  ~FakeServer() { Shutdown(); }

  void Shutdown() {
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
      server_.reset();
    }
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int port() const { return port_; }
  FakeSampler& service() { return service_; }
  grpc::HealthCheckServiceInterface* health() { return server_->GetHealthCheckService(); }

 private:
  FakeSampler service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace tokensampler::client::testing

#endif  // TOKENSAMPLER_TESTS_CLIENT_FAKE_SERVER_H_
