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
  uint32_t depBegin = 0;   ///< with staticDeps: ProgramTable::deps[depBegin, +numDeps)
  uint16_t numDeps = 0;
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
  std::vector<OperandBox> boxes;  ///< without staticDeps (nothing else reads them)
  /// Whether every instruction's dependencies were found here, once for all cores that run
  /// the program (DependencyTracker without end times: exact while no bucket outgrows its
  /// bound). Otherwise each run tracks them from `boxes`.
  bool staticDeps = false;
  std::vector<uint32_t> deps;  ///< with staticDeps: the instructions each one waits for
  std::vector<TensorCost> tensorCosts;
  std::vector<DmaCost> dmaCosts;

  /// Checks `program` (checkTimingInstruction, instruction by instruction) and fills the table;
  /// `findDeps`: try to find the dependencies here (worth it when several cores run the
  /// program: they then share them instead of each tracking its own).
  Status build(const arch::ChipConfig& chip, const isa::Program& program, bool findDeps);
  std::span<const OperandBox> boxesOf(const InstInfo& ii) const {
    return {boxes.data() + ii.boxBegin, ii.numBoxes};
  }
  std::span<const uint32_t> depsOf(const InstInfo& ii) const {
    return {deps.data() + ii.depBegin, ii.numDeps};
  }
};

}  // namespace trnsim::sim::detail
