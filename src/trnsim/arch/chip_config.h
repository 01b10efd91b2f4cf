#pragma once
// A Trainium-class chip described as data. Loaded from configs/chips/<name>.json, where every
// number carries the public source it comes from (see docs/configs.md).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "trnsim/support/status.h"

namespace trnsim::arch {

/// The engines of one NeuronCore. The numbering follows nki.isa.engine where it exists.
enum class Engine : uint8_t {
  kTensor = 0,  ///< PE array (TensorE)
  kVector,      ///< DVE
  kScalar,      ///< ACT
  kGpSimd,      ///< Pool
  kSync,        ///< SP sequencer
  kDma,         ///< DMA queues
};
inline constexpr int kNumEngines = 6;
/// Lower-case name of an engine: "tensor", "vector", "scalar", "gpsimd", "sync", "dma".
std::string_view engineName(Engine e);

/// The version of the configs/chips/*.json format this library reads ("schema_version").
inline constexpr int kChipSchemaVersion = 1;

/// TensorE: a rows x cols systolic array fed from SBUF, writing PSUM.
struct TensorEngineConfig {
  double clockGhz = 0;
  uint32_t rows = 128;                 ///< contraction (K) per instruction
  uint32_t cols = 128;                 ///< stationary free size (M) per instruction
  uint32_t maxMovingFree = 512;        ///< moving free size (N) per instruction: one PSUM bank
  uint32_t mmMinCycles = 64;           ///< MultiplyMoving initiation-interval floor
  uint32_t loadStationarySpeedup = 4;  ///< LoadStationary runs this much faster than MM
  uint32_t fp32Slowdown = 4;           ///< fp32 operands take this many passes
  uint32_t fp8Speedup = 1;             ///< 2 on trn2 (double_row: K=256 in one instruction)
  uint32_t fixedOverheadCycles = 0;    ///< issue cost per instruction
  struct Throttle {
    bool enabled = false;
    double startFraction = 1.0;   ///< fraction of peak right after an idle period
    double rampNs = 0;            ///< time of sustained work to ramp to full rate
    double rearmIdleNs = 0;       ///< a window this long below threshold re-arms the throttle
    double rearmThreshold = 0.5;  ///< utilization below which a window counts as idle
  } throttle;
};

/// VectorE, ScalarE and GpSimdE: `lanes` partitions in parallel, streaming the free dim.
struct StreamEngineConfig {
  double clockGhz = 0;
  uint32_t lanes = 128;
  double elemsPerCycle32 = 1;        ///< free-dim elements per lane per cycle, 4-byte data
  double elemsPerCycle16 = 1;        ///< ... 2-byte data (perf modes on trn2+)
  double elemsPerCycle8 = 1;         ///< ... 1-byte data
  uint32_t minCycles = 64;           ///< initiation-interval floor of one instruction
  uint32_t fixedOverheadCycles = 0;  ///< static issue cost (semaphore, access start)

  /// Free-dim elements per lane per cycle for elements of `dtypeBytes` bytes (1, 2, else 4).
  double elemsPerCycle(uint32_t dtypeBytes) const {
    return dtypeBytes <= 1 ? elemsPerCycle8 : dtypeBytes == 2 ? elemsPerCycle16 : elemsPerCycle32;
  }
};

struct DmaConfig {
  uint32_t enginesPerCore = 16;
  uint32_t queuesPerEngine = 16;
  double engineGbps = 0;               ///< peak bandwidth of one DMA engine
  double sustainedGbpsPerCore = 0;     ///< measured sustained bandwidth of all engines of one core
  double fixedLatencyNs = 0;           ///< descriptor/semaphore-to-start cost of one DMA
  uint32_t minEfficientBytes = 0;      ///< contiguous bytes per descriptor below which BW drops
  double transposeEfficiency = 1;      ///< DMA transpose bandwidth as a fraction of copy
                                       ///< (HBM->SBUF); 0 means the chip has no DMA transpose
  double sbufTransposeEfficiency = 1;  ///< the same for SBUF->SBUF transposes (0: none)

  /// Peak bandwidth of all DMA engines of one core (engines * engineGbps).
  double peakGbpsPerCore() const { return enginesPerCore * engineGbps; }
  bool supportsTranspose() const { return transposeEfficiency > 0; }
};

struct MemoryConfig {
  uint32_t sbufPartitions = 128;
  uint64_t sbufBytesPerPartition = 0;
  uint32_t psumBanks = 8;
  uint64_t psumBankBytesPerPartition = 2048;
  uint64_t hbmBytes = 0;  ///< per chip
  double hbmGbps = 0;     ///< per chip, shared by every core and DMA queue
  uint32_t hbmStacks = 0;

  uint64_t sbufBytesPerCore() const { return uint64_t(sbufPartitions) * sbufBytesPerPartition; }
  uint64_t psumBytesPerCore() const {
    return uint64_t(sbufPartitions) * psumBanks * psumBankBytesPerPartition;
  }
};

struct ChipConfig {
  std::string name;         ///< "trn2"
  std::string description;  ///< "AWS Trainium2 (NeuronCore-v3)"
  std::string sourceFile;   ///< where it was loaded from ("<builtin>/trn2.json")
  uint32_t coresPerChip = 0;
  TensorEngineConfig pe;
  StreamEngineConfig vector, scalar, gpsimd, sync;
  DmaConfig dma;
  MemoryConfig mem;
  /// Cycles of the waiting engine's clock between another engine (or a DMA queue) signalling
  /// a semaphore and the waiting instruction starting (key `semaphore_wait_cycles`; the
  /// built-in chips take 40 of the "+~100 cycles for tiny/dependent ops" [A2]). Added by the
  /// timing model to cross-engine dependencies of compute engines (DMA queues wait through
  /// dma.fixedLatencyNs instead).
  uint32_t semaphoreWaitCycles = 100;
  /// Dotted config key ("pe.clock_ghz") -> the public source of its value.
  std::map<std::string, std::string> sources;

  uint64_t psumBytesPerPartition() const {
    return uint64_t(mem.psumBanks) * mem.psumBankBytesPerPartition;
  }
  /// Peak bf16 FLOP/s of one core's TensorE: 2 * rows * cols * clock.
  double peakBf16FlopsPerCore() const { return 2.0 * pe.rows * pe.cols * pe.clockGhz * 1e9; }
  /// Peak fp8 FLOP/s of one core: the bf16 peak times pe.fp8Speedup.
  double peakFp8FlopsPerCore() const { return peakBf16FlopsPerCore() * pe.fp8Speedup; }
  /// Peak fp32 FLOP/s of one core: the bf16 peak divided by pe.fp32Slowdown.
  double peakFp32FlopsPerCore() const { return peakBf16FlopsPerCore() / pe.fp32Slowdown; }
  /// HBM bandwidth per core when every core streams at once (hbmGbps / coresPerChip).
  double hbmGbpsPerCore() const { return coresPerChip ? mem.hbmGbps / coresPerChip : 0; }
  /// The config of a streaming engine (Vector, Scalar, GpSimd, Sync). Tensor and Dma are not
  /// streaming engines; asking for them is a programmer error (asserts; Sync's config otherwise).
  const StreamEngineConfig& stream(Engine e) const;
};

/// A 64-bit fingerprint of every value of `chip` that the simulator reads (its name and every
/// numeric key; not the description, source file or sources): equal configs give equal
/// fingerprints. The verifier stamps programs with it (isa::ensureVerified).
uint64_t chipFingerprint(const ChipConfig& chip);

/// Loads a chip from a JSON file; errors name the file, the key and what was expected.
Expected<ChipConfig> loadChipConfigFile(const std::string& path);
/// Parses chip JSON text; `origin` names it in errors.
Expected<ChipConfig> parseChipConfig(std::string_view jsonText, const std::string& origin);
/// A chip by name ("trn1", "trn2", "trn3", built into the binary) or by path to a JSON file.
Expected<ChipConfig> loadChip(const std::string& nameOrPath);
/// Names of the built-in chips.
std::vector<std::string> builtinChipNames();

/// Human-readable summary for `trnsim info`.
std::string describeChip(const ChipConfig& chip);
/// The same as JSON: plain values nested like the config file, a "derived" object (peaks,
/// per-core sizes) and a "sources" object mapping each dotted key to its source.
std::string chipToJson(const ChipConfig& chip);
/// The chip in the configs/chips/*.json format ({"value", "source"} per number); parsing the
/// result gives the same chip back. A base for writing a modified chip.
std::string chipToConfigJson(const ChipConfig& chip);
/// Every dotted numeric key of the config format ("cores_per_chip", "pe.clock_ghz", ...), in
/// file order.
std::vector<std::string> chipConfigKeys();

}  // namespace trnsim::arch
