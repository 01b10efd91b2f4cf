#pragma once
// The timing model: engines as independent in-order queues, dependencies from the addresses
// each instruction touches, costs from the chip config, HBM shared by DMA queues and cores.

#include <span>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/sim/timeline.h"
#include "trnsim/support/status.h"

namespace trnsim::sim {

struct TimingOptions {
  bool recordEvents = true;  ///< keep one TimelineEvent per instruction
};

/// Schedules the programs (one per core, all starting at time 0) and returns the timeline.
/// Deterministic: the same programs give the same times on every run.
Expected<Timeline> simulateTiming(const arch::ChipConfig& chip,
                                  std::span<const isa::Program* const> perCore,
                                  const TimingOptions& opts = {});

/// Engine time of one instruction alone (no dependencies, no contention, no throttle), ns.
double instructionCostNs(const arch::ChipConfig& chip, const isa::Program& program,
                         const isa::Instruction& inst);

}  // namespace trnsim::sim
