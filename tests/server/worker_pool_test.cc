#include "server/worker_pool.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace tokensampler::server {
namespace {

TEST(WorkerPoolTest, ZeroWorkersMeansOnePerCpu) {
  WorkerPool pool(0, 4);
  EXPECT_EQ(pool.threads(), ResolveWorkerCount(0));
  EXPECT_GE(pool.threads(), 1);
  EXPECT_EQ(ResolveWorkerCount(3), 3);
}

TEST(WorkerPoolTest, RunsEveryTaskOnItsWorkersSampler) {
  std::atomic<int> ran{0};
  std::mutex mu;
  std::set<sampler::Sampler*> samplers;
  std::set<std::thread::id> threads;
  {
    WorkerPool pool(2, 64);
    for (int i = 0; i < 40; ++i) {
      std::vector<WorkerPool::Task> tasks;
      tasks.push_back([&](sampler::Sampler& s) {
        std::lock_guard<std::mutex> lock(mu);
        samplers.insert(&s);
        threads.insert(std::this_thread::get_id());
        ++ran;
      });
      while (!pool.TrySubmit(std::move(tasks))) {
        // Rebuild: a rejected batch is dropped.
        tasks.clear();
        tasks.push_back([&](sampler::Sampler&) { ++ran; });
        std::this_thread::yield();
      }
    }
  }  // destructor runs what is queued
  EXPECT_EQ(ran.load(), 40);
  // One Sampler per worker thread, never shared between threads.
  EXPECT_EQ(samplers.size(), threads.size());
  EXPECT_LE(samplers.size(), 2u);
}

TEST(WorkerPoolTest, FullQueueRejectsWholeBatches) {
  WorkerPool pool(1, 3);
  pool.Pause();
  std::atomic<int> ran{0};
  auto make = [&ran](int n) {
    std::vector<WorkerPool::Task> tasks;
    for (int i = 0; i < n; ++i) tasks.push_back([&ran](sampler::Sampler&) { ++ran; });
    return tasks;
  };
  EXPECT_TRUE(pool.TrySubmit(make(2)));
  EXPECT_FALSE(pool.TrySubmit(make(2)));  // 2 + 2 > 3: none of them queued
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_TRUE(pool.TrySubmit(make(1)));
  EXPECT_FALSE(pool.TrySubmit(make(1)));
  EXPECT_EQ(ran.load(), 0);
  pool.Resume();
  while (ran.load() < 3) std::this_thread::yield();
  EXPECT_EQ(ran.load(), 3);
  EXPECT_TRUE(pool.TrySubmit(make(3)));
}

TEST(WorkerPoolTest, TasksForSplitsOverWorkers) {
  WorkerPool pool(2, 8);
  EXPECT_EQ(pool.TasksFor(1), 1u);
  EXPECT_EQ(pool.TasksFor(2), 2u);
  EXPECT_EQ(pool.TasksFor(100), 2u);
}

}  // namespace
}  // namespace tokensampler::server
