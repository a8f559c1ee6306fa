#include "server/worker_pool.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
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
  std::atomic<int> overlaps{0};
  std::mutex mu;
  std::map<sampler::Sampler*, std::set<std::thread::id>> threads_of;
  std::map<std::thread::id, std::set<sampler::Sampler*>> samplers_of;
  std::map<sampler::Sampler*, int> in_use;  // tasks inside each Sampler right now
  auto task = [&](sampler::Sampler& s) {
    {
      std::lock_guard<std::mutex> lock(mu);
      threads_of[&s].insert(std::this_thread::get_id());
      samplers_of[std::this_thread::get_id()].insert(&s);
      if (++in_use[&s] > 1) ++overlaps;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    {
      std::lock_guard<std::mutex> lock(mu);
      --in_use[&s];
    }
    ++ran;
  };
  {
    WorkerPool pool(2, 80);  // room for all 80 tasks: submitting never races the workers
    for (int i = 0; i < 40; ++i) {
      std::vector<WorkerPool::Task> tasks;
      tasks.push_back(task);
      tasks.push_back(task);
      ASSERT_TRUE(pool.TrySubmit(std::move(tasks)));
    }
  }  // destructor runs what is queued
  EXPECT_EQ(ran.load(), 80);
  EXPECT_EQ(overlaps.load(), 0) << "two tasks used one Sampler at the same time";
  // Without caller_runs each worker keeps its own Sampler: a Sampler seen by one thread
  // only, and a thread that used one Sampler only.
  ASSERT_GE(threads_of.size(), 1u);
  EXPECT_LE(threads_of.size(), 2u);
  for (const auto& [sampler, threads] : threads_of) EXPECT_EQ(threads.size(), 1u);
  for (const auto& [thread, samplers] : samplers_of) EXPECT_EQ(samplers.size(), 1u);
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

TEST(WorkerPoolTest, CallerRunsOnlyWhenAllowed) {
  std::atomic<int> ran{0};
  WorkerPool::Task task = [&ran](sampler::Sampler&) { ++ran; };
  WorkerPool off(1, 4);
  EXPECT_FALSE(off.TryRunHere(task));
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(off.ran_here(), 0u);

  WorkerPool on(1, 4, /*caller_runs=*/true);
  std::thread::id ran_on;
  WorkerPool::Task here = [&](sampler::Sampler&) {
    ran_on = std::this_thread::get_id();
    ++ran;
  };
  ASSERT_TRUE(on.TryRunHere(here));
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(here, nullptr);  // run and released
  EXPECT_EQ(on.ran_here(), 1u);
  // Paused: the call must queue like any other.
  on.Pause();
  EXPECT_FALSE(on.TryRunHere(task));
  EXPECT_NE(task, nullptr);
  on.Resume();
  EXPECT_EQ(ran.load(), 1);
}

TEST(WorkerPoolTest, CallerRunsOnlyInAFreeSlot) {
  WorkerPool pool(1, 4, /*caller_runs=*/true);
  // The one worker is busy: no slot for the caller.
  absl::Notification started, release;
  std::vector<WorkerPool::Task> busy;
  busy.push_back([&](sampler::Sampler&) {
    started.Notify();
    release.WaitForNotification();
  });
  ASSERT_TRUE(pool.TrySubmit(std::move(busy)));
  started.WaitForNotification();
  std::atomic<int> ran{0};
  WorkerPool::Task task = [&ran](sampler::Sampler&) { ++ran; };
  EXPECT_FALSE(pool.TryRunHere(task));
  EXPECT_EQ(ran.load(), 0);
  release.Notify();

  // The caller holds the only slot: a task queued meanwhile waits for it, then runs.
  std::atomic<bool> queued_ran{false};
  bool queued_ran_before_return = true;
  sampler::Sampler* caller_sampler = nullptr;
  sampler::Sampler* worker_sampler = nullptr;
  WorkerPool::Task here = [&](sampler::Sampler& s) {
    caller_sampler = &s;
    std::vector<WorkerPool::Task> later;
    later.push_back([&](sampler::Sampler& w) {
      worker_sampler = &w;
      queued_ran = true;
    });
    ASSERT_TRUE(pool.TrySubmit(std::move(later)));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    queued_ran_before_return = queued_ran.load();
  };
  // The worker may still be finishing the busy task: retry until its slot is free.
  while (!pool.TryRunHere(here)) std::this_thread::yield();
  EXPECT_FALSE(queued_ran_before_return);
  while (!queued_ran.load()) std::this_thread::yield();
  // One slot, one Sampler, never used by two tasks at once.
  EXPECT_EQ(caller_sampler, worker_sampler);
}

TEST(WorkerPoolTest, DestructorWaitsForCallersStillRunningHere) {
  auto* pool = new WorkerPool(1, 4, /*caller_runs=*/true);
  absl::Notification started, release;
  std::thread caller([&] {
    WorkerPool::Task task = [&](sampler::Sampler&) {
      started.Notify();
      release.WaitForNotification();
    };
    ASSERT_TRUE(pool->TryRunHere(task));
  });
  started.WaitForNotification();
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    delete pool;
    destroyed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(destroyed.load());
  release.Notify();
  caller.join();
  destroyer.join();
  EXPECT_TRUE(destroyed.load());
}

TEST(WorkerPoolTest, TasksForSplitsOverWorkers) {
  WorkerPool pool(2, 8);
  EXPECT_EQ(pool.TasksFor(1), 1u);
  EXPECT_EQ(pool.TasksFor(2), 2u);
  EXPECT_EQ(pool.TasksFor(100), 2u);
}

}  // namespace
}  // namespace tokensampler::server
