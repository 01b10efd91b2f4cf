// Speed of the timing model alone (timing-only, no values): how many simulated instructions
// per host second one host core gets through, on long, well-pipelined bf16 matmul and
// flash-attention programs from the kernel library. Target (issue 13): >= 10 million/s with
// per-instruction events off, >= 5 million/s with them (the *Events variants record one
// TimelineEvent per instruction). bench/RESULTS.md has the measured numbers.
//
// Counters: inst_per_s = simulated instructions per host second (also items_per_second);
// instructions, simulated_us and pe_utilization describe what was simulated (they do not
// change between iterations).
//
// Run: build/perf/bench/bench_timing (a Release build with -DTRNSIM_BUILD_BENCH=ON).

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/kernels/attention.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/sim/timing.h"

namespace {

using namespace trnsim;

/// Times `cores` copies of `prog` (built for `chip`) on that chip, one per core.
void timeProgram(benchmark::State& state, const arch::ChipConfig& chip,
                 const Expected<isa::Program>& prog, uint32_t cores, bool events) {
  if (!prog.hasValue()) {
    state.SkipWithError(prog.status().toString().c_str());
    return;
  }
  std::vector<const isa::Program*> perCore(cores, &*prog);
  sim::TimingOptions opts;
  opts.recordEvents = events;
  double simulatedNs = 0, util = 0;
  for (auto _ : state) {
    auto t = sim::simulateTiming(chip, perCore, opts);
    if (!t.hasValue()) {
      state.SkipWithError(t.status().toString().c_str());
      return;
    }
    simulatedNs = t->endNs;
    util = t->cores[0].tensorFlopsAtPeakNs / t->endNs;
    benchmark::DoNotOptimize(t->endNs);
  }
  const auto instructions = int64_t(prog->instructions.size()) * cores;
  state.SetItemsProcessed(state.iterations() * instructions);
  state.counters["inst_per_s"] =
      benchmark::Counter(double(state.iterations() * instructions), benchmark::Counter::kIsRate);
  state.counters["instructions"] = double(instructions);
  state.counters["simulated_us"] = simulatedNs * 1e-3;
  state.counters["pe_utilization"] = util;
}

/// Times `cores` copies of an m x k x n bf16 matmul program on `chipName`, one per core.
void timeMatmul(benchmark::State& state, const std::string& chipName, int64_t m, int64_t k,
                int64_t n, uint32_t cores, bool events = false) {
  auto chip = arch::loadChip(chipName);
  if (!chip.hasValue()) {
    state.SkipWithError(chip.status().toString().c_str());
    return;
  }
  timeProgram(state, *chip, kernels::matmulProgram(*chip, m, k, n), cores, events);
}

/// Times a causal bf16 flash-attention forward program (heads x seq x headDim, one KV head per
/// query head) on one NeuronCore of `chipName`.
void timeAttention(benchmark::State& state, const std::string& chipName, int64_t heads, int64_t seq,
                   int64_t headDim, bool events = false) {
  auto chip = arch::loadChip(chipName);
  if (!chip.hasValue()) {
    state.SkipWithError(chip.status().toString().c_str());
    return;
  }
  timeProgram(state, *chip, kernels::attentionProgram(*chip, heads, heads, seq, headDim), 1,
              events);
}

/// The anchor shape on one trn1 NeuronCore (the vendor tutorial: 6.97 ms, 85 %).
void BM_TimingMatmulTrn1OneCore(benchmark::State& state) {
  timeMatmul(state, "trn1", 4096, 8192, 8192, 1);
}
BENCHMARK(BM_TimingMatmulTrn1OneCore)->Unit(benchmark::kMillisecond);

/// The same with one TimelineEvent per instruction recorded.
void BM_TimingMatmulTrn1OneCoreEvents(benchmark::State& state) {
  timeMatmul(state, "trn1", 4096, 8192, 8192, 1, true);
}
BENCHMARK(BM_TimingMatmulTrn1OneCoreEvents)->Unit(benchmark::kMillisecond);

/// Both trn1 cores run it at once, sharing HBM.
void BM_TimingMatmulTrn1TwoCores(benchmark::State& state) {
  timeMatmul(state, "trn1", 4096, 8192, 8192, 2);
}
BENCHMARK(BM_TimingMatmulTrn1TwoCores)->Unit(benchmark::kMillisecond);

/// The larger program: the anchor shape on all 8 trn2 cores at once, with the TensorE
/// throttle and the cores sharing HBM.
void BM_TimingMatmulTrn2EightCores(benchmark::State& state) {
  timeMatmul(state, "trn2", 4096, 8192, 8192, 8);
}
BENCHMARK(BM_TimingMatmulTrn2EightCores)->Unit(benchmark::kMillisecond);

/// The same with events recorded.
void BM_TimingMatmulTrn2EightCoresEvents(benchmark::State& state) {
  timeMatmul(state, "trn2", 4096, 8192, 8192, 8, true);
}
BENCHMARK(BM_TimingMatmulTrn2EightCoresEvents)->Unit(benchmark::kMillisecond);

/// Flash attention (causal, bf16) on one trn2 core: 4 heads, seq 4096, head dim 128.
void BM_TimingAttentionTrn2OneCore(benchmark::State& state) {
  timeAttention(state, "trn2", 4, 4096, 128);
}
BENCHMARK(BM_TimingAttentionTrn2OneCore)->Unit(benchmark::kMillisecond);

/// The same with events recorded.
void BM_TimingAttentionTrn2OneCoreEvents(benchmark::State& state) {
  timeAttention(state, "trn2", 4, 4096, 128, true);
}
BENCHMARK(BM_TimingAttentionTrn2OneCoreEvents)->Unit(benchmark::kMillisecond);

}  // namespace
