// describeChip, chipToJson and chipToConfigJson: a ChipConfig rendered for people and tools.

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/chip_schema.h"

namespace trnsim::arch {
namespace {

using OrderedJson = nlohmann::ordered_json;

/// "224 KiB", "96 GiB", "1.5 MiB", "100 bytes".
std::string humanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  if (unit == 0) return fmt::format("{} bytes", bytes);
  return std::floor(v) == v ? fmt::format("{:.0f} {}", v, kUnits[unit])
                            : fmt::format("{:.1f} {}", v, kUnits[unit]);
}

/// The node at a dotted path below `root`, created on the way.
OrderedJson& nodeAt(OrderedJson& root, std::string_view path) {
  OrderedJson* node = &root;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part(
        path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    node = &(*node)[part];
    if (dot == std::string_view::npos) return *node;
    start = dot + 1;
  }
}

OrderedJson valueOf(const detail::FieldRef& ref) {
  return std::visit([](auto* p) { return OrderedJson(*p); }, ref);
}

std::string throttleLine(const TensorEngineConfig::Throttle& t) {
  if (!t.enabled) return "none";
  return fmt::format(
      "starts at {:.0f}% of peak, full rate after {:.0f} ns of work, re-arms after {:.0f} ns below "
      "{:.0f}%",
      t.startFraction * 100, t.rampNs, t.rearmIdleNs, t.rearmThreshold * 100);
}

std::string transposeLine(const DmaConfig& d) {
  if (!d.supportsTranspose()) return "no DMA transpose";
  return fmt::format("transpose at {:.0f}% of copy bandwidth HBM->SBUF, {:.0f}% SBUF->SBUF",
                     d.transposeEfficiency * 100, d.sbufTransposeEfficiency * 100);
}

}  // namespace

std::string describeChip(const ChipConfig& c) {
  constexpr double kTera = 1e12;
  std::string out;
  auto line = [&out](const std::string& s) {
    out += s;
    out += '\n';
  };
  line(fmt::format("{}: {}", c.name, c.description));
  line(fmt::format("  config        {}", c.sourceFile.empty() ? "(built in code)" : c.sourceFile));
  line(fmt::format("  NeuronCores   {} per chip", c.coresPerChip));
  line("");
  line(fmt::format("TensorE (per core): {} x {} PE array at {:.2f} GHz, moving free size <= {}",
                   c.pe.rows, c.pe.cols, c.pe.clockGhz, c.pe.maxMovingFree));
  line(fmt::format("  peak/core     {:.1f} TFLOPS bf16, {:.1f} fp8, {:.1f} fp32",
                   c.peakBf16FlopsPerCore() / kTera, c.peakFp8FlopsPerCore() / kTera,
                   c.peakFp32FlopsPerCore() / kTera));
  line(fmt::format("  peak/chip     {:.1f} TFLOPS bf16, {:.1f} fp8, {:.1f} fp32",
                   c.peakBf16FlopsPerCore() * c.coresPerChip / kTera,
                   c.peakFp8FlopsPerCore() * c.coresPerChip / kTera,
                   c.peakFp32FlopsPerCore() * c.coresPerChip / kTera));
  line(fmt::format(
      "  matmul        MultiplyMoving >= {} cycles, LoadStationary {}x faster, fp32 {}x slower, "
      "fp8 {}x faster, {} fixed cycles per instruction",
      c.pe.mmMinCycles, c.pe.loadStationarySpeedup, c.pe.fp32Slowdown, c.pe.fp8Speedup,
      c.pe.fixedOverheadCycles));
  line(fmt::format("  throttle      {}", throttleLine(c.pe.throttle)));
  line("");
  line(fmt::format("  {:<8}{:>10}{:>7}  {:<25}{:>11}{:>14}{:>20}", "engine", "clock", "lanes",
                   "elem/lane/cycle 32/16/8", "min cycles", "fixed cycles", "peak 16-bit"));
  for (Engine e : {Engine::kVector, Engine::kScalar, Engine::kGpSimd, Engine::kSync}) {
    const StreamEngineConfig& s = c.stream(e);
    double gelems = s.clockGhz * s.lanes * s.elemsPerCycle16;
    line(fmt::format(
        "  {:<8}{:>6.2f} GHz{:>7}  {:<25}{:>11}{:>14}{:>12.1f} Gelem/s", engineName(e), s.clockGhz,
        s.lanes,
        fmt::format("{:g} / {:g} / {:g}", s.elemsPerCycle32, s.elemsPerCycle16, s.elemsPerCycle8),
        s.minCycles, s.fixedOverheadCycles, gelems));
  }
  line("");
  const MemoryConfig& m = c.mem;
  line(fmt::format("SBUF  {} partitions x {} = {} per core, {} per chip", m.sbufPartitions,
                   humanBytes(m.sbufBytesPerPartition), humanBytes(m.sbufBytesPerCore()),
                   humanBytes(m.sbufBytesPerCore() * c.coresPerChip)));
  line(fmt::format("PSUM  {} partitions x {} banks x {} = {} per core", m.sbufPartitions,
                   m.psumBanks, humanBytes(m.psumBankBytesPerPartition),
                   humanBytes(m.psumBytesPerCore())));
  const DmaConfig& d = c.dma;
  line(
      fmt::format("DMA   {} engines x {} queues per core; {:g} GB/s per engine ({:.1f} GB/s peak), "
                  "{:g} GB/s sustained "
                  "per core",
                  d.enginesPerCore, d.queuesPerEngine, d.engineGbps, d.peakGbpsPerCore(),
                  d.sustainedGbpsPerCore));
  line(fmt::format(
      "      {:g} ns fixed cost per DMA; >= {} contiguous per descriptor for full bandwidth; {}",
      d.fixedLatencyNs, humanBytes(d.minEfficientBytes), transposeLine(d)));
  line(fmt::format(
      "HBM   {} in {} stacks, {:g} GB/s per chip ({:.1f} GB/s per core when all {} stream)",
      humanBytes(m.hbmBytes), m.hbmStacks, m.hbmGbps, c.hbmGbpsPerCore(), c.coresPerChip));
  return out;
}

std::string chipToJson(const ChipConfig& chip) {
  ChipConfig copy = chip;  // chipFields hands out mutable refs; read them from a copy
  OrderedJson j;
  j["name"] = chip.name;
  j["description"] = chip.description;
  j["source_file"] = chip.sourceFile;
  j["schema_version"] = kChipSchemaVersion;
  for (const detail::Field& f : detail::chipFields(copy)) nodeAt(j, f.spec.path) = valueOf(f.ref);
  OrderedJson& derived = j["derived"];
  derived["peak_bf16_tflops_per_core"] = chip.peakBf16FlopsPerCore() / 1e12;
  derived["peak_fp8_tflops_per_core"] = chip.peakFp8FlopsPerCore() / 1e12;
  derived["peak_fp32_tflops_per_core"] = chip.peakFp32FlopsPerCore() / 1e12;
  derived["peak_bf16_tflops_per_chip"] = chip.peakBf16FlopsPerCore() * chip.coresPerChip / 1e12;
  derived["sbuf_bytes_per_core"] = chip.mem.sbufBytesPerCore();
  derived["psum_bytes_per_core"] = chip.mem.psumBytesPerCore();
  derived["dma_peak_gbps_per_core"] = chip.dma.peakGbpsPerCore();
  derived["hbm_gbps_per_core"] = chip.hbmGbpsPerCore();
  OrderedJson& sources = j["sources"];
  sources = OrderedJson::object();
  for (const detail::Field& f : detail::chipFields(copy)) {
    auto it = chip.sources.find(std::string(f.spec.path));
    if (it != chip.sources.end()) sources[std::string(f.spec.path)] = it->second;
  }
  return j.dump(2, ' ', false, OrderedJson::error_handler_t::replace);
}

std::string chipToConfigJson(const ChipConfig& chip) {
  ChipConfig copy = chip;
  OrderedJson j;
  j["schema_version"] = kChipSchemaVersion;
  j["name"] = chip.name;
  j["description"] = chip.description;
  for (const detail::Field& f : detail::chipFields(copy)) {
    auto it = chip.sources.find(std::string(f.spec.path));
    OrderedJson& node = nodeAt(j, f.spec.path);
    node["value"] = valueOf(f.ref);
    node["source"] =
        it != chip.sources.end() && !it->second.empty() ? it->second : "(no source recorded)";
  }
  return j.dump(2, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
}

}  // namespace trnsim::arch
