#include "trnsim/arch/chip_schema.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <string>
#include <string_view>

namespace trnsim::arch::detail {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

FieldSpec positive(std::string_view path, std::string_view unit, double hi = kInf) {
  return {path, FieldKind::kReal, 0, hi, true, false, unit};
}
FieldSpec nonNegative(std::string_view path, std::string_view unit, double hi = kInf) {
  return {path, FieldKind::kReal, 0, hi, false, false, unit};
}
FieldSpec fraction(std::string_view path, bool zeroAllowed) {
  return {path, FieldKind::kReal, 0, 1, !zeroAllowed, false, {}};
}
FieldSpec count(std::string_view path, double lo, double hi, std::string_view unit = {}) {
  return {path, FieldKind::kCount, lo, hi, false, false, unit};
}
FieldSpec flag(std::string_view path) { return {path, FieldKind::kFlag, 0, 1, false, false, {}}; }

std::string formatBound(double v) {
  if (std::isinf(v)) return "inf";
  return fmt::format("{}", v);
}

// The keys of one streaming-engine section, spelled out so the table holds only literals.
struct StreamKeys {
  std::string_view clock, lanes, e32, e16, e8, minCycles, fixed;
};
#define TRNSIM_STREAM_KEYS(sec)                                                           \
  StreamKeys {                                                                            \
    sec ".clock_ghz", sec ".lanes", sec ".elems_per_cycle_32", sec ".elems_per_cycle_16", \
        sec ".elems_per_cycle_8", sec ".min_cycles", sec ".fixed_overhead_cycles"         \
  }

void addStreamEngine(std::vector<Field>& out, const StreamKeys& k, StreamEngineConfig& e) {
  out.push_back({positive(k.clock, "GHz", 10), &e.clockGhz});
  out.push_back({count(k.lanes, 1, 128, "lanes"), &e.lanes});
  out.push_back({positive(k.e32, "elements/lane/cycle", 64), &e.elemsPerCycle32});
  out.push_back({positive(k.e16, "elements/lane/cycle", 64), &e.elemsPerCycle16});
  out.push_back({positive(k.e8, "elements/lane/cycle", 64), &e.elemsPerCycle8});
  out.push_back({count(k.minCycles, 1, 1e6, "cycles"), &e.minCycles});
  out.push_back({count(k.fixed, 0, 1e6, "cycles"), &e.fixedOverheadCycles});
}

}  // namespace

std::string FieldSpec::expected() const {
  std::string unitSuffix = unit.empty() ? std::string() : " " + std::string(unit);
  switch (kind) {
    case FieldKind::kFlag:
      return "true or false";
    case FieldKind::kCount:
      return fmt::format("a whole number in {}..{}{}", formatBound(lo), formatBound(hi),
                         unitSuffix);
    case FieldKind::kReal:
      break;
  }
  if (lo == 0 && std::isinf(hi)) {
    return (loOpen ? "a positive number" : "a non-negative number") + unitSuffix;
  }
  return fmt::format("a number in {}{}, {}{}{}", loOpen ? "(" : "[", formatBound(lo),
                     formatBound(hi), hiOpen ? ")" : "]", unitSuffix);
}

bool FieldSpec::inRange(double v) const {
  if (!std::isfinite(v)) return false;
  if (loOpen ? !(v > lo) : !(v >= lo)) return false;
  if (hiOpen ? !(v < hi) : !(v <= hi)) return false;
  return true;
}

std::vector<Field> chipFields(ChipConfig& c) {
  std::vector<Field> f;
  f.reserve(64);
  f.push_back({count("cores_per_chip", 1, 1024, "NeuronCores"), &c.coresPerChip});
  f.push_back({count("semaphore_wait_cycles", 0, 1e6, "cycles"), &c.semaphoreWaitCycles});

  TensorEngineConfig& pe = c.pe;
  f.push_back({positive("pe.clock_ghz", "GHz", 10), &pe.clockGhz});
  f.push_back({count("pe.rows", 1, 128, "PE rows"), &pe.rows});
  f.push_back({count("pe.cols", 1, 128, "PE columns"), &pe.cols});
  f.push_back({count("pe.max_moving_free", 1, 65536, "elements"), &pe.maxMovingFree});
  f.push_back({count("pe.mm_min_cycles", 1, 1e6, "cycles"), &pe.mmMinCycles});
  f.push_back({count("pe.load_stationary_speedup", 1, 64), &pe.loadStationarySpeedup});
  f.push_back({count("pe.fp32_slowdown", 1, 64), &pe.fp32Slowdown});
  f.push_back({count("pe.fp8_speedup", 1, 64), &pe.fp8Speedup});
  f.push_back({count("pe.fixed_overhead_cycles", 0, 1e6, "cycles"), &pe.fixedOverheadCycles});
  f.push_back({flag("pe.throttle.enabled"), &pe.throttle.enabled});
  f.push_back({fraction("pe.throttle.start_fraction", false), &pe.throttle.startFraction});
  f.push_back({nonNegative("pe.throttle.ramp_ns", "ns", 1e9), &pe.throttle.rampNs});
  f.push_back({nonNegative("pe.throttle.rearm_idle_ns", "ns", 1e9), &pe.throttle.rearmIdleNs});
  f.push_back({fraction("pe.throttle.rearm_threshold", false), &pe.throttle.rearmThreshold});

  addStreamEngine(f, TRNSIM_STREAM_KEYS("vector"), c.vector);
  addStreamEngine(f, TRNSIM_STREAM_KEYS("scalar"), c.scalar);
  addStreamEngine(f, TRNSIM_STREAM_KEYS("gpsimd"), c.gpsimd);
  addStreamEngine(f, TRNSIM_STREAM_KEYS("sync"), c.sync);
#undef TRNSIM_STREAM_KEYS

  DmaConfig& d = c.dma;
  f.push_back({count("dma.engines_per_core", 1, 1024, "engines"), &d.enginesPerCore});
  f.push_back({count("dma.queues_per_engine", 1, 1024, "queues"), &d.queuesPerEngine});
  f.push_back({positive("dma.engine_gbps", "GB/s", 1e5), &d.engineGbps});
  f.push_back({positive("dma.sustained_gbps_per_core", "GB/s", 1e6), &d.sustainedGbpsPerCore});
  f.push_back({nonNegative("dma.fixed_latency_ns", "ns", 1e7), &d.fixedLatencyNs});
  f.push_back({count("dma.min_efficient_bytes", 1, 1 << 24, "bytes"), &d.minEfficientBytes});
  f.push_back({fraction("dma.transpose_efficiency", true), &d.transposeEfficiency});
  f.push_back({fraction("dma.sbuf_transpose_efficiency", true), &d.sbufTransposeEfficiency});

  MemoryConfig& m = c.mem;
  f.push_back({count("memory.sbuf_partitions", 1, 128, "partitions"), &m.sbufPartitions});
  f.push_back(
      {count("memory.sbuf_bytes_per_partition", 1, 1 << 26, "bytes"), &m.sbufBytesPerPartition});
  f.push_back({count("memory.psum_banks", 1, 64, "banks"), &m.psumBanks});
  f.push_back({count("memory.psum_bank_bytes_per_partition", 4, 1 << 20, "bytes"),
               &m.psumBankBytesPerPartition});
  f.push_back({count("memory.hbm_bytes", 1, 1ull << 50, "bytes"), &m.hbmBytes});
  f.push_back({positive("memory.hbm_gbps", "GB/s", 1e7), &m.hbmGbps});
  f.push_back({count("memory.hbm_stacks", 1, 64, "stacks"), &m.hbmStacks});
  return f;
}

}  // namespace trnsim::arch::detail
