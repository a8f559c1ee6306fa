// The real tokensampler-server binary: port 0, the listening line, env-var flags,
// --help, and the SIGTERM drain (exit 0, event=stopped, an open stream finishes).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

#ifndef TOKENSAMPLER_SERVER_BINARY
#error "TOKENSAMPLER_SERVER_BINARY must name the tokensampler-server binary"
#endif

namespace tokensampler::server {
namespace {

using ::testing::HasSubstr;

// A graceful server shutdown waits until idle client connections have read its GOAWAY;
// an idle C++ client only polls its sockets every 5 s by default. Poll faster so these
// tests do not wait for it (set before gRPC initialises).
const bool kFastClientPoll = [] {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50", 1);
  return true;
}();

// A child process with its stderr (and stdout) on a pipe.
class Child {
 public:
  Child(std::vector<std::string> args, std::vector<std::string> env = {}) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDERR_FILENO);
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> argv;
      std::string binary = TOKENSAMPLER_SERVER_BINARY;
      argv.push_back(binary.data());
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }

  // Reads output until it contains `needle` or `timeout_ms` pass; returns whether found.
  bool WaitFor(const std::string& needle, int timeout_ms = 10000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (output_.find(needle) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) return output_.find(needle) != std::string::npos;
      output_.append(buf, n);
    }
    return true;
  }

  // The HOST:PORT of the event=listening line.
  std::string ListeningAddress() {
    if (!WaitFor("event=listening")) return "";
    const size_t line = output_.find("event=listening");
    if (!WaitFor("\n")) return "";
    const size_t start = output_.find("address=", line) + 8;
    const size_t end = output_.find_first_of(" \n", start);
    return output_.substr(start, end - start);
  }

  // Waits for the exit; returns the exit code, or -signal.
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    WaitFor("\xff", 500);  // drain what is left
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

  // Closes the reading end of the child's output: its next write gets EPIPE.
  void CloseOutput() {
    close(fd_);
    fd_ = -1;
  }

  pid_t pid() const { return pid_; }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool reaped_ = false;
  std::string output_;
};

TEST(ServerBinaryTest, SigtermDrainsOpenCallsAndExitsZero) {
  Child server({"--address=127.0.0.1:0", "--workers=1", "--drain_timeout=10s"});
  const std::string address = server.ListeningAddress();
  ASSERT_FALSE(address.empty()) << server.output();
  EXPECT_THAT(address, testing::StartsWith("127.0.0.1:"));
  EXPECT_NE(address, "127.0.0.1:0");

  auto stub = v1::Sampler::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  v1::SampleRequest request;
  v1::Row* row = request.add_rows();
  for (float v : {0.0f, 3.0f, 1.0f}) row->mutable_logits()->add_values(v);
  row->mutable_params()->set_temperature(0);
  row->set_sequence_id("s");
  {
    grpc::ClientContext context;
    v1::SampleResponse response;
    ASSERT_TRUE(stub->Sample(&context, request, &response).ok());
    EXPECT_EQ(response.results(0).samples(0).token_id(), 1);
  }

  // An error is logged as one structured line.
  {
    v1::SampleRequest bad = request;
    bad.mutable_rows(0)->mutable_params()->set_top_p(1.5f);
    grpc::ClientContext context;
    v1::SampleResponse response;
    EXPECT_EQ(stub->Sample(&context, bad, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(server.WaitFor("event=rpc_error rpc=Sample code=INVALID_ARGUMENT "
                               "message=\"rows[0].params.top_p:"))
        << server.output();
  }

  // Open a stream, then SIGTERM: the stream may still finish its work.
  grpc::ClientContext context;
  auto stream = stub->SampleStream(&context);
  ASSERT_TRUE(stream->Write(request));
  v1::SampleResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  ASSERT_TRUE(server.WaitFor("event=draining")) << server.output();
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.results(0).step(), 1u);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  EXPECT_EQ(server.Wait(), 0) << server.output();
  EXPECT_THAT(server.output(), HasSubstr("event=stopped"));
}

// grpc.health.v1.Health/Check for `service`; returns the status field (1 SERVING,
// 2 NOT_SERVING) or -1 when the call fails.
int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::string request;  // HealthCheckRequest{service}
  if (!service.empty()) request = std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request_buffer, &response_buffer,
                 [&done](grpc::Status s) { done.set_value(s); });
  if (!done.get_future().get().ok()) return -1;
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!response_buffer.Dump(&slices).ok()) return -1;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes.size() == 2 && bytes[0] == '\x08' ? bytes[1] : -1;
}

TEST(ServerBinaryTest, SigtermLameDuckKeepsServingWithHealthNotServing) {
  // A lame duck far longer than this test: a second SIGTERM ends it.
  Child server({"--address=127.0.0.1:0", "--workers=1", "--lame_duck=60s",
                "--drain_timeout=120s"});
  const std::string address = server.ListeningAddress();
  ASSERT_FALSE(address.empty()) << server.output();
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  EXPECT_EQ(HealthCheck(channel, "tokensampler.v1.Sampler"), 1);

  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  ASSERT_TRUE(server.WaitFor("event=draining")) << server.output();
  ASSERT_TRUE(server.WaitFor("\n")) << server.output();
  EXPECT_THAT(server.output(), HasSubstr("lame_duck=1m"));
  EXPECT_EQ(HealthCheck(channel, ""), 2);
  EXPECT_EQ(HealthCheck(channel, "tokensampler.v1.Sampler"), 2);

  // Still serving, on the open connection and on a new one.
  v1::SampleRequest request;
  v1::Row* row = request.add_rows();
  for (float v : {0.0f, 3.0f, 1.0f}) row->mutable_logits()->add_values(v);
  row->mutable_params()->set_temperature(0);
  for (auto& ch : {channel, grpc::CreateChannel(address, grpc::InsecureChannelCredentials())}) {
    auto stub = v1::Sampler::NewStub(ch);
    grpc::ClientContext context;
    v1::SampleResponse response;
    grpc::Status status = stub->Sample(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.results(0).samples(0).token_id(), 1);
  }
  EXPECT_THAT(server.output(), testing::Not(HasSubstr("event=stopped")));

  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  EXPECT_EQ(server.Wait(), 0) << server.output();
  EXPECT_THAT(server.output(), HasSubstr("event=lame_duck_cut reason=\"second signal\""));
  EXPECT_THAT(server.output(), HasSubstr("event=stopped requests_served=2"));
}

TEST(ServerBinaryTest, FlagsComeFromTheEnvironmentUnlessGiven) {
  Child server({}, {"TOKENSAMPLER_ADDRESS=127.0.0.1:0", "TOKENSAMPLER_WORKERS=1",
                    "TOKENSAMPLER_MAX_ROWS=3", "TOKENSAMPLER_LAME_DUCK=0"});
  const std::string address = server.ListeningAddress();
  ASSERT_FALSE(address.empty()) << server.output();
  EXPECT_THAT(server.output(), HasSubstr("workers=1"));
  auto stub = v1::Sampler::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::ServerInfo info;
  ASSERT_TRUE(stub->GetServerInfo(&context, v1::GetServerInfoRequest(), &info).ok());
  EXPECT_EQ(info.max_rows_per_request(), 3);
  EXPECT_EQ(info.worker_threads(), 1);
  ASSERT_EQ(kill(server.pid(), SIGINT), 0);
  EXPECT_EQ(server.Wait(), 0);
  EXPECT_THAT(server.output(), HasSubstr("event=draining signal=SIGINT lame_duck=0"));

  // The command line wins over the environment.
  Child overridden({"--address=127.0.0.1:0", "--max_rows=5", "--lame_duck=0"},
                   {"TOKENSAMPLER_ADDRESS=bad address", "TOKENSAMPLER_MAX_ROWS=3"});
  const std::string address2 = overridden.ListeningAddress();
  ASSERT_FALSE(address2.empty()) << overridden.output();
  auto stub2 = v1::Sampler::NewStub(
      grpc::CreateChannel(address2, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context2;
  ASSERT_TRUE(stub2->GetServerInfo(&context2, v1::GetServerInfoRequest(), &info).ok());
  EXPECT_EQ(info.max_rows_per_request(), 5);
  ASSERT_EQ(kill(overridden.pid(), SIGTERM), 0);
  EXPECT_EQ(overridden.Wait(), 0);
}

TEST(ServerBinaryTest, BadFlagsFailClearly) {
  Child bad_env({}, {"TOKENSAMPLER_MAX_VOCAB=lots"});
  EXPECT_NE(bad_env.Wait(), 0);
  EXPECT_THAT(bad_env.output(), HasSubstr("TOKENSAMPLER_MAX_VOCAB"));

  Child too_big({"--address=127.0.0.1:0", "--max_vocab=2000000"});
  EXPECT_NE(too_big.Wait(), 0);
  EXPECT_THAT(too_big.output(), HasSubstr("--max_vocab: must be <= 1048576"));

  Child negative({"--address=127.0.0.1:0", "--lame_duck=-1s"});
  EXPECT_NE(negative.Wait(), 0);
  EXPECT_THAT(negative.output(), HasSubstr("--lame_duck: must be >= 0 (0 = off), got -1s"));

  // gRPC would listen on port 443 for an address without a port.
  Child no_port({"--address=localhost"});
  EXPECT_EQ(no_port.Wait(), 1);
  EXPECT_THAT(no_port.output(), HasSubstr("--address: 'localhost' has no valid port"));

  Child bad_age({"--address=127.0.0.1:0", "--max_connection_age=-5m"});
  EXPECT_NE(bad_age.Wait(), 0);
  EXPECT_THAT(bad_age.output(), HasSubstr("--max_connection_age: must be >= 0 (0 = off), got -5m"));
}

TEST(ServerBinaryTest, HelpListsEveryFlagWithItsEnvironmentVariable) {
  Child help({"--help"});
  EXPECT_EQ(help.Wait(), 0) << help.output();
  for (const char* name :
       {"TOKENSAMPLER_ADDRESS", "TOKENSAMPLER_WORKERS", "TOKENSAMPLER_QUEUE_DEPTH",
        "TOKENSAMPLER_SAMPLE_ON_GRPC_THREADS", "TOKENSAMPLER_REFLECTION", "TOKENSAMPLER_MAX_VOCAB",
        "TOKENSAMPLER_MAX_ROWS", "TOKENSAMPLER_MAX_MESSAGE_BYTES", "TOKENSAMPLER_MAX_SEQUENCES",
        "TOKENSAMPLER_MAX_HISTORY_TOKENS", "TOKENSAMPLER_DRAIN_TIMEOUT", "TOKENSAMPLER_LAME_DUCK",
        "TOKENSAMPLER_MAX_CONNECTION_AGE", "TOKENSAMPLER_MAX_CONNECTION_AGE_GRACE"}) {
    EXPECT_THAT(help.output(), HasSubstr(name));
  }
}

// A second server on a port that one already listens on must not start (gRPC's
// SO_REUSEPORT would let both share it), and says so in one line, not gRPC's dump.
TEST(ServerBinaryTest, BusyPortFailsWithOneReadableLine) {
  Child first({"--address=127.0.0.1:0", "--workers=1", "--lame_duck=0"});
  const std::string address = first.ListeningAddress();
  ASSERT_FALSE(address.empty()) << first.output();

  Child second({"--address=" + address, "--workers=1"});
  EXPECT_EQ(second.Wait(), 1) << second.output();
  EXPECT_THAT(second.output(), HasSubstr("event=start_failed"));
  EXPECT_THAT(second.output(), HasSubstr("--address: " + address + " is already in use"));
  EXPECT_EQ(std::count(second.output().begin(), second.output().end(), '\n'), 1) << second.output();

  ASSERT_EQ(kill(first.pid(), SIGTERM), 0);
  EXPECT_EQ(first.Wait(), 0);
}

std::unique_ptr<v1::Sampler::Stub> StubFor(const std::string& address) {
  return v1::Sampler::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

grpc::Status SampleTopP(v1::Sampler::Stub& stub, float top_p) {
  v1::SampleRequest request;
  v1::Row* row = request.add_rows();
  for (float v : {0.0f, 3.0f, 1.0f}) row->mutable_logits()->add_values(v);
  row->mutable_params()->set_top_p(top_p);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::SampleResponse response;
  return stub.Sample(&context, request, &response);
}

// The reader of the server's log goes away (a `tee` killed by Ctrl-C): the next log line
// gets EPIPE. The server keeps serving, and a SIGTERM still drains and exits 0.
TEST(ServerBinaryTest, ClosedLogPipeDoesNotKillTheServer) {
  Child server({"--address=127.0.0.1:0", "--workers=1", "--lame_duck=0"});
  const std::string address = server.ListeningAddress();
  ASSERT_FALSE(address.empty()) << server.output();
  server.CloseOutput();
  auto stub = StubFor(address);
  // Each rejected call writes a warn line into the closed pipe.
  EXPECT_EQ(SampleTopP(*stub, 1.5f).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SampleTopP(*stub, 1.5f).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(SampleTopP(*stub, 0.5f).ok());
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  EXPECT_EQ(server.Wait(), 0);
}

// A client repeating a bad call gets a warn line for the first ones only; the next line
// that passes says how many were left out.
TEST(ServerBinaryTest, RpcErrorLinesAreRateLimited) {
  Child server({"--address=127.0.0.1:0", "--workers=1", "--lame_duck=0"});
  const std::string address = server.ListeningAddress();
  ASSERT_FALSE(address.empty()) << server.output();
  auto stub = StubFor(address);
  constexpr int kCalls = 300;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_EQ(SampleTopP(*stub, 1.5f).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(SampleTopP(*stub, 1.5f).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  EXPECT_EQ(server.Wait(), 0);
  size_t lines = 0;
  for (size_t at = 0; (at = server.output().find("event=rpc_error", at)) != std::string::npos;
       ++at) {
    ++lines;
  }
  EXPECT_GE(lines, 2u);
  EXPECT_LT(lines, static_cast<size_t>(kCalls) / 2) << server.output();
  EXPECT_THAT(server.output(), HasSubstr(" suppressed="));
}

}  // namespace
}  // namespace tokensampler::server
