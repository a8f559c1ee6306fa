// Scale-in without failed calls: two in-process servers behind the client's round_robin
// channel (a comma list, which also watches grpc.health.v1), callers sending without
// pause, and one server stopped the way tokensampler-server stops on SIGTERM: lame duck
// (health NOT_SERVING, still serving) until the client has moved away, then Shutdown.
// No call may fail, and no retry policy is needed for it: health checking keeps new
// calls off the lame duck and the calls it already has finish during the drain.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/server/test_util.h"
#include "tokensampler/v1/sampler.pb.h"

namespace tokensampler {
namespace {

// A graceful shutdown waits until idle client connections have read the GOAWAY; an
// idle C++ client polls its sockets only every 5 s by default (set before gRPC starts).
const bool kFastClientPoll = [] {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50", 1);
  return true;
}();

std::unique_ptr<server::Server> StartServer() {
  server::ServerOptions options;
  options.address = "127.0.0.1:0";
  options.workers = 1;
  options.queue_depth = 64;
  absl::StatusOr<std::unique_ptr<server::Server>> s = server::Server::Start(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

uint64_t Served(server::Server& s) { return s.service().requests_served(); }

// Threads that are stopped and joined when this goes out of scope, so that a failed
// ASSERT (which returns from the test early) fails the test instead of destroying
// joinable std::threads (std::terminate).
class StoppedThreads {
 public:
  explicit StoppedThreads(std::atomic<bool>* stop) : stop_(stop) {}
  ~StoppedThreads() { Join(); }
  StoppedThreads(const StoppedThreads&) = delete;
  StoppedThreads& operator=(const StoppedThreads&) = delete;

  template <typename F>
  void Start(F body) {
    threads_.emplace_back(std::move(body));
  }
  void Join() {
    stop_->store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::atomic<bool>* stop_;
  std::vector<std::thread> threads_;
};

TEST(DrainTest, RoundRobinClientSeesNoFailureWhenOneServerDrainsUnderLoad) {
  std::unique_ptr<server::Server> a = StartServer();
  std::unique_ptr<server::Server> b = StartServer();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto client = client::Client::Create(absl::StrCat(a->address(), ",", b->address()));
  ASSERT_TRUE(client.ok()) << client.status();

  v1::SampleRequest request;
  v1::Row* row = request.add_rows();
  for (int i = 0; i < 4096; ++i) row->mutable_logits()->add_values(static_cast<float>(i % 97));
  row->mutable_params()->set_temperature(0.8f);

  constexpr int kCallers = 4;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok_calls{0};
  std::mutex mu;
  std::map<std::string, int> failures;  // code name -> count
  std::string first_failure;
  StoppedThreads callers(&stop);  // declared after what the callers use: joined first
  for (int t = 0; t < kCallers; ++t) {
    callers.Start([&] {
      while (!stop.load()) {
        absl::StatusOr<v1::SampleResponse> r = (*client)->Sample(request);
        if (r.ok()) {
          ok_calls.fetch_add(1);
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        ++failures[absl::StatusCodeToString(r.status().code())];
        if (first_failure.empty()) first_failure = r.status().ToString();
      }
    });
  }

  // Both servers take load.
  ASSERT_TRUE(server::Eventually([&] { return Served(*a) >= 100 && Served(*b) >= 100; }, 30));

  // Lame duck: wait until the client has stopped sending to `a`, i.e. `b` served 200
  // calls in a row while `a`'s count stood still (with `a` still picked, round robin
  // would have sent it about half of them).
  a->EnterLameDuck();
  bool moved_away = false;
  for (int attempt = 0; attempt < 50 && !moved_away; ++attempt) {
    const uint64_t a_before = Served(*a);
    const uint64_t b_before = Served(*b);
    ASSERT_TRUE(server::Eventually([&] { return Served(*b) >= b_before + 200; }, 30));
    moved_away = Served(*a) == a_before;
  }
  ASSERT_TRUE(moved_away) << "the round_robin client kept calling the NOT_SERVING server";

  // Then the port closes, as after --lame_duck; `b` keeps serving everything.
  a->Shutdown(absl::Seconds(10));
  const uint64_t b_after_shutdown = Served(*b);
  ASSERT_TRUE(server::Eventually([&] { return Served(*b) >= b_after_shutdown + 200; }, 30));
  callers.Join();

  EXPECT_TRUE(failures.empty()) << failures.size() << " failure code(s), first: "
                                << first_failure;
  EXPECT_GT(ok_calls.load(), 0);
  EXPECT_EQ(static_cast<uint64_t>(ok_calls.load()), Served(*a) + Served(*b));
}

}  // namespace
}  // namespace tokensampler
