#pragma once
// What the timing model needs to know about each instruction of a program, computed once per
// program in one pass that also checks it: the unit it runs on, its operands' memory boxes
// and its costs. The scheduler's hot loop then reads one flat array instead of walking
// instructions, operands and tensor declarations.

#include <cstdint>
#include <span>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/instruction.h"
#include "trnsim/sim/timing_cost.h"
#include "trnsim/sim/timing_deps.h"
#include "trnsim/support/status.h"

namespace trnsim::sim::detail {

/// The per-instruction facts of ProgramTable.
struct InstInfo {
  uint32_t unit = 0;       ///< engine index 0..4, or kFirstQueueUnit + DMA queue
  uint32_t boxBegin = 0;   ///< its operands: ProgramTable::boxes[boxBegin, +numBoxes)
  uint32_t costIndex = 0;  ///< TensorE: into tensorCosts; DMA: into dmaCosts
  uint8_t numBoxes = 0;
  bool reload = false;  ///< TensorE matmul: its stationary is not the one the previous
                        ///< TensorE instruction left loaded (LoadStationary runs)
  double streamNs = 0;  ///< Vector/Scalar/GpSimd/Sync: streamCycles / engine clock
};

/// One program's instructions, as the scheduler sees them.
struct ProgramTable {
  const isa::Program* program = nullptr;
  MemoryMap memory;
  std::vector<InstInfo> insts;
  std::vector<OperandBox> boxes;
  std::vector<TensorCost> tensorCosts;
  std::vector<DmaCost> dmaCosts;

  /// Checks `program` (checkTimingInstruction, instruction by instruction) and fills the table.
  Status build(const arch::ChipConfig& chip, const isa::Program& program);
  std::span<const OperandBox> boxesOf(const InstInfo& ii) const {
    return {boxes.data() + ii.boxBegin, ii.numBoxes};
  }
};

}  // namespace trnsim::sim::detail
