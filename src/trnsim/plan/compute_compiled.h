#pragma once
// The planner's compiled-layer compute model for Trainium-class chips: one transformer layer's
// forward and backward, the embedding/LM head and the AdamW step are built as compiler graphs
// (plan/layer_graph.h), compiled and run timing-only on one physical core with its share of the
// chip's HBM, and their simulated times cached in memory and on disk. Where the kernel
// composition (compute_sim.h) adds up a layer's matmuls, attention and a guess for the rest,
// this charges everything the compiled layer does: norms, RoPE, casts, layout changes, residual
// adds, gradient accumulation, each as the compiler lowers it. docs/plan_compute.md, "Compiled
// layers".

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/plan/layer_graph.h"
#include "trnsim/plan/model_config.h"
#include "trnsim/support/status.h"

namespace trnsim::plan {

/// How the planner times Trainium compute (GPUs and TPUs always use the roofline).
enum class ComputeModelKind : uint8_t {
  kCompiled,  ///< compiled layer graphs, timing-only (the default)
  kKernels,   ///< the per-kernel composition of compute_sim.h
};
std::string_view computeModelKindName(ComputeModelKind k);  ///< "compiled", "kernels"
/// "compiled" or "kernels"; errors name `--compute-model`.
Expected<ComputeModelKind> parseComputeModelKind(std::string_view name);

struct CompiledComputeOptions {
  /// Folder of the disk cache; empty = $TRNSIM_CACHE_DIR/plan-compiled, else
  /// ~/.cache/trnsim/plan-compiled. "off" (here or in $TRNSIM_CACHE_DIR) = memory only.
  std::string cacheDir;
};

/// Seconds of one layer for one micro-batch on one rank.
struct CompiledLayerTimes {
  double forward = 0, backward = 0;
  double attentionForward = 0, attentionBackward = 0;  ///< included in forward / backward
};
/// Seconds of the embedding + LM head + loss for one micro-batch on one rank.
struct CompiledHeadTimes {
  double forward = 0, backward = 0;
};

class CompiledComputeModel {
 public:
  /// Needs system.accel.simChip and ranksPerChip dividing the chip's cores (as the kernel
  /// model); errors name the key.
  static Expected<std::shared_ptr<CompiledComputeModel>> create(
      const arch::SystemConfig& system, CompiledComputeOptions options = {});

  /// One layer at the rank's shape (s.batch = sequences per micro-batch). The graphs are
  /// built for one sequence and the time multiplied by s.batch (sequences are independent);
  /// the rank's work is split over its physical cores, so the one-core time is divided by the
  /// cores per rank.
  Expected<CompiledLayerTimes> layer(const ModelConfig& m, const LayerGraphShape& s) const;
  Expected<CompiledHeadTimes> head(const ModelConfig& m, const LayerGraphShape& s) const;
  /// AdamW over `params` parameters on one rank: F + params x rate, from two simulated sizes.
  Expected<double> optimizerSeconds(double params) const;

  /// Simulated seconds of one graph on one physical core (its HBM share), cached by
  /// (IR text, chip, trnsim version). Errors of the compiler pass through.
  Expected<double> graphSeconds(const std::string& irText) const;

  const arch::ChipConfig& coreChip() const { return coreChip_; }
  uint32_t physicalCoresPerRank() const { return coresPerRank_; }
  /// The disk cache folder ("" when off).
  const std::string& cacheDir() const { return cacheDir_; }

  uint64_t simulations() const { return simulations_.load(); }  ///< graphs compiled and run
  uint64_t memoryHits() const { return memoryHits_.load(); }
  uint64_t diskHits() const { return diskHits_.load(); }
  /// Simulated instructions of all graphs run so far (host-cost accounting).
  uint64_t instructions() const { return instructions_.load(); }

 private:
  CompiledComputeModel() = default;
  std::string cacheKeyOf(const std::string& irText) const;

  arch::ChipConfig coreChip_;
  uint32_t coresPerRank_ = 1;
  std::string cacheDir_;
  std::string chipFingerprint_;

  mutable std::mutex mutex_;
  mutable std::map<std::string, double> cache_;
  mutable std::atomic<uint64_t> simulations_{0}, memoryHits_{0}, diskHits_{0}, instructions_{0};
};

/// The version string that keys the disk cache (the project version and the cache format).
std::string_view compiledCacheVersion();

}  // namespace trnsim::plan
