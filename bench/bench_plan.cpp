// The planner's own speed (issue 5, "Done when"): one step estimate of a 100,000-chip
// configuration (target <= 10 ms) and a full parallelism search for Llama-3-405B on 16,384
// chips on one core (target <= 10 s). Planner::create (compute and collective models) is timed
// apart: a user pays it once per system and chip count.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>

#include "trnsim/arch/system_config.h"
#include "trnsim/plan/estimate.h"
#include "trnsim/plan/model_config.h"
#include "trnsim/plan/run.h"

namespace {

using namespace trnsim;

template <typename T>
T orDie(Expected<T> e, const char* what) {
  if (!e) {
    std::fprintf(stderr, "bench_plan: %s: %s\n", what, e.status().toString().c_str());
    std::exit(1);
  }
  return std::move(e).value();
}

plan::Workload workload(const char* model, uint64_t globalBatch, uint32_t seq) {
  plan::Workload w;
  w.model = orDie(plan::loadModel(model), model);
  w.globalBatch = globalBatch;
  w.seq = seq;
  return w;
}

// 100,000 Trainium2 chips (6,250 trn2u.48xlarge nodes, the catalog's scale-out limit), 4 ranks
// per chip: Llama-3-405B with tp 8, pp 2 (126 layers), dp the rest (25,000).
constexpr uint64_t kBigChips = 100000;

/// The kernel composition: the rows of bench/RESULTS.md measure the step model and the search,
/// not the compiled layers' one-time simulations (docs/plan_compute.md, "Speed").
plan::PlannerOptions kernelsOnly() {
  plan::PlannerOptions o;
  o.computeModel = plan::ComputeModelKind::kKernels;
  return o;
}

void BM_PlannerCreate100kChips(benchmark::State& state) {
  arch::SystemConfig system = orDie(arch::loadSystem("trn2-ultraserver"), "system");
  for (auto _ : state) {
    auto planner = orDie(plan::Planner::create(system, kBigChips, kernelsOnly()), "planner");
    benchmark::DoNotOptimize(planner);
  }
}
BENCHMARK(BM_PlannerCreate100kChips)->Unit(benchmark::kMillisecond);

void BM_Estimate100kChips(benchmark::State& state) {
  arch::SystemConfig system = orDie(arch::loadSystem("trn2-ultraserver"), "system");
  plan::Planner planner = orDie(plan::Planner::create(system, kBigChips, kernelsOnly()), "planner");
  plan::Workload w = workload("llama3-405b", 25000, 8192);
  plan::Parallelism p;
  p.tp = 8;
  p.pp = 2;
  p.cp = 1;
  p.dp = static_cast<uint32_t>(kBigChips * system.accel.ranksPerChip / (p.tp * p.pp));
  p.microbatch = 1;
  p.zero = 1;
  double stepS = 0;
  for (auto _ : state) {
    auto e = orDie(planner.estimate(w, p), "estimate");
    stepS = e.stepTimeS;
    benchmark::DoNotOptimize(e);
  }
  state.counters["step_s"] = stepS;
  state.counters["ranks"] = double(kBigChips * system.accel.ranksPerChip);
}
BENCHMARK(BM_Estimate100kChips)->Unit(benchmark::kMillisecond);

/// Full search, one thread: Llama-3-405B, 16,384 chips, 2,048 sequences of 8,192 tokens
/// (16M tokens per step, as in the Llama 3 report's main pre-training stage).
void searchBench(benchmark::State& state, const char* systemName) {
  arch::SystemConfig system = orDie(arch::loadSystem(systemName), "system");
  plan::Planner planner = orDie(plan::Planner::create(system, 16384, kernelsOnly()), "planner");
  plan::Workload w = workload("llama3-405b", 2048, 8192);
  plan::SearchOptions o;
  o.threads = static_cast<uint32_t>(state.range(0));
  plan::SearchResult r;
  for (auto _ : state) {
    r = orDie(plan::search(planner, w, o), "search");
    benchmark::DoNotOptimize(r);
  }
  state.counters["evaluated"] = double(r.evaluated);
  state.counters["fitting"] = double(r.fitting);
  state.counters["best_step_s"] = r.best.stepTimeS;
  state.counters["s_per_estimate"] =
      benchmark::Counter(double(r.evaluated) * double(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
void BM_Search405B_16kChips_DgxH100(benchmark::State& state) { searchBench(state, "dgx-h100"); }
void BM_Search405B_16kChips_Trn2Ultra(benchmark::State& state) {
  searchBench(state, "trn2-ultraserver");
}
BENCHMARK(BM_Search405B_16kChips_DgxH100)
    ->Arg(1)
    ->Unit(benchmark::kSecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK(BM_Search405B_16kChips_Trn2Ultra)
    ->Arg(1)
    ->Unit(benchmark::kSecond)
    ->Iterations(3)
    ->UseRealTime();

}  // namespace
