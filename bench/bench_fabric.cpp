// Speed of the fabric's collective cost model (issue 4: a 100,000-chip all-reduce estimate in
// under 100 ms; the planner wants a whole step's collectives in about 10 ms).
//
// Cold: a new CollectiveModel per iteration (topology built, nothing memoized), then one
// auto-selected all-reduce: every candidate algorithm is timed from scratch. Warm: the same
// estimate on a model that has answered it before (the planner's case inside a search).

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "trnsim/arch/system_config.h"
#include "trnsim/fabric/collective.h"

namespace {

using namespace trnsim;

const arch::SystemConfig& systemNamed(const char* name) {
  static std::map<std::string, arch::SystemConfig> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    auto s = arch::loadSystem(name);
    if (!s) {
      std::fprintf(stderr, "bench_fabric: %s\n", s.status().toString().c_str());
      std::abort();
    }
    it = cache.emplace(name, *s).first;
  }
  return it->second;
}

fabric::CollectiveRequest allReduce(uint64_t bytes, uint64_t groupSize = 0, uint64_t stride = 1) {
  fabric::CollectiveRequest r;
  r.op = fabric::CollectiveOp::kAllReduce;
  r.bytes = bytes;
  r.group = {groupSize, stride, true};
  return r;
}

void coldAllReduce(benchmark::State& state, const char* system, uint64_t chips) {
  const arch::SystemConfig& s = systemNamed(system);
  double time = 0;
  for (auto _ : state) {
    auto model = fabric::CollectiveModel::create(s, chips);
    if (!model) {
      state.SkipWithError(model.status().toString().c_str());
      return;
    }
    auto c = model->estimate(allReduce(uint64_t(1) << 30));
    if (!c) {
      state.SkipWithError(c.status().toString().c_str());
      return;
    }
    // (Not DoNotOptimize(double&): with GCC 12 and Debian's Google Benchmark 1.7.1 its "+m,r"
    // constraint hands back garbage for a double.)
    benchmark::DoNotOptimize(c);
    time = c->timeS;
  }
  state.counters["chips"] = double(chips);
  state.counters["allreduce_1GiB_ms"] = time * 1e3;
}

void warmAllReduce(benchmark::State& state, const char* system, uint64_t chips) {
  const arch::SystemConfig& s = systemNamed(system);
  auto model = fabric::CollectiveModel::create(s, chips);
  if (!model) {
    state.SkipWithError(model.status().toString().c_str());
    return;
  }
  uint64_t bytes = 1 << 20;
  for (auto _ : state) {
    auto c = model->estimate(allReduce(bytes));
    benchmark::DoNotOptimize(c);
    bytes = bytes * 2 > (uint64_t(1) << 34) ? (1 << 20) : bytes * 2;  // a new size each time
  }
}

// The collectives of one training step on 100,000 trn2 chips (400,000 ranks), as a planner
// asks for them: TP=16 all-reduce and reduce-scatter/all-gather inside a node, PP send/recv,
// EP all-to-all over 8 ranks (one per node), DP reduce-scatter and all-gather across the cluster.
volatile double sink = 0;

void coldTrainingStep(benchmark::State& state) {
  const arch::SystemConfig& s = systemNamed("trn2.48xlarge");
  const uint64_t chips = 100000, ranks = chips * s.accel.ranksPerChip;
  for (auto _ : state) {
    auto model = fabric::CollectiveModel::create(s, chips);
    if (!model) {
      state.SkipWithError(model.status().toString().c_str());
      return;
    }
    double total = 0;
    auto add = [&](fabric::CollectiveOp op, uint64_t bytes, uint64_t size, uint64_t stride) {
      fabric::CollectiveRequest r;
      r.op = op;
      r.bytes = bytes;
      r.group = {size, stride, true};
      auto c = model->estimate(r);
      if (!c) {
        std::fprintf(stderr, "bench_fabric: %s\n", c.status().toString().c_str());
        std::abort();
      }
      total += c->timeS;
    };
    add(fabric::CollectiveOp::kAllReduce, 64 << 20, 16, 1);      // TP
    add(fabric::CollectiveOp::kReduceScatter, 64 << 20, 16, 1);  // SP
    add(fabric::CollectiveOp::kAllGather, 64 << 20, 16, 1);
    add(fabric::CollectiveOp::kSendRecv, 16 << 20, 4, ranks / 4);                  // PP
    add(fabric::CollectiveOp::kAllToAll, 32 << 20, 8, 16);                         // EP
    add(fabric::CollectiveOp::kReduceScatter, uint64_t(1) << 30, ranks / 64, 16);  // DP
    add(fabric::CollectiveOp::kAllGather, uint64_t(1) << 30, ranks / 64, 16);
    sink = total;
  }
  state.counters["step_comm_ms"] = sink * 1e3;
}

}  // namespace

BENCHMARK_CAPTURE(coldAllReduce, trn2_48xlarge_100k, "trn2.48xlarge", 100000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(coldAllReduce, trn2_ultraserver_100k, "trn2-ultraserver", 100000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(coldAllReduce, dgx_h100_100k, "dgx-h100", 100000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(coldAllReduce, trn2_ultraserver_64, "trn2-ultraserver", 64)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(warmAllReduce, trn2_48xlarge_100k, "trn2.48xlarge", 100000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(coldTrainingStep)->Unit(benchmark::kMillisecond);
