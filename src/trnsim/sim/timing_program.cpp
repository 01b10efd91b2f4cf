#include "trnsim/sim/timing_program.h"

namespace trnsim::sim::detail {

Status ProgramTable::build(const arch::ChipConfig& chip, const isa::Program& prog) {
  program = &prog;
  memory.init(chip, prog);
  const size_t n = prog.instructions.size();
  insts.assign(n, InstInfo{});
  boxes.clear();
  tensorCosts.clear();
  dmaCosts.clear();
  boxes.reserve(n * 3);
  // The stationary TensorE holds after the previous TensorE instruction (TensorE runs its
  // instructions in program order, so this is the state the scheduler will see).
  const isa::AccessPattern* loaded = nullptr;
  uint16_t loadedFlags = 0;
  for (size_t i = 0; i < n; ++i) {
    TRNSIM_RETURN_IF_ERROR(checkTimingInstruction(chip, prog, i));
    const isa::Instruction& inst = prog.instructions[i];
    InstInfo& ii = insts[i];
    ii.unit = inst.engine == arch::Engine::kDma ? kFirstQueueUnit + inst.queue
                                                : static_cast<uint32_t>(inst.engine);
    ii.boxBegin = uint32_t(boxes.size());
    const isa::OpInfo& info = isa::opInfo(inst.opcode);
    for (const isa::Operand& o : inst.operands) {
      OperandBox box;
      if (memory.place(o.ap, info.operands[o.slot].access, box)) {
        boxes.push_back(box);
        ++ii.numBoxes;
      }
    }
    switch (inst.engine) {
      case arch::Engine::kTensor: {
        ii.costIndex = uint32_t(tensorCosts.size());
        tensorCosts.push_back(tensorCost(chip, prog, inst));
        if (tensorCosts.back().hasStationary) {
          const isa::AccessPattern* st = inst.operand(1);
          const uint16_t flags = inst.flags & (isa::kFlagDoubleRow | isa::kFlagIsTranspose);
          ii.reload = !(loaded != nullptr && *loaded == *st && loadedFlags == flags);
          loaded = st;
          loadedFlags = flags;
        } else {
          loaded = nullptr;  // a transpose replaces the array's weights
        }
        break;
      }
      case arch::Engine::kDma:
        ii.costIndex = uint32_t(dmaCosts.size());
        dmaCosts.push_back(dmaCost(chip, prog, inst));
        break;
      default:
        ii.streamNs = streamCycles(chip, prog, inst) / chip.stream(inst.engine).clockGhz;
        break;
    }
  }
  return Status::ok();
}

}  // namespace trnsim::sim::detail
