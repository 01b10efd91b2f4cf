// RunOptions::threads: the same programs run with 1 host thread and with several (more than
// this machine may have cores, so the pool really interleaves) give the same output bytes and
// the same timing. Also the one parallel loop (support::parallelFor) itself: every index once,
// nested and concurrent loops.

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "functional_test_util.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/support/parallel.h"

namespace trnsim::sim {
namespace {

struct Outcome {
  std::vector<std::byte> out;
  RunResult result;
};

/// Loads `program` on a fresh trn2 chip, fills every named input with seeded normals, runs
/// values and timing with `threads` host threads and returns "out" and the run's result.
Outcome runWith(const isa::Program& program, const std::vector<std::string>& inputs,
                uint32_t threads) {
  Chip chip(testing::trn2());
  Status s = chip.load({program});
  EXPECT_TRUE(s.isOk()) << s.toString();
  std::mt19937 gen(3);
  std::normal_distribution<float> normal;
  for (const std::string& name : inputs) {
    auto cur = chip.readFloats(name);
    EXPECT_TRUE(cur.hasValue()) << name;
    std::vector<float> v(cur.hasValue() ? cur->size() : 0);
    for (float& x : v) x = normal(gen);
    EXPECT_TRUE(chip.writeFloats(name, v).isOk()) << name;
  }
  RunOptions o;
  o.threads = threads;
  auto r = chip.run(o);
  EXPECT_TRUE(r.hasValue()) << (r.hasValue() ? "" : r.status().toString());
  auto out = chip.read("out");
  EXPECT_TRUE(out.hasValue());
  return {out.hasValue() ? *out : std::vector<std::byte>{}, r.hasValue() ? *r : RunResult{}};
}

void expectSameRuns(const isa::Program& program, const std::vector<std::string>& inputs) {
  const Outcome one = runWith(program, inputs, 1);
  ASSERT_FALSE(one.out.empty());
  for (uint32_t threads : {2u, 5u, 0u}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    const Outcome many = runWith(program, inputs, threads);
    EXPECT_TRUE(many.out == one.out) << "output bytes differ";
    EXPECT_EQ(many.result.instructions, one.result.instructions);
    EXPECT_EQ(many.result.simulatedNs, one.result.simulatedNs);
    ASSERT_EQ(many.result.timeline.events.size(), one.result.timeline.events.size());
    for (size_t i = 0; i < one.result.timeline.events.size(); ++i) {
      const TimelineEvent& a = one.result.timeline.events[i];
      const TimelineEvent& b = many.result.timeline.events[i];
      ASSERT_TRUE(a.instruction == b.instruction && a.startNs == b.startNs && a.endNs == b.endNs)
          << "event " << i;
    }
  }
}

TEST(FunctionalThreads, TiledMatmulSameBitsAndTimingForAnyThreadCount) {
  auto p = kernels::matmulProgram(testing::trn2(), 256, 384, 1024, numerics::DType::kBF16,
                                  numerics::DType::kFP32);
  ASSERT_TRUE(p.hasValue()) << p.status().toString();
  expectSameRuns(*p, {"lhsT", "rhs"});
}

TEST(FunctionalThreads, EdgeTilesAndFp32SameBitsForAnyThreadCount) {
  // Shapes that leave partial tiles (rows not a multiple of 6, columns not of 16), fp32
  // operands (the unfused kernel) and a batch.
  auto p = kernels::matmulABProgram(testing::trn2(), {2, 131, 300}, {300, 203},
                                    numerics::DType::kFP32, numerics::DType::kFP32);
  ASSERT_TRUE(p.hasValue()) << p.status().toString();
  expectSameRuns(*p, {"a", "b"});
}

TEST(ParallelFor, EveryIndexOnceNestedAndConcurrent) {
  for (uint32_t threads : {1u, 2u, 7u, 0u}) {
    std::vector<std::atomic<int>> hits(1000);
    support::parallelFor(hits.size(), threads, [&](size_t i) { hits[i]++; });
    for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
  }
  // Nested loops and two caller threads at once: the inner or second loop runs on its own
  // thread when the pool is busy, still every index once.
  std::vector<std::atomic<int>> grid(64 * 64);
  auto nested = [&] {
    support::parallelFor(64, 4, [&](size_t i) {
      support::parallelFor(64, 4, [&](size_t j) { grid[i * 64 + j]++; });
    });
  };
  std::thread other(nested);
  nested();
  other.join();
  for (size_t i = 0; i < grid.size(); ++i) ASSERT_EQ(grid[i].load(), 2) << i;
  // Per-worker slots stay within workersFor.
  const uint32_t workers = support::workersFor(100, 3);
  std::vector<std::atomic<int>> perWorker(workers);
  support::parallelFor(100, 3, [&](uint32_t w, size_t) {
    ASSERT_LT(w, workers);
    perWorker[w]++;
  });
  int total = 0;
  for (auto& n : perWorker) total += n.load();
  EXPECT_EQ(total, 100);
}

}  // namespace
}  // namespace trnsim::sim
