#pragma once
// The planner's compute model for Trainium-class chips, timed by the trnsim simulator itself:
// each operation's kernel-library program is built and scheduled timing-only
// (sim::simulateTiming) on a bounded, representative block of the work, and the block's time is
// scaled to the whole operation and cached by block shape. docs/plan_compute.md explains the
// choices and their measured accuracy.
//
// A rank is one logical NeuronCore: coresPerChip / ranksPerChip physical cores that split the
// rank's work evenly (trn2 with LNC=2: 2 cores). Every physical core of the chip is busy at
// once in a training step, so each one is simulated alone on a copy of the chip whose HBM
// bandwidth is the core's share (hbmGbps / coresPerChip); tests/plan/compute_sim_test.cpp
// checks that this matches all cores of the chip simulated together.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/plan/compute_model.h"
#include "trnsim/support/status.h"

namespace trnsim::plan {

/// How big a block of each operation is simulated; larger is more faithful and slower to fill.
struct SimComputeOptions {
  uint64_t maxBlockM = 2048;            ///< rows of C simulated per matmul block (multiple of 128)
  uint64_t maxBlockN = 2048;            ///< columns of C per block (multiple of 512)
  uint64_t maxBlockK = 4096;            ///< contraction per block (multiple of 128)
  uint64_t maxAttentionSeq = 4096;      ///< queries (= keys) per simulated attention block
  uint64_t maxAttentionGroupHeads = 4;  ///< query heads of one KV group per block
  uint64_t rmsNormRows = 1024;    ///< rmsnorm probes (rows and 2 rows) for memoryBoundSeconds ...
  uint64_t rmsNormHidden = 8192;  ///< ... and hidden size (bf16)
};

/// One simulated block's result: what the kernel took on ONE physical core.
struct SimBlockTiming {
  double seconds = 0;      ///< simulated end time of the block
  double tensorBusyS = 0;  ///< TensorE busy time
  double otherBusyS = 0;   ///< the busiest of VectorE, ScalarE, GpSimd
  double hbmBytes = 0;     ///< HBM read + write
  uint64_t instructions = 0;
};

class SimulatedComputeModel final : public ComputeModel {
 public:
  /// Needs system.accel.simChip (a trnsim chip name or JSON path) and ranksPerChip dividing the
  /// chip's physical cores; the errors name the key.
  static Expected<std::unique_ptr<SimulatedComputeModel>> create(const arch::SystemConfig& system,
                                                                 SimComputeOptions options = {});

  std::string_view name() const override { return name_; }
  double matmulSeconds(const MatmulShape& s, Precision p) const override;
  double attentionForwardSeconds(const AttentionShape& s, Precision p) const override;
  double attentionBackwardSeconds(const AttentionShape& s, Precision p) const override;
  double memoryBoundSeconds(double bytes) const override;
  double peakFlopsPerChip(Precision p) const override;

  /// The chip as loaded (all cores, full HBM) and the one-core chip with its HBM share that
  /// every block is simulated on.
  const arch::ChipConfig& chip() const { return chip_; }
  const arch::ChipConfig& coreChip() const { return coreChip_; }
  uint32_t physicalCoresPerRank() const { return coresPerRank_; }
  /// Streaming HBM bandwidth of one rank in memory-bound passes (simulated rmsnorm), GB/s;
  /// memoryBoundSeconds(bytes) = memoryBoundFixedSeconds() + bytes / that.
  double memoryBoundGbpsPerRank() const { return rankGbps_; }
  double memoryBoundFixedSeconds() const { return memoryFixedS_; }

  /// A matmul of exactly this shape on one physical core (M, K multiples of 128, N of 512),
  /// cached; the scaling's unit. Errors from the kernel library pass through.
  Expected<SimBlockTiming> matmulBlock(uint64_t m, uint64_t n, uint64_t k, Precision p) const;
  /// Flash attention on one physical core: `groupHeads` query heads sharing one KV head, seq a
  /// multiple of 128, headDim <= 128; cached.
  Expected<SimBlockTiming> attentionBlock(uint64_t groupHeads, uint64_t seq, uint64_t headDim,
                                          bool causal, bool backward) const;

  /// Simulations run so far (cache misses) and calls answered from the cache.
  uint64_t simulations() const { return simulations_.load(); }
  uint64_t cacheHits() const { return hits_.load(); }
  /// Shapes that the kernel library could not build and that fell back to a TensorE-bound
  /// estimate at the chip's simulated matmul efficiency (see docs/plan_compute.md).
  uint64_t fallbacks() const { return fallbacks_.load(); }

 private:
  SimulatedComputeModel() = default;
  using Key = std::array<uint64_t, 6>;
  Expected<SimBlockTiming> cached(const Key& key) const;
  Expected<SimBlockTiming> simulate(const Key& key) const;
  double attentionSeconds(const AttentionShape& s, bool backward) const;
  /// `batch` matmuls [m, k] x [k, n] on one physical core, scaled from simulated blocks.
  double coreMatmulSeconds(uint64_t batch, uint64_t m, uint64_t n, uint64_t k, Precision p) const;
  double paddedCoreMatmulSeconds(uint64_t batch, uint64_t mp, uint64_t np, uint64_t kp,
                                 Precision p) const;
  double fallbackMatmulSeconds(double flopsPerCore, Precision p) const;

  std::string name_;
  arch::ChipConfig chip_;
  arch::ChipConfig coreChip_;
  uint32_t coresPerRank_ = 1;
  uint32_t ranksPerChip_ = 1;
  SimComputeOptions opts_;
  double rankGbps_ = 0;
  double memoryFixedS_ = 0;          ///< fixed cost of one memory-bound pass
  double bf16MatmulEfficiency_ = 1;  ///< of the probe block, for fallbacks

  mutable std::mutex mutex_;
  mutable std::map<Key, SimBlockTiming> cache_;
  mutable std::map<Key, Status> failed_;
  mutable std::atomic<uint64_t> simulations_{0}, hits_{0}, fallbacks_{0};
};

}  // namespace trnsim::plan
