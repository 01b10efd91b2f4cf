// Functional multi-chip speed: a 16-chip all-reduce of 256 MiB (fp32) per chip with real data
// (fabric::Cluster, one process). Reports host GB/s = bytes reduced (256 MiB x 16 chips) per
// host second, beside the simulated time and bus bandwidth of the collective on
// trn2.48xlarge. TRNSIM_BENCH_CLUSTER_MIB overrides the size per chip (host memory: about
// 2 x size per chip for the simulated HBM and its written-shadow, plus 3 x size).
// Also the per-call overhead of a small run (BM_SmallAllReduceCall/2 and /8): a whole call of
// a 1 KiB fp32 all-reduce (create the cluster, load, write the inputs, run, read rank 0's
// result) on 2 and 8 ranks, threads backend, with the phases as counters (ms).

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/fabric/cluster.h"
#include "trnsim/isa/builder.h"

namespace {

using namespace trnsim;

void BM_FunctionalAllReduce16Chips(benchmark::State& state) {
  const uint32_t chips = 16;
  const char* env = std::getenv("TRNSIM_BENCH_CLUSTER_MIB");
  const int64_t mib = env != nullptr ? std::atoll(env) : 256;
  const int64_t elems = mib * (int64_t(1) << 20) / 4;
  auto chip = arch::loadChip("trn2");
  if (!chip) return state.SkipWithError(chip.status().toString().c_str());
  isa::KernelBuilder kb(*chip, "all_reduce_16");
  auto x = kb.hbm("x", numerics::DType::kFP32, {elems}, isa::TensorKind::kInOut);
  // In place, as one row (x.ap() of a 1-D HBM tensor makes every element a row: slow on
  // the host, the same bytes on the chip).
  const isa::AccessPattern row = x.pattern({{elems, 1}, {1, elems}});
  (void)kb.allReduce(row, row, isa::AluOp::kAdd, kb.replicaGroup({}));
  auto program = kb.finish();
  if (!program) return state.SkipWithError(program.status().toString().c_str());
  auto cluster = fabric::Cluster::create(*chip, nullptr, chips);
  if (!cluster) return state.SkipWithError(cluster.status().toString().c_str());
  if (Status s = cluster->loadAll(*program); !s) return state.SkipWithError(s.toString().c_str());
  std::vector<float> values(static_cast<size_t>(elems));
  for (uint32_t r = 0; r < chips; ++r) {
    for (size_t i = 0; i < values.size(); ++i) values[i] = float(i % 1021) * 0.25f + float(r);
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(values.data()),
                                     values.size() * 4);
    if (Status s = cluster->write(r, "x", bytes); !s)
      return state.SkipWithError(s.toString().c_str());
  }
  fabric::ClusterResult result;
  for (auto _ : state) {
    auto r = cluster->run();
    if (!r) return state.SkipWithError(r.status().toString().c_str());
    result = std::move(*r);
  }
  state.counters["host_GBps"] = double(result.bytesReduced) * 1e-9 / result.hostSeconds;
  state.counters["bytes_reduced"] = double(result.bytesReduced);
  state.counters["simulated_us"] = result.simulatedNs * 1e-3;
  if (!result.collectives.empty()) {
    state.counters["busbw_GBps"] = result.collectives[0].busbwGbps;
    state.SetLabel(std::string(fabric::algorithmName(result.collectives[0].algorithm)));
  }
}
BENCHMARK(BM_FunctionalAllReduce16Chips)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

/// Milliseconds since `t` (and moves `t` to now).
double lapMs(std::chrono::steady_clock::time_point& t) {
  const auto now = std::chrono::steady_clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - t).count();
  t = now;
  return ms;
}

void BM_SmallAllReduceCall(benchmark::State& state) {
  const uint32_t chips = uint32_t(state.range(0));
  const int64_t elems = 256;  // 1 KiB of fp32 per rank
  auto chip = arch::loadChip("trn2");
  if (!chip) return state.SkipWithError(chip.status().toString().c_str());
  isa::KernelBuilder kb(*chip, "small_all_reduce");
  auto x = kb.hbm("x", numerics::DType::kFP32, {elems}, isa::TensorKind::kInput);
  auto y = kb.hbm("y", numerics::DType::kFP32, {elems}, isa::TensorKind::kOutput);
  const isa::AccessPattern xr = x.pattern({{elems, 1}, {1, elems}});
  const isa::AccessPattern yr = y.pattern({{elems, 1}, {1, elems}});
  (void)kb.allReduce(yr, xr, isa::AluOp::kAdd, kb.replicaGroup({}));
  auto program = kb.finish();
  if (!program) return state.SkipWithError(program.status().toString().c_str());
  std::vector<float> values(static_cast<size_t>(elems), 1.0f);
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(values.data()),
                                         values.size() * 4);
  fabric::ClusterOptions options;
  options.transport = fabric::TransportKind::kLocal;  // threads, one process
  double createMs = 0, loadMs = 0, writeMs = 0, runMs = 0, readMs = 0;
  for (auto _ : state) {
    auto t = std::chrono::steady_clock::now();
    auto cluster = fabric::Cluster::create(*chip, nullptr, chips, options);
    if (!cluster) return state.SkipWithError(cluster.status().toString().c_str());
    createMs += lapMs(t);
    if (Status s = cluster->loadAll(*program); !s) return state.SkipWithError(s.toString().c_str());
    loadMs += lapMs(t);
    for (uint32_t r = 0; r < chips; ++r)
      if (Status s = cluster->write(r, "x", bytes); !s)
        return state.SkipWithError(s.toString().c_str());
    writeMs += lapMs(t);
    auto result = cluster->run();
    if (!result) return state.SkipWithError(result.status().toString().c_str());
    runMs += lapMs(t);
    auto out = cluster->read(0, "y");
    if (!out) return state.SkipWithError(out.status().toString().c_str());
    readMs += lapMs(t);
    float first = 0;
    std::memcpy(&first, out->data(), 4);
    if (first != float(chips)) return state.SkipWithError("wrong all-reduce result");
  }
  const double n = double(state.iterations());
  state.counters["create_ms"] = createMs / n;
  state.counters["load_ms"] = loadMs / n;
  state.counters["write_ms"] = writeMs / n;
  state.counters["run_ms"] = runMs / n;
  state.counters["read_ms"] = readMs / n;
  state.counters["ms_per_rank"] = (createMs + loadMs + writeMs + runMs + readMs) / n / chips;
}
BENCHMARK(BM_SmallAllReduceCall)->Arg(2)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
