// A server started in-process on 127.0.0.1:0 and a stub to it, for the reactor tests.
#ifndef TOKENSAMPLER_TESTS_SERVER_IN_PROCESS_SERVER_H_
#define TOKENSAMPLER_TESTS_SERVER_IN_PROCESS_SERVER_H_

#include <chrono>
#include <memory>
#include <thread>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::server {

class InProcessServerTest : public ::testing::Test {
 protected:
  // Starts the server with `options` (address forced to 127.0.0.1:0) and a stub to it.
  void StartServer(ServerOptions options) {
    options.address = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    // A private subchannel pool keeps this channel from reusing a connection to an
    // earlier test's server on the same port.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = v1::Sampler::NewStub(grpc::CreateCustomChannel(
        server_->address(), grpc::InsecureChannelCredentials(), args));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->pool().Resume();
  }

  // Waits (bounded, 5 s) until `predicate` holds.
  template <typename P>
  static bool Eventually(P predicate) {
    for (int i = 0; i < 500; ++i) {
      if (predicate()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return predicate();
  }

  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::Sampler::Stub> stub_;
};

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_TESTS_SERVER_IN_PROCESS_SERVER_H_
