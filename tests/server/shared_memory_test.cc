// Shared memory regions: the peer check, the registry and its errors, the SIGBUS guard,
// the codec's checks of Logits.shared_memory, and the service over a Unix socket and TCP
// at once, with owners that rewrite, shrink and unlink their objects during calls.
#include "server/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/codec.h"
#include "server/server.h"
#include "tests/server/test_util.h"
#include "tokensampler/v1/sampler.grpc.pb.h"

namespace tokensampler::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// --- the peer check --------------------------------------------------------------------

TEST(IsLocalPeerTest, UnixAndLoopbackAreLocal) {
  EXPECT_TRUE(IsLocalPeer("unix:/run/tokensampler/sock"));
  EXPECT_TRUE(IsLocalPeer("unix:"));
  EXPECT_TRUE(IsLocalPeer("unix-abstract:tokensampler"));
  EXPECT_TRUE(IsLocalPeer("ipv4:127.0.0.1:50051"));
  EXPECT_TRUE(IsLocalPeer("ipv4:127.255.3.4:1"));
  EXPECT_TRUE(IsLocalPeer("ipv6:[::1]:50051"));
  EXPECT_TRUE(IsLocalPeer("ipv6:%5B::1%5D:50051"));
  EXPECT_TRUE(IsLocalPeer("ipv6:[::ffff:127.0.0.1]:50051"));
  EXPECT_TRUE(IsLocalPeer("ipv6:%5B::ffff:127.0.0.2%5D:7"));
}

TEST(IsLocalPeerTest, OtherAddressesAreNot) {
  EXPECT_FALSE(IsLocalPeer("ipv4:10.0.0.7:50051"));
  EXPECT_FALSE(IsLocalPeer("ipv4:128.0.0.1:50051"));
  EXPECT_FALSE(IsLocalPeer("ipv4:1.127.0.0:50051"));
  EXPECT_FALSE(IsLocalPeer("ipv6:[::2]:50051"));
  EXPECT_FALSE(IsLocalPeer("ipv6:[fe80::1]:50051"));
  EXPECT_FALSE(IsLocalPeer("ipv6:[::ffff:10.0.0.1]:50051"));
  EXPECT_FALSE(IsLocalPeer("ipv6:::1:50051"));  // no brackets: not gRPC's form
  EXPECT_FALSE(IsLocalPeer("ipv4:localhost:50051"));
  EXPECT_FALSE(IsLocalPeer("127.0.0.1:50051"));  // no scheme
  EXPECT_FALSE(IsLocalPeer(""));
}

TEST(SharedMemoryOptionsTest, ModesAndValidation) {
  EXPECT_EQ(*ParseSharedMemoryMode("off"), SharedMemoryMode::kOff);
  EXPECT_EQ(*ParseSharedMemoryMode("local"), SharedMemoryMode::kLocal);
  EXPECT_EQ(*ParseSharedMemoryMode("any"), SharedMemoryMode::kAny);
  EXPECT_EQ(ParseSharedMemoryMode("on").status().message(),
            "--shared_memory: must be off, local or any, got \"on\"");
  SharedMemoryOptions options;
  EXPECT_TRUE(ValidateSharedMemoryOptions(options).ok());
  options.prefix = "tokensampler";
  EXPECT_EQ(ValidateSharedMemoryOptions(options).message(),
            "--shared_memory_prefix: must start with '/' and contain no other '/', got "
            "\"tokensampler\"");
  options.prefix = "/a/b";
  EXPECT_FALSE(ValidateSharedMemoryOptions(options).ok());
  options.prefix = "/ok";
  options.max_regions = 0;
  EXPECT_THAT(std::string(ValidateSharedMemoryOptions(options).message()),
              StartsWith("--max_shared_memory_regions"));
}

// --- the registry -----------------------------------------------------------------------

TEST(SharedMemoryRegistryTest, RegisterFindStatusUnregister) {
  TestObject object(8192);
  object.WriteFloats(4096, {1.5f, 2.5f});
  SharedMemoryRegistry registry{SharedMemoryOptions()};
  ASSERT_TRUE(registry.Register("r1", object.key(), 4096, 4096).ok());
  auto mapping = registry.Find("r1");
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  float first;
  std::memcpy(&first, (*mapping)->data(), 4);  // the offset is honoured (not page 0)
  EXPECT_EQ(first, 1.5f);
  auto status = registry.Status("");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 1u);
  EXPECT_EQ((*status)[0].key, object.key());
  EXPECT_EQ((*status)[0].offset, 4096u);
  EXPECT_EQ((*status)[0].byte_size, 4096u);
  EXPECT_EQ(registry.bytes(), 4096u);

  // Unregister returns at once; a holder keeps reading the mapping.
  ASSERT_TRUE(registry.Unregister("r1").ok());
  EXPECT_EQ(registry.regions(), 0u);
  EXPECT_EQ(registry.bytes(), 0u);
  EXPECT_EQ(registry.Find("r1").status().code(), absl::StatusCode::kNotFound);
  std::memcpy(&first, (*mapping)->data() + 4, 4);
  EXPECT_EQ(first, 2.5f);

  ASSERT_TRUE(registry.Register("a", object.key(), 0, 100).ok());
  ASSERT_TRUE(registry.Register("b", object.key(), 100, 100).ok());
  EXPECT_EQ(registry.Status("b")->size(), 1u);
  ASSERT_TRUE(registry.Unregister("").ok());
  EXPECT_EQ(registry.regions(), 0u);
}

TEST(SharedMemoryRegistryTest, EveryErrorNamesFieldAndValue) {
  TestObject object(4096);
  SharedMemoryOptions options;
  options.max_regions = 2;
  options.max_bytes = 5000;
  SharedMemoryRegistry registry(options);
  auto expect = [&](absl::Status status, absl::StatusCode code, absl::string_view message) {
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_EQ(status.message(), message);
  };
  expect(registry.Register("", object.key(), 0, 1), absl::StatusCode::kInvalidArgument,
         "name: must be 1-128 characters of [A-Za-z0-9_.-], got \"\"");
  expect(registry.Register("a/b", object.key(), 0, 1), absl::StatusCode::kInvalidArgument,
         "name: must be 1-128 characters of [A-Za-z0-9_.-], got \"a/b\"");
  EXPECT_EQ(registry.Register(std::string(129, 'x'), object.key(), 0, 1).code(),
            absl::StatusCode::kInvalidArgument);
  expect(registry.Register("r", "tokensampler-x", 0, 1), absl::StatusCode::kInvalidArgument,
         "key: must be a POSIX shared memory name: '/' then 1-254 characters without '/', "
         "got \"tokensampler-x\"");
  expect(registry.Register("r", "/tokensampler/../etc", 0, 1), absl::StatusCode::kInvalidArgument,
         "key: must be a POSIX shared memory name: '/' then 1-254 characters without '/', "
         "got \"/tokensampler/../etc\"");
  expect(registry.Register("r", "/other-program", 0, 1), absl::StatusCode::kPermissionDenied,
         "key: must start with the server's --shared_memory_prefix \"/tokensampler\", got "
         "\"/other-program\"");
  expect(registry.Register("r", object.key(), 0, 0), absl::StatusCode::kInvalidArgument,
         "byte_size: must be > 0, got 0");
  EXPECT_EQ(registry.Register("r", object.key(), std::numeric_limits<uint64_t>::max(), 2).code(),
            absl::StatusCode::kInvalidArgument);
  expect(registry.Register("r", "/tokensampler-no-such-object", 0, 1), absl::StatusCode::kNotFound,
         "key: cannot open shared memory object \"/tokensampler-no-such-object\": No such file "
         "or directory");
  expect(registry.Register("r", object.key(), 4000, 97), absl::StatusCode::kInvalidArgument,
         absl::StrCat("offset + byte_size: 4000 + 97 = 4097 exceeds the size of \"", object.key(),
                      "\" (4096 bytes)"));
  ASSERT_TRUE(registry.Register("r", object.key(), 0, 4000).ok());
  expect(registry.Register("r", object.key(), 0, 1), absl::StatusCode::kAlreadyExists,
         "name: a region named \"r\" is already registered");
  expect(registry.Register("s", object.key(), 0, 1001), absl::StatusCode::kResourceExhausted,
         "byte_size: 1001 more bytes on top of the 4000 registered exceed the server limit "
         "max_shared_memory_bytes=5000");
  ASSERT_TRUE(registry.Register("s", object.key(), 0, 1000).ok());
  expect(registry.Register("t", object.key(), 0, 1), absl::StatusCode::kResourceExhausted,
         "name: 2 regions are registered, the server limit max_shared_memory_regions=2; "
         "unregister one first");
  expect(registry.Unregister("nope"), absl::StatusCode::kNotFound,
         "name: no region named \"nope\" is registered");
  expect(registry.Status("nope").status(), absl::StatusCode::kNotFound,
         "name: no region named \"nope\" is registered");
}

TEST(SharedMemoryRegistryTest, ObjectTheServerMayNotOpenIsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root opens every object";
  TestObject object(4096);
  ASSERT_EQ(fchmod(shm_open(object.key().c_str(), O_RDONLY, 0), 0), 0);
  SharedMemoryRegistry registry{SharedMemoryOptions()};
  EXPECT_EQ(registry.Register("r", object.key(), 0, 1).code(), absl::StatusCode::kPermissionDenied);
}

// --- the SIGBUS guard -------------------------------------------------------------------

TEST(GuardedCopyTest, ShrunkObjectFaultsIntoFalseAndTheProcessLives) {
  TestObject object(3 * 4096);
  SharedMemoryRegistry registry{SharedMemoryOptions()};
  ASSERT_TRUE(registry.Register("r", object.key(), 0, 3 * 4096).ok());
  auto mapping = *registry.Find("r");
  std::vector<char> target(3 * 4096);
  EXPECT_TRUE(GuardedCopy(target.data(), mapping->data(), target.size()));

  object.Resize(4096);  // the owner shrinks the object under the server's mapping
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(GuardedCopy(target.data(), mapping->data(), target.size()));
  }
  EXPECT_TRUE(GuardedCopy(target.data(), mapping->data(), 4096));  // still mapped there

  sampler::LogitsView view;
  view.data = mapping->data() + 4096;
  view.size = 1024;
  view.dtype = sampler::Dtype::kFloat32;
  sampler::LogitsView copy;
  absl::Status status = CopyRowToPrivate(*mapping, view, "logits.shared_memory", &copy);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            absl::StrCat("logits.shared_memory: reading region \"r\" (key \"", object.key(),
                         "\") faulted: its owner shrank the object below the registered range"));

  object.Resize(3 * 4096);  // grown back: readable again (zeros)
  ASSERT_TRUE(CopyRowToPrivate(*mapping, view, "f", &copy).ok());
  EXPECT_NE(copy.data, view.data);
  EXPECT_EQ(copy.size, 1024u);
}

TEST(GuardedCopyDeathTest, SigbusOutsideAGuardedCopyStillKills) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TestObject object(2 * 4096);
  EXPECT_DEATH(
      {
        std::vector<char> t(16);
        GuardedCopy(t.data(), object.data(), t.size());  // installs the handler
        const int fd = shm_open(object.key().c_str(), O_RDWR, 0);
        object.Unlink();  // this process dies below: leave nothing in /dev/shm
        void* p = mmap(nullptr, 2 * 4096, PROT_READ, MAP_SHARED, fd, 0);
        if (ftruncate(fd, 0) != 0) std::abort();
        volatile char c = static_cast<const char*>(p)[4096];
        (void)c;
      },
      "");
}

// --- the codec --------------------------------------------------------------------------

class CodecSharedMemoryTest : public ::testing::Test {
 protected:
  CodecSharedMemoryTest() : object_(4096), registry_(SharedMemoryOptions()) {
    EXPECT_TRUE(registry_.Register("reg", object_.key(), 0, 4096).ok());
  }

  absl::Status Decode(const v1::Logits& logits, std::vector<DecodedRow>* rows,
                      Limits limits = Limits()) {
    v1::SampleRequest request;
    *request.add_rows()->mutable_logits() = logits;
    return DecodeRequest(
        request, limits, RequestKind::kStateless, [] { return uint64_t{7}; }, rows,
        [this](absl::string_view region) { return registry_.Find(region); });
  }

  static v1::Logits Ref(absl::string_view region, uint64_t offset, uint64_t bytes,
                        v1::Dtype dtype = v1::DTYPE_FLOAT32) {
    v1::Logits logits;
    logits.set_dtype(dtype);
    logits.mutable_shared_memory()->set_region(std::string(region));
    logits.mutable_shared_memory()->set_offset(offset);
    logits.mutable_shared_memory()->set_byte_size(bytes);
    return logits;
  }

  TestObject object_;
  SharedMemoryRegistry registry_;
};

TEST_F(CodecSharedMemoryTest, DecodesAViewIntoTheRegionThatKeepsTheMapping) {
  std::vector<DecodedRow> rows;
  ASSERT_TRUE(Decode(Ref("reg", 1024, 400, v1::DTYPE_BFLOAT16), &rows).ok());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].logits.size, 200u);
  EXPECT_EQ(rows[0].logits.dtype, sampler::Dtype::kBFloat16);
  ASSERT_NE(rows[0].shared_memory, nullptr);
  EXPECT_EQ(rows[0].logits.data, rows[0].shared_memory->data() + 1024);
  ASSERT_TRUE(registry_.Unregister("reg").ok());
  EXPECT_EQ(rows[0].shared_memory->name(), "reg");  // still alive
}

TEST_F(CodecSharedMemoryTest, EveryErrorNamesTheFieldPath) {
  std::vector<DecodedRow> rows;
  struct Case {
    v1::Logits logits;
    absl::StatusCode code;
    std::string message;
  };
  Limits small;
  small.max_vocab = 100;
  v1::Logits both = Ref("reg", 0, 4);
  both.add_values(1.0f);
  const std::vector<Case> cases = {
      {Ref("nope", 0, 4), absl::StatusCode::kNotFound,
       "rows[0].logits.shared_memory.region: no region named \"nope\" is registered"},
      {Ref("reg", 0, 4, v1::DTYPE_UNSPECIFIED), absl::StatusCode::kInvalidArgument,
       "rows[0].logits.dtype: must be DTYPE_FLOAT32, DTYPE_BFLOAT16 or DTYPE_FLOAT16 when "
       "shared_memory is set, got DTYPE_UNSPECIFIED"},
      {Ref("reg", 0, 0), absl::StatusCode::kInvalidArgument,
       "rows[0].logits.shared_memory.byte_size: must be > 0, got 0"},
      {Ref("reg", 4000, 100), absl::StatusCode::kInvalidArgument,
       "rows[0].logits.shared_memory: offset + byte_size = 4000 + 100 exceeds region \"reg\" "
       "of 4096 bytes"},
      {Ref("reg", std::numeric_limits<uint64_t>::max(), 8), absl::StatusCode::kInvalidArgument,
       "rows[0].logits.shared_memory: offset + byte_size = 18446744073709551615 + 8 exceeds "
       "region \"reg\" of 4096 bytes"},
      {Ref("reg", 0, 6), absl::StatusCode::kInvalidArgument,
       "rows[0].logits.shared_memory.byte_size: must be V * 4 for DTYPE_FLOAT32, got 6"},
      {both, absl::StatusCode::kInvalidArgument,
       "rows[0].logits: set one of values, raw or shared_memory, not several (got 1 values, "
       "0 raw bytes and shared_memory)"},
  };
  for (const Case& c : cases) {
    absl::Status status = Decode(c.logits, &rows);
    EXPECT_EQ(status.code(), c.code) << status;
    EXPECT_EQ(status.message(), c.message);
  }
  absl::Status status = Decode(Ref("reg", 0, 404), &rows, small);
  EXPECT_EQ(status.message(),
            "rows[0].logits.shared_memory.byte_size: 404 bytes hold 101 logits, more than the "
            "server limit max_vocab=100");

  // Without a resolver (shared memory off): PERMISSION_DENIED.
  v1::SampleRequest request;
  *request.add_rows()->mutable_logits() = Ref("reg", 0, 4);
  status = DecodeRequest(
      request, Limits(), RequestKind::kStateless, [] { return uint64_t{7}; }, &rows);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(status.message(),
            "rows[0].logits.shared_memory.region: shared memory is off on this server "
            "(--shared_memory=off), got region \"reg\"");
}

// --- the service -------------------------------------------------------------------------

std::string SocketPath() {
  return absl::StrCat(::testing::TempDir(), "tokensampler-shm-test-", getpid(), ".sock");
}

class SharedMemoryServiceTest : public InProcessServerTest {
 protected:
  // stub_ talks over the Unix socket when there is one, tcp_stub_ over TCP.
  void StartServer(SharedMemoryMode mode, bool unix_socket = true) {
    ServerOptions options;
    socket_path_ = SocketPath();
    options.workers = 2;
    options.sample_on_grpc_threads = true;
    options.limits.max_vocab = 200000;
    options.shared_memory.mode = mode;
    InProcessServerTest::StartServer(
        options, unix_socket ? absl::StrCat("127.0.0.1:0,unix:", socket_path_) : "127.0.0.1:0");
    tcp_stub_ = v1::Sampler::NewStub(channel_);
    if (unix_socket) {
      stub_ = v1::Sampler::NewStub(PrivateChannel(absl::StrCat("unix:", socket_path_)));
    }
  }

  grpc::Status Register(absl::string_view name, const std::string& key, uint64_t offset,
                        uint64_t bytes) {
    v1::RegisterSharedMemoryRequest request;
    request.set_name(std::string(name));
    request.set_key(key);
    request.set_offset(offset);
    request.set_byte_size(bytes);
    v1::RegisterSharedMemoryResponse response;
    return stub_->RegisterSharedMemory(DeadlineContext().get(), request, &response);
  }

  grpc::Status Unregister(absl::string_view name) {
    v1::UnregisterSharedMemoryRequest request;
    request.set_name(std::string(name));
    v1::UnregisterSharedMemoryResponse response;
    return stub_->UnregisterSharedMemory(DeadlineContext().get(), request, &response);
  }

  grpc::Status Sample(v1::Sampler::Stub* stub, const v1::SampleRequest& request,
                      v1::SampleResponse* response) {
    return stub->Sample(DeadlineContext().get(), request, response);
  }

  static v1::Row SharedRow(absl::string_view region, uint64_t offset, uint64_t bytes,
                           v1::Dtype dtype, uint64_t seed) {
    v1::Row row;
    row.mutable_logits()->set_dtype(dtype);
    v1::SharedMemoryRef* ref = row.mutable_logits()->mutable_shared_memory();
    ref->set_region(std::string(region));
    ref->set_offset(offset);
    ref->set_byte_size(bytes);
    row.mutable_params()->set_seed(seed);
    row.mutable_params()->set_top_k(50);
    return row;
  }

  std::string socket_path_;
  std::unique_ptr<v1::Sampler::Stub> tcp_stub_;
};

TEST_F(SharedMemoryServiceTest, UnixAndTcpFromOneProcessSameTokensAsRawForEveryDtype) {
  StartServer(SharedMemoryMode::kLocal);
  ASSERT_EQ(server_->addresses().size(), 2u);
  EXPECT_EQ(server_->addresses()[1], absl::StrCat("unix:", socket_path_));
  struct stat socket_info;
  ASSERT_EQ(stat(socket_path_.c_str(), &socket_info), 0);
  EXPECT_EQ(socket_info.st_mode & 0777, 0660u);

  constexpr int kVocab = 5000;
  // Small integers and halves: exact in float32, bfloat16 and float16 alike.
  std::vector<float> logits = RandomLogits(kVocab, 3);
  for (float& x : logits) x = std::round(x * 2) / 2;
  TestObject object(3 * kVocab * 4);
  ASSERT_TRUE(Register("all", object.key(), 0, object.size()).ok());
  size_t offset = 0;
  for (v1::Dtype dtype : {v1::DTYPE_FLOAT32, v1::DTYPE_BFLOAT16, v1::DTYPE_FLOAT16}) {
    const std::string bytes = LogitBytes(logits, dtype);
    object.Write(offset, bytes.data(), bytes.size());
    v1::SampleRequest shared, raw;
    for (uint64_t seed = 1; seed <= 8; ++seed) {
      *shared.add_rows() = SharedRow("all", offset, bytes.size(), dtype, seed);
      v1::Row* row = raw.add_rows();
      row->mutable_logits()->set_dtype(dtype);
      row->mutable_logits()->set_raw(bytes);
      *row->mutable_params() = shared.rows(0).params();
      row->mutable_params()->set_seed(seed);
    }
    v1::SampleResponse from_shared, from_raw;
    ASSERT_TRUE(Sample(stub_.get(), shared, &from_shared).ok());  // over the Unix socket
    ASSERT_TRUE(Sample(tcp_stub_.get(), raw, &from_raw).ok());    // over TCP
    ASSERT_EQ(from_shared.results_size(), 8);
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(from_shared.results(i).samples(0).token_id(),
                from_raw.results(i).samples(0).token_id())
          << v1::Dtype_Name(dtype) << " row " << i;
    }
    offset += bytes.size();
  }

  // The same region through SampleStream and GetDistribution.
  auto context = DeadlineContext();
  auto stream = stub_->SampleStream(context.get());
  v1::SampleRequest step;
  *step.add_rows() = SharedRow("all", 0, kVocab * 4, v1::DTYPE_FLOAT32, 1);
  step.mutable_rows(0)->set_sequence_id("s");
  v1::SampleResponse response;
  ASSERT_TRUE(stream->Write(step));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.results_size(), 1);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  v1::DistributionResponse distribution;
  ASSERT_TRUE(stub_->GetDistribution(DeadlineContext().get(), step, &distribution).ok());
  EXPECT_EQ(distribution.distributions(0).token_ids_size(), 50);

  v1::GetSharedMemoryStatusResponse status;
  ASSERT_TRUE(stub_
                  ->GetSharedMemoryStatus(DeadlineContext().get(),
                                          v1::GetSharedMemoryStatusRequest(), &status)
                  .ok());
  ASSERT_EQ(status.regions_size(), 1);
  EXPECT_EQ(status.regions(0).key(), object.key());
  v1::ServerInfo info;
  ASSERT_TRUE(
      stub_->GetServerInfo(DeadlineContext().get(), v1::GetServerInfoRequest(), &info).ok());
  EXPECT_EQ(info.shared_memory_mode(), v1::SHARED_MEMORY_MODE_LOCAL);
  EXPECT_EQ(info.shared_memory_prefix(), "/tokensampler");
  EXPECT_EQ(info.max_shared_memory_regions(), 256);
  EXPECT_EQ(info.max_shared_memory_bytes(), uint64_t{16} << 30);
}

TEST_F(SharedMemoryServiceTest, ErrorsReachTheCallerWithTheirCodes) {
  StartServer(SharedMemoryMode::kLocal);
  TestObject object(4096);
  EXPECT_EQ(Register("a", "/elsewhere", 0, 1).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Register("a", "/tokensampler-none", 0, 1).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Register("a b", object.key(), 0, 1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Register("a", object.key(), 0, 4096).ok());
  EXPECT_EQ(Register("a", object.key(), 0, 1).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Unregister("b").error_code(), grpc::StatusCode::NOT_FOUND);

  v1::SampleRequest request;
  *request.add_rows() = SharedRow("b", 0, 16, v1::DTYPE_FLOAT32, 1);
  v1::SampleResponse response;
  grpc::Status status = Sample(stub_.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(),
            "rows[0].logits.shared_memory.region: no region named \"b\" is registered");

  // NaN and +inf are rejected exactly as in an inline row.
  object.WriteFloats(0, {1.0f, std::nanf(""), 2.0f, 3.0f});
  *request.mutable_rows(0) = SharedRow("a", 0, 16, v1::DTYPE_FLOAT32, 1);
  status = Sample(stub_.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::SampleRequest inline_request;
  v1::Row* inline_row = inline_request.add_rows();
  for (float x : {1.0f, std::nanf(""), 2.0f, 3.0f}) inline_row->mutable_logits()->add_values(x);
  *inline_request.mutable_rows(0)->mutable_params() = request.rows(0).params();
  grpc::Status inline_status = Sample(stub_.get(), inline_request, &response);
  EXPECT_EQ(status.error_message(), inline_status.error_message());
}

TEST_F(SharedMemoryServiceTest, OffRefusesEverything) {
  StartServer(SharedMemoryMode::kOff);
  TestObject object(4096);
  grpc::Status status = Register("a", object.key(), 0, 4096);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(), "shared memory: off on this server (--shared_memory=off)");
  EXPECT_EQ(Unregister("").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::SampleRequest request;
  *request.add_rows() = SharedRow("a", 0, 16, v1::DTYPE_FLOAT32, 1);
  v1::SampleResponse response;
  status = Sample(stub_.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(),
            "rows[0].logits.shared_memory.region: shared memory: off on this server "
            "(--shared_memory=off)");
  v1::ServerInfo info;
  ASSERT_TRUE(
      stub_->GetServerInfo(DeadlineContext().get(), v1::GetServerInfoRequest(), &info).ok());
  EXPECT_EQ(info.shared_memory_mode(), v1::SHARED_MEMORY_MODE_OFF);
}

TEST_F(SharedMemoryServiceTest, UnregisterDuringACallKeepsItsMapping) {
  StartServer(SharedMemoryMode::kLocal, /*unix_socket=*/false);
  constexpr int kVocab = 1000;
  TestObject object(kVocab * 4);
  object.WriteFloats(0, RandomLogits(kVocab, 9));
  ASSERT_TRUE(Register("r", object.key(), 0, object.size()).ok());
  v1::SampleRequest request;
  for (int i = 0; i < 4; ++i)
    *request.add_rows() = SharedRow("r", 0, kVocab * 4, v1::DTYPE_FLOAT32, i);
  server_->pool().Pause();  // the call decodes (holds the mapping) and waits for a worker
  v1::SampleResponse response;
  grpc::Status status;
  std::thread call([&] { status = Sample(stub_.get(), request, &response); });
  for (int i = 0; i < 500 && server_->pool().queued() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(server_->pool().queued(), 0u);
  ASSERT_TRUE(Unregister("r").ok());  // returns at once, with the call still queued
  object.Unlink();
  server_->pool().Resume();
  call.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.results_size(), 4);
}

// The owner misbehaves: one thread scribbles NaN, inf and random bits into the region,
// another shrinks and regrows the object, while calls read it. Each call returns a token
// or an error; the server stays up and answers a clean call correctly afterwards.
TEST_F(SharedMemoryServiceTest, ScribblingShrinkingAndUnlinkingOwnerCannotHurtTheServer) {
  StartServer(SharedMemoryMode::kLocal);
  constexpr int kVocab = 100000;
  constexpr size_t kBytes = kVocab * 4;
  TestObject object(kBytes);
  const std::vector<float> clean = RandomLogits(kVocab, 11);
  object.WriteFloats(0, clean);
  ASSERT_TRUE(Register("r", object.key(), 0, kBytes).ok());
  const int fd = shm_open(object.key().c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  void* writable = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(writable, MAP_FAILED);

  std::atomic<bool> stop{false};
  std::thread scribbler([&] {
    std::mt19937 gen(5);
    const float specials[] = {std::nanf(""), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), 1e30f, -0.0f};
    auto* floats = static_cast<uint32_t*>(writable);
    while (!stop.load()) {
      for (int i = 0; i < 256; ++i) {
        const size_t at = gen() % kVocab;
        uint32_t bits = gen();
        if (gen() % 2 == 0) std::memcpy(&bits, &specials[gen() % 5], 4);
        // A write past the shrunk end faults for the writer too: guard it the same way.
        GuardedCopy(&floats[at], &bits, sizeof(bits));
      }
    }
  });
  std::thread shrinker([&] {
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      if (ftruncate(fd, 4096) != 0) break;
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      if (ftruncate(fd, kBytes) != 0) break;
    }
  });

  int ok = 0, failed = 0;
  for (int i = 0; i < 60; ++i) {
    v1::SampleRequest request;
    for (int r = 0; r < 4; ++r)
      *request.add_rows() = SharedRow("r", 0, kBytes, v1::DTYPE_FLOAT32, r);
    v1::SampleResponse response;
    grpc::Status status = Sample(stub_.get(), request, &response);
    if (status.ok()) {
      ++ok;
      for (const auto& result : response.results()) {
        EXPECT_GE(result.samples(0).token_id(), 0);
        EXPECT_LT(result.samples(0).token_id(), kVocab);
      }
    } else {
      ++failed;
      EXPECT_THAT(status.error_code(), testing::AnyOf(grpc::StatusCode::INVALID_ARGUMENT,
                                                      grpc::StatusCode::FAILED_PRECONDITION))
          << status.error_message();
    }
  }
  stop.store(true);
  scribbler.join();
  shrinker.join();
  EXPECT_EQ(ok + failed, 60);
  // Unlinked and shrunk for good: calls fail cleanly.
  object.Unlink();
  ASSERT_EQ(ftruncate(fd, 0), 0);
  v1::SampleRequest request;
  *request.add_rows() = SharedRow("r", 0, kBytes, v1::DTYPE_FLOAT32, 1);
  v1::SampleResponse response;
  grpc::Status status = Sample(stub_.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), StartsWith("rows[0].logits.shared_memory: reading region"));
  munmap(writable, kBytes);
  close(fd);

  // Healthy afterwards: a clean inline row gives the right greedy token.
  v1::SampleRequest greedy;
  greedy.add_rows()->mutable_logits()->mutable_values()->Add(clean.begin(), clean.end());
  greedy.mutable_rows(0)->mutable_params()->set_temperature(0.0f);
  ASSERT_TRUE(Sample(tcp_stub_.get(), greedy, &response).ok());
  EXPECT_EQ(response.results(0).samples(0).token_id(),
            std::max_element(clean.begin(), clean.end()) - clean.begin());
}

TEST(ServerAddressTest, LiveUnixSocketIsRefusedAndStaleOneReplaced) {
  const std::string path = absl::StrCat(SocketPath(), ".live");
  ServerOptions options;
  options.address = absl::StrCat("unix://", path);
  auto first = Server::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Server::Start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(),
            absl::StrCat("--address: unix:", path, ": another process is listening on it"));
  first->reset();
  // gRPC leaves the socket file behind (or not); either way a new server may start.
  auto third = Server::Start(options);
  ASSERT_TRUE(third.ok()) << third.status();

  options.address = "unix:/no/such/dir/sock";
  EXPECT_EQ(Server::Start(options).status().message(),
            "--address: unix:/no/such/dir/sock: directory /no/such/dir does not exist (create "
            "it first)");
  options.address = "127.0.0.1:0,,unix:/tmp/x";
  EXPECT_THAT(std::string(Server::Start(options).status().message()),
              StartsWith("--address: empty entry"));
}

}  // namespace
}  // namespace tokensampler::server
