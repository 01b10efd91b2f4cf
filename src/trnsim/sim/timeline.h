#pragma once
// What the timing model records: when each instruction ran on which engine or DMA queue.
// The profile layer turns this into traces and summaries; sim knows no file formats.

#include <array>
#include <cstdint>
#include <vector>

#include "trnsim/arch/chip_config.h"

namespace trnsim::sim {

/// One instruction's occupancy of its engine (or, for DMA, its queue).
struct TimelineEvent {
  uint32_t core = 0;
  arch::Engine engine = arch::Engine::kVector;
  uint16_t queue = 0;        ///< DMA queue (DMA events only)
  uint32_t instruction = 0;  ///< index in the core's program
  double startNs = 0;
  double endNs = 0;
  double readyNs = 0;     ///< when its inputs were ready (start - ready = engine busy wait)
  uint64_t hbmBytes = 0;  ///< bytes moved to/from HBM (DMA)
  double flops = 0;       ///< TensorE floating-point operations (2 per MAC)
  /// The instruction of the same core whose end its inputs waited for last (the dependency
  /// that set readyNs), or kNoInstruction when none did.
  uint32_t after = kNoInstruction;

  static constexpr uint32_t kNoInstruction = UINT32_MAX;
};

/// Per-core totals, filled by the timing model.
struct CoreTimingStats {
  std::array<double, arch::kNumEngines> busyNs{};  ///< by arch::Engine
  double endNs = 0;
  double tensorFlops = 0;
  double tensorFlopsAtPeakNs = 0;  ///< time TensorE would need at its peak (for utilization)
  uint64_t hbmReadBytes = 0;
  uint64_t hbmWriteBytes = 0;
  uint64_t instructions = 0;
  std::array<uint64_t, arch::kNumEngines> engineInstructions{};  ///< by arch::Engine
  /// By arch::Engine: the sum over its instructions of start - inputs ready (how long ready
  /// instructions waited for the engine or their DMA queue), as TimelineEvent gives it.
  std::array<double, arch::kNumEngines> stallNs{};
  double throttledNs = 0;  ///< TensorE time lost to the power throttle
};

struct Timeline {
  std::vector<TimelineEvent> events;  ///< empty when events were not recorded
  std::vector<CoreTimingStats> cores;
  double endNs = 0;  ///< simulated time of the whole run

  /// Stitches `later`, a timeline that starts `offsetNs` into this one, onto its end: its
  /// events shifted by offsetNs, its per-core totals added to this one's (cores matched by
  /// index), the ends moved to where it ends. The fabric builds a rank's timeline so from the
  /// segments between its collectives.
  void append(const Timeline& later, double offsetNs);
};

}  // namespace trnsim::sim
