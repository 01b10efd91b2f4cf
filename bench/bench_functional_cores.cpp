// Functional execution of the cores of one chip on host threads (FunctionalChip::run): four
// trn2 cores, each a bf16 512x1024x1024 matmul program on its own HBM tensors, values only,
// with RunOptions::threads = 1 (the cores one after another; inside each, nc_matmul may not
// split either) and = 2 and 0 (all host cores). The output bytes are the same for every count
// (tests/sim/functional_cores_test.cpp); the wall time is what changes.
//
// Run: build/release/bench/bench_functional_cores (bench/RESULTS.md has the figures).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/sim/chip.h"

namespace {

using namespace trnsim;

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
  if (Status s = c.load(programs); !s.isOk()) {
    state.SkipWithError(s.toString().c_str());
    return;
  }
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  for (uint32_t core = 0; core < kCores; ++core) {
    // lhsT [K, M] = [1024, 512], rhs [K, N] = [1024, 1024].
    const std::pair<const char*, size_t> inputs[] = {{"lhsT", 1024 * 512}, {"rhs", 1024 * 1024}};
    for (const auto& [name, elements] : inputs) {
      std::vector<float> v(elements);
      for (float& x : v) x = normal(gen);
      if (Status s = c.writeFloats(name, v, core); !s.isOk()) {
        state.SkipWithError(s.toString().c_str());
        return;
      }
    }
  }
  sim::RunOptions o;
  o.computeTiming = false;
  o.threads = uint32_t(state.range(0));
  for (auto _ : state) {
    auto r = c.run(o);
    if (!r.hasValue()) {
      state.SkipWithError(r.status().toString().c_str());
      return;
    }
  }
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

}  // namespace
