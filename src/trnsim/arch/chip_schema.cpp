#include "trnsim/arch/chip_schema.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <string>
#include <string_view>

namespace trnsim::arch::detail {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// What to do about an out-of-range value, one line per kind of quantity. Each range of the
// table below is a physical sanity bound, far outside any real chip but well inside what the
// timing model resolves: a value outside it is a unit slip or a typo, and a clock of 1e-20 GHz
// used to make the timing model spin for ever.
constexpr std::string_view kClockHint =
    "clocks are in GHz: 2.4 means 2.4 GHz, and real engines run at 0.5-3 GHz";
constexpr std::string_view kRateHint =
    "elements per lane per cycle: 1 for a 128-element/cycle data path on 128 lanes";
constexpr std::string_view kCyclesHint =
    "cycles of the engine's clock; real per-instruction costs are tens to hundreds";
constexpr std::string_view kBandwidthHint =
    "bandwidths are in GB/s, 1e9 bytes/s: 27.2 for a 27.2 GB/s DMA engine, 2900 for 2.9 TB/s of "
    "HBM";
constexpr std::string_view kNsHint = "times are in ns: 3000 for 3 us";
constexpr std::string_view kBytesHint = "sizes are in bytes: 229376 for 224 KiB";
constexpr std::string_view kFractionHint = "a fraction: 0.9 for 90%";

FieldSpec real(std::string_view path, double lo, double hi, std::string_view unit,
               std::string_view hint) {
  return {path, FieldKind::kReal, lo, hi, false, false, unit, false, hint};
}
FieldSpec count(std::string_view path, double lo, double hi, std::string_view unit = {},
                std::string_view hint = {}) {
  return {path, FieldKind::kCount, lo, hi, false, false, unit, false, hint};
}
FieldSpec clockGhz(std::string_view path) { return real(path, 0.1, 10, "GHz", kClockHint); }
FieldSpec cycles(std::string_view path, double lo) {
  return count(path, lo, 1e5, "cycles", kCyclesHint);
}
/// A fraction in [lo, 1], or exactly 0 when `zeroMeansNone`.
FieldSpec fraction(std::string_view path, double lo, bool zeroMeansNone = false) {
  FieldSpec f = real(path, lo, 1, {}, kFractionHint);
  f.orZero = zeroMeansNone;
  return f;
}
FieldSpec flag(std::string_view path) {
  return {path, FieldKind::kFlag, 0, 1, false, false, {}, false, {}};
}

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
  out.push_back({clockGhz(k.clock), &e.clockGhz});
  out.push_back({count(k.lanes, 1, 128, "lanes"), &e.lanes});
  out.push_back({real(k.e32, 0.01, 64, "elements/lane/cycle", kRateHint), &e.elemsPerCycle32});
  out.push_back({real(k.e16, 0.01, 64, "elements/lane/cycle", kRateHint), &e.elemsPerCycle16});
  out.push_back({real(k.e8, 0.01, 64, "elements/lane/cycle", kRateHint), &e.elemsPerCycle8});
  out.push_back({cycles(k.minCycles, 1), &e.minCycles});
  out.push_back({cycles(k.fixed, 0), &e.fixedOverheadCycles});
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
  std::string zero = orZero ? "0 or " : "";
  if (lo == 0 && std::isinf(hi)) {
    return zero + (loOpen ? "a positive number" : "a non-negative number") + unitSuffix;
  }
  return fmt::format("{}a number in {}{}, {}{}{}", zero, loOpen ? "(" : "[", formatBound(lo),
                     formatBound(hi), hiOpen ? ")" : "]", unitSuffix);
}

std::string FieldSpec::docRange() const {
  switch (kind) {
    case FieldKind::kFlag:
      return "true / false";
    case FieldKind::kCount:
      return fmt::format("{}..{}", formatBound(lo), formatBound(hi));
    case FieldKind::kReal:
      break;
  }
  return fmt::format("{}{}{}, {}{}", orZero ? "0 or " : "", loOpen ? "(" : "[", formatBound(lo),
                     formatBound(hi), hiOpen ? ")" : "]");
}

bool FieldSpec::inRange(double v) const {
  if (!std::isfinite(v)) return false;
  if (orZero && v == 0) return true;
  if (loOpen ? !(v > lo) : !(v >= lo)) return false;
  if (hiOpen ? !(v < hi) : !(v <= hi)) return false;
  return true;
}

std::vector<Field> chipFields(ChipConfig& c) {
  // The one table of chip keys and their ranges; docs/configs.md writes the same ranges (a
  // test compares them). Bounds, where not obvious: counts stop where a simulated structure
  // would stop fitting (DMA queue numbers are 16-bit: 256 x 256); per-instruction cycle costs
  // stop at 1e5 (real ones are tens to hundreds); bandwidths span 0.1 GB/s (slower than any
  // DMA engine ever shipped) to 1e4 GB/s per engine and 1e6 GB/s (1 PB/s) per chip.
  std::vector<Field> f;
  f.reserve(64);
  f.push_back({count("cores_per_chip", 1, 1024, "NeuronCores"), &c.coresPerChip});
  f.push_back({cycles("semaphore_wait_cycles", 0), &c.semaphoreWaitCycles});

  TensorEngineConfig& pe = c.pe;
  f.push_back({clockGhz("pe.clock_ghz"), &pe.clockGhz});
  f.push_back({count("pe.rows", 1, 128, "PE rows"), &pe.rows});
  f.push_back({count("pe.cols", 1, 128, "PE columns"), &pe.cols});
  f.push_back({count("pe.max_moving_free", 1, 65536, "elements"), &pe.maxMovingFree});
  f.push_back({cycles("pe.mm_min_cycles", 1), &pe.mmMinCycles});
  f.push_back({count("pe.load_stationary_speedup", 1, 64), &pe.loadStationarySpeedup});
  f.push_back({count("pe.fp32_slowdown", 1, 64), &pe.fp32Slowdown});
  f.push_back({count("pe.fp8_speedup", 1, 64), &pe.fp8Speedup});
  f.push_back({cycles("pe.fixed_overhead_cycles", 0), &pe.fixedOverheadCycles});
  f.push_back({flag("pe.throttle.enabled"), &pe.throttle.enabled});
  f.push_back({fraction("pe.throttle.start_fraction", 0.01), &pe.throttle.startFraction});
  f.push_back({real("pe.throttle.ramp_ns", 0, 1e7, "ns", kNsHint), &pe.throttle.rampNs});
  f.push_back({real("pe.throttle.rearm_idle_ns", 0, 1e7, "ns", kNsHint), &pe.throttle.rearmIdleNs});
  f.push_back({fraction("pe.throttle.rearm_threshold", 0.01), &pe.throttle.rearmThreshold});

  addStreamEngine(f, TRNSIM_STREAM_KEYS("vector"), c.vector);
  addStreamEngine(f, TRNSIM_STREAM_KEYS("scalar"), c.scalar);
  addStreamEngine(f, TRNSIM_STREAM_KEYS("gpsimd"), c.gpsimd);
  addStreamEngine(f, TRNSIM_STREAM_KEYS("sync"), c.sync);
#undef TRNSIM_STREAM_KEYS

  DmaConfig& d = c.dma;
  f.push_back({count("dma.engines_per_core", 1, 256, "engines"), &d.enginesPerCore});
  f.push_back({count("dma.queues_per_engine", 1, 256, "queues"), &d.queuesPerEngine});
  f.push_back({real("dma.engine_gbps", 0.1, 1e4, "GB/s", kBandwidthHint), &d.engineGbps});
  f.push_back({real("dma.sustained_gbps_per_core", 0.1, 1e6, "GB/s", kBandwidthHint),
               &d.sustainedGbpsPerCore});
  f.push_back({real("dma.fixed_latency_ns", 0, 1e6, "ns", kNsHint), &d.fixedLatencyNs});
  f.push_back(
      {count("dma.min_efficient_bytes", 1, 1 << 24, "bytes", kBytesHint), &d.minEfficientBytes});
  f.push_back({fraction("dma.transpose_efficiency", 0.01, true), &d.transposeEfficiency});
  f.push_back({fraction("dma.sbuf_transpose_efficiency", 0.01, true), &d.sbufTransposeEfficiency});

  MemoryConfig& m = c.mem;
  f.push_back({count("memory.sbuf_partitions", 1, 128, "partitions"), &m.sbufPartitions});
  f.push_back({count("memory.sbuf_bytes_per_partition", 1024, 1 << 24, "bytes", kBytesHint),
               &m.sbufBytesPerPartition});
  f.push_back({count("memory.psum_banks", 1, 64, "banks"), &m.psumBanks});
  f.push_back({count("memory.psum_bank_bytes_per_partition", 4, 1 << 20, "bytes", kBytesHint),
               &m.psumBankBytesPerPartition});
  f.push_back({count("memory.hbm_bytes", 1 << 20, 1ull << 50, "bytes", kBytesHint), &m.hbmBytes});
  f.push_back({real("memory.hbm_gbps", 1, 1e6, "GB/s", kBandwidthHint), &m.hbmGbps});
  f.push_back({count("memory.hbm_stacks", 1, 64, "stacks"), &m.hbmStacks});
  return f;
}

}  // namespace trnsim::arch::detail
