// support::parallelFor on its persistent pool: every index exactly once for any thread count,
// nested loops and concurrent callers (which run on their own thread), and a forked child that
// uses the pool its parent started (the pool's threads do not survive fork: it must not wait
// for them).

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "trnsim/support/parallel.h"

namespace trnsim::support {
namespace {

std::vector<int> countsFor(size_t n, uint32_t threads) {
  std::vector<std::atomic<int>> hits(n);
  parallelFor(n, threads, [&](size_t i) { hits[i].fetch_add(1); });
  std::vector<int> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = hits[i].load();
  return out;
}

TEST(ParallelFor, EveryIndexOnceForAnyThreadCount) {
  for (uint32_t threads : {1u, 2u, 3u, 8u, 0u}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}}) {
      EXPECT_EQ(countsFor(n, threads), std::vector<int>(n, 1)) << threads << " threads, n " << n;
    }
  }
}

TEST(ParallelFor, WorkerIdsStayBelowTheWorkerCount) {
  const uint32_t workers = workersFor(100, 4);
  std::vector<std::atomic<int>> perWorker(workers);
  parallelFor(100, 4, [&](uint32_t w, size_t) {
    ASSERT_LT(w, workers);
    perWorker[w].fetch_add(1);
  });
  int total = 0;
  for (auto& c : perWorker) total += c.load();
  EXPECT_EQ(total, 100);
}

TEST(ParallelFor, NestedAndConcurrentLoopsComplete) {
  std::atomic<int> inner{0};
  parallelFor(4, 4, [&](size_t) { parallelFor(10, 4, [&](size_t) { inner.fetch_add(1); }); });
  EXPECT_EQ(inner.load(), 40);
  std::atomic<int> both{0};
  std::thread other([&] { parallelFor(500, 2, [&](size_t) { both.fetch_add(1); }); });
  parallelFor(500, 2, [&](size_t) { both.fetch_add(1); });
  other.join();
  EXPECT_EQ(both.load(), 1000);
}

TEST(ParallelFor, ForkedChildRunsItsLoopsWithoutThePoolThreads) {
  EXPECT_EQ(countsFor(64, 4), std::vector<int>(64, 1));  // the pool now has threads
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::atomic<int> sum{0};
    parallelFor(64, 4, [&](size_t i) { sum.fetch_add(int(i)); });
    _exit(sum.load() == 63 * 64 / 2 ? 0 : 1);
  }
  int status = 0;
  pid_t done = 0;
  for (int waited = 0; waited < 300 && done == 0; ++waited) {  // up to 30 s
    done = waitpid(child, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL() << "the forked child hung in parallelFor";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(countsFor(64, 4), std::vector<int>(64, 1));  // the parent's pool still works
}

}  // namespace
}  // namespace trnsim::support
