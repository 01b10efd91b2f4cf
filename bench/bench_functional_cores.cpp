// Functional execution on host threads, values only, with RunOptions::threads = 1, 2 and 0 (all
// host cores); the output bytes are the same for every count, the wall time is what changes.
// - BM_FunctionalFourCores: the cores of one chip at once (FunctionalChip::run): four trn2
//   cores, each a bf16 512x1024x1024 matmul program on its own HBM tensors
//   (tests/sim/functional_cores_test.cpp).
// - BM_FunctionalElementwise: one core, elementwise instructions split by partition
//   (Exec::runByPartition): the kernel library's bf16 softmax and rmsnorm of [4096, 4096]
//   (tests/sim/functional_partitions_test.cpp).
//
// Run: build/release/bench/bench_functional_cores (bench/RESULTS.md has the figures).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/norm.h"
#include "trnsim/kernels/softmax.h"
#include "trnsim/sim/chip.h"

namespace {

using namespace trnsim;

/// Loads `programs` (one per core) on `c`, fills every input tensor of each with seeded
/// normals, and times values-only runs with `threads`. False (the state says why) on failure.
bool fillAndRun(benchmark::State& state, sim::Chip& c, const std::vector<isa::Program>& programs,
                uint32_t threads) {
  if (Status s = c.load(programs); !s.isOk()) {
    state.SkipWithError(s.toString().c_str());
    return false;
  }
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  for (uint32_t core = 0; core < programs.size(); ++core) {
    for (const isa::TensorDecl& t : programs[core].tensors) {
      if (t.kind != isa::TensorKind::kInput) continue;
      std::vector<float> v(size_t(t.numElements()));
      for (float& x : v) x = normal(gen);
      if (Status s = c.writeFloats(t.name, v, core); !s.isOk()) {
        state.SkipWithError(s.toString().c_str());
        return false;
      }
    }
  }
  sim::RunOptions o;
  o.computeTiming = false;
  o.threads = threads;
  for (auto _ : state) {
    auto r = c.run(o);
    if (!r.hasValue()) {
      state.SkipWithError(r.status().toString().c_str());
      return false;
    }
  }
  return true;
}

void BM_FunctionalFourCores(benchmark::State& state) {
  auto chip = arch::loadChip("trn2");
  if (!chip.hasValue()) {
    state.SkipWithError(chip.status().toString().c_str());
    return;
  }
  constexpr uint32_t kCores = 4;
  std::vector<isa::Program> programs;
  for (uint32_t core = 0; core < kCores; ++core) {
    auto p = kernels::matmulProgram(*chip, 512, 1024, 1024);
    if (!p.hasValue()) {
      state.SkipWithError(p.status().toString().c_str());
      return;
    }
    for (isa::TensorDecl& t : p->tensors) {
      if (t.space == isa::MemSpace::kHbm) t.byteOffset += uint64_t(core) * (16u << 20);
    }
    programs.push_back(std::move(*p));
  }
  sim::Chip c(*chip);
  if (!fillAndRun(state, c, programs, uint32_t(state.range(0)))) return;
  const double flops = 2.0 * 512 * 1024 * 1024 * kCores;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FunctionalFourCores)
    ->Arg(1)
    ->Arg(2)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

/// state.range(0): 0 = softmax, 1 = rmsnorm; state.range(1): threads.
void BM_FunctionalElementwise(benchmark::State& state) {
  auto chip = arch::loadChip("trn2");
  if (!chip.hasValue()) {
    state.SkipWithError(chip.status().toString().c_str());
    return;
  }
  constexpr int64_t kRows = 4096, kCols = 4096;
  auto p = state.range(0) == 0 ? kernels::softmaxProgram(*chip, kRows, kCols)
                               : kernels::rmsNormProgram(*chip, kRows, kCols);
  if (!p.hasValue()) {
    state.SkipWithError(p.status().toString().c_str());
    return;
  }
  state.SetLabel(state.range(0) == 0 ? "softmax" : "rmsnorm");
  sim::Chip c(*chip);
  if (!fillAndRun(state, c, {*p}, uint32_t(state.range(1)))) return;
  state.counters["elements/s"] = benchmark::Counter(
      double(kRows * kCols) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FunctionalElementwise)
    ->ArgsProduct({{0, 1}, {1, 2, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

}  // namespace
