// Helpers shared by the server suites: rows of random or peaked logits, logits as the raw
// bytes of each dtype, a POSIX shared memory object, a server in-process on 127.0.0.1:0
// with a stub to it, and calls with a deadline.
#ifndef TOKENSAMPLER_TESTS_SERVER_TEST_UTIL_H_
#define TOKENSAMPLER_TESTS_SERVER_TEST_UTIL_H_

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "sampler/half.h"
#include "server/server.h"
#include "tests/sampler/test_util.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::server {

// Logits drawn from N(0, sigma), a fixed function of (vocab, seed).
inline std::vector<float> RandomLogits(int vocab, uint32_t seed, float sigma = 2.0f) {
  return sampler::testing::NormalRow(static_cast<size_t>(vocab), seed, sigma);
}

// A row with `logits` as float values and default params.
inline v1::Row MakeRow(const std::vector<float>& logits) {
  v1::Row row;
  row.mutable_logits()->mutable_values()->Add(logits.begin(), logits.end());
  return row;
}

// A greedy row of `vocab` logits whose draw is `argmax`.
inline v1::Row PeakRow(int vocab, int argmax) {
  std::vector<float> logits(vocab, 0.0f);
  logits[argmax] = 5.0f;
  v1::Row row = MakeRow(logits);
  row.mutable_params()->set_temperature(0);
  return row;
}

// `values` as the raw little-endian bytes of `dtype` (Logits.raw, shared memory). The
// 16-bit types take only values they hold exactly (small integers, halves, ...): any
// other value fails the test.
inline std::string LogitBytes(const std::vector<float>& values, v1::Dtype dtype) {
  std::string out;
  for (float v : values) {
    if (dtype == v1::DTYPE_FLOAT32) {
      out.append(reinterpret_cast<const char*>(&v), sizeof(v));
      continue;
    }
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    uint16_t half;
    if (dtype == v1::DTYPE_BFLOAT16) {
      half = static_cast<uint16_t>(bits >> 16);
      EXPECT_EQ(sampler::BFloat16ToFloat(half), v) << "not exact in bfloat16";
    } else {
      const uint32_t sign = (bits >> 16) & 0x8000;
      const int32_t exponent = static_cast<int32_t>((bits >> 23) & 0xff) - 127 + 15;
      const uint32_t mantissa = (bits >> 13) & 0x3ff;
      half = v == 0.0f ? static_cast<uint16_t>(sign)
                       : static_cast<uint16_t>(sign | (exponent << 10) | mantissa);
      EXPECT_EQ(sampler::Float16ToFloat(half), v) << "not exact in float16";
    }
    out.push_back(static_cast<char>(half & 0xff));
    out.push_back(static_cast<char>(half >> 8));
  }
  return out;
}

// A client context whose deadline is `seconds` from now.
inline std::unique_ptr<grpc::ClientContext> DeadlineContext(int seconds = 20) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return context;
}

// A plaintext channel to `target` with a private subchannel pool, so that it never
// reuses a connection to an earlier test's server on the same port.
inline std::shared_ptr<grpc::Channel> PrivateChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// Waits until `predicate` holds, polling every 10 ms; false if it never does within
// `seconds` (a bound against hangs, not a performance expectation).
template <typename P>
bool Eventually(P predicate, int seconds = 5) {
  for (int i = 0; i < 100 * seconds; ++i) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return predicate();
}

// One unary call of `method` ("/package.Service/Method") with the raw bytes `request`,
// for services whose protos are not installed and for bodies that are no valid message.
// `context` may carry metadata; `response` gets the raw reply when OK.
inline grpc::Status GenericUnary(grpc::GenericStub* stub, grpc::ClientContext* context,
                                 const std::string& method, const std::string& request,
                                 std::string* response) {
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  stub->UnaryCall(context, method, grpc::StubOptions(), &request_buffer, &response_buffer,
                  [&done](grpc::Status s) { done.set_value(s); });
  grpc::Status status = done.get_future().get();
  std::vector<grpc::Slice> slices;
  response->clear();
  if (status.ok() && response_buffer.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      response->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return status;
}

// The same with a 10 s deadline and no metadata.
inline grpc::Status GenericUnary(grpc::GenericStub* stub, const std::string& method,
                                 const std::string& request, std::string* response) {
  return GenericUnary(stub, DeadlineContext(10).get(), method, request, response);
}

// A POSIX shared memory object a test owns: created read-write, unlinked at the end.
class TestObject {
 public:
  explicit TestObject(size_t size, absl::string_view prefix = "/tokensampler") {
    static std::atomic<int> counter{0};
    key_ = absl::StrCat(prefix, "-test-", getpid(), "-", counter.fetch_add(1));
    fd_ = shm_open(key_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    EXPECT_GE(fd_, 0) << key_ << ": " << std::strerror(errno);
    Resize(size);
  }
  ~TestObject() {
    Unmap();
    close(fd_);
    shm_unlink(key_.c_str());
  }
  TestObject(const TestObject&) = delete;
  TestObject& operator=(const TestObject&) = delete;

  void Resize(size_t size) {
    Unmap();
    EXPECT_EQ(ftruncate(fd_, static_cast<off_t>(size)), 0);
    size_ = size;
    if (size == 0) return;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    EXPECT_NE(p, MAP_FAILED);
    data_ = static_cast<char*>(p);
  }
  void Write(size_t offset, const void* bytes, size_t n) { std::memcpy(data_ + offset, bytes, n); }
  void WriteFloats(size_t offset, const std::vector<float>& v) {
    Write(offset, v.data(), v.size() * sizeof(float));
  }
  void Unlink() { shm_unlink(key_.c_str()); }

  const std::string& key() const { return key_; }
  char* data() { return data_; }
  size_t size() const { return size_; }

 private:
  void Unmap() {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = nullptr;
  }
  std::string key_;
  int fd_ = -1;
  char* data_ = nullptr;
  size_t size_ = 0;
};

// A server started in-process and a stub to it. `Base` is ::testing::Test or a
// ::testing::TestWithParam<T>.
template <typename Base = ::testing::Test>
class InProcessServerTestBase : public Base {
 protected:
  // Starts the server with `options` listening on `address` (port 0: a free port), and
  // a channel and stub to its first address.
  void StartServer(ServerOptions options, absl::string_view address = "127.0.0.1:0") {
    options.address = std::string(address);
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = PrivateChannel(server_->address());
    stub_ = v1::Sampler::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->pool().Resume();
  }

  // The typed calls with a 20 s deadline.
  grpc::Status Sample(const v1::SampleRequest& request, v1::SampleResponse* response) {
    return stub_->Sample(DeadlineContext().get(), request, response);
  }
  grpc::Status Verify(const v1::VerifyRequest& request, v1::VerifyResponse* response) {
    return stub_->Verify(DeadlineContext().get(), request, response);
  }

  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Sampler::Stub> stub_;
};

using InProcessServerTest = InProcessServerTestBase<>;

}  // namespace tokensampler::server

#endif  // TOKENSAMPLER_TESTS_SERVER_TEST_UTIL_H_
