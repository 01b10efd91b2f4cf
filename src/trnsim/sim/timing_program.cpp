#include "trnsim/sim/timing_program.h"

#include <array>

namespace trnsim::sim::detail {
namespace {

/// What the program check needs of an opcode, gathered once per table.
struct OpFacts {
  uint8_t numOperands = 0;
  uint8_t engineMask = 0;
  uint32_t required = 0;  ///< bit per operand slot that must be present
  std::array<isa::Access, isa::kMaxOperands> access{};
};

/// The checks of checkTimingInstruction as one cheap pass; false means "ask it for the error"
/// (it finds the same failure and names it).
bool quickCheck(const OpFacts* facts, const isa::Program& prog, const isa::Instruction& inst,
                uint32_t queues, bool transposeOk) {
  if (static_cast<int>(inst.opcode) >= isa::kNumOpcodes) return false;
  const OpFacts& f = facts[static_cast<int>(inst.opcode)];
  const unsigned engine = static_cast<unsigned>(inst.engine);
  if (engine >= unsigned(arch::kNumEngines) || (f.engineMask & (1u << engine)) == 0) return false;
  uint32_t present = 0;
  const size_t tensors = prog.tensors.size();
  for (const isa::Operand& o : inst.operands) {
    if (o.slot >= f.numOperands || o.ap.tensor >= tensors || o.ap.numFree > isa::kMaxFreeDims) {
      return false;
    }
    for (int d = 0; d < o.ap.numFree; ++d) {
      if (o.ap.free[d].count < 0) return false;
    }
    present |= 1u << o.slot;
  }
  if ((present & f.required) != f.required) return false;
  if (inst.engine == arch::Engine::kDma &&
      (inst.queue >= queues || (inst.opcode == isa::Opcode::kDmaTranspose && !transposeOk))) {
    return false;  // a transpose the chip may not do is left to checkTimingInstruction
  }
  return true;
}

/// Whether TensorE instructions `a` and `b` cost the same: tensorCost reads only the opcode,
/// the DoubleRow and IsTranspose flags, and the partitions, free counts and dtypes of operands
/// 1 and 2. Kernels issue long runs of matmuls of one shape at other offsets, so the table
/// computes a TensorE cost once per run of equal shapes and lets the run share it.
bool sameTensorCost(const isa::Program& prog, const isa::Instruction& a,
                    const isa::Instruction& b) {
  constexpr uint16_t kCostFlags = isa::kFlagDoubleRow | isa::kFlagIsTranspose;
  if (a.opcode != b.opcode || (a.flags & kCostFlags) != (b.flags & kCostFlags)) return false;
  for (uint8_t slot = 1; slot <= 2; ++slot) {
    const isa::AccessPattern* x = a.operand(slot);
    const isa::AccessPattern* y = b.operand(slot);
    if (x == nullptr || y == nullptr) {
      if (x != y) return false;
      continue;
    }
    if (x->partitions != y->partitions || x->numFree != y->numFree ||
        prog.tensors[x->tensor].dtype != prog.tensors[y->tensor].dtype) {
      return false;
    }
    for (int d = 0; d < x->numFree; ++d) {
      if (x->free[size_t(d)].count != y->free[size_t(d)].count) return false;
    }
  }
  return true;
}

}  // namespace

Status ProgramTable::build(const arch::ChipConfig& chip, const isa::Program& prog,
                           bool findDeps) {
  program = &prog;
  memory.init(chip, prog);
  const size_t n = prog.instructions.size();
  insts.assign(n, InstInfo{});
  boxes.clear();
  deps.clear();
  tensorCosts.clear();
  dmaCosts.clear();
  // Dependencies are found here, in program order, as long as they do not depend on time.
  staticDeps = findDeps;
  if (findDeps) {
    deps.reserve(n * 2);
  } else {
    boxes.reserve(n * 3);
  }
  DependencyTracker tracker;
  if (findDeps) tracker.init(memory);
  std::vector<Dep> found;
  std::vector<OperandBox> operands;  // of one instruction
  std::array<OpFacts, isa::kNumOpcodes> facts{};
  for (int op = 0; op < isa::kNumOpcodes; ++op) {
    const isa::OpInfo& info = isa::opInfo(static_cast<isa::Opcode>(op));
    OpFacts& f = facts[op];
    f.numOperands = info.numOperands;
    f.engineMask = info.engineMask;
    for (uint8_t slot = 0; slot < info.numOperands; ++slot) {
      if (!info.operands[slot].optional) f.required |= 1u << slot;
      f.access[slot] = info.operands[slot].access;
    }
  }
  const uint32_t queues = chip.dma.enginesPerCore * chip.dma.queuesPerEngine;
  // checkTimingInstruction refuses a DMA transpose only where the chip's efficiency for its
  // source is not positive.
  const bool transposeOk =
      chip.dma.transposeEfficiency > 0 && chip.dma.sbufTransposeEfficiency > 0;
  // Appends the boxes of `inst`'s operands to `out` (empty accesses touch nothing); returns
  // how many.
  auto place = [&](const isa::Instruction& inst, std::vector<OperandBox>& out) {
    const OpFacts& f = facts[static_cast<int>(inst.opcode)];
    uint8_t k = 0;
    OperandBox box;
    for (const isa::Operand& o : inst.operands) {
      if (memory.place(o.ap, f.access[o.slot], box)) {
        out.push_back(box);
        ++k;
      }
    }
    return k;
  };
  const isa::Instruction* costOf = nullptr;  // the instruction tensorCosts.back() is for
  // The stationary TensorE holds after the previous TensorE instruction (TensorE runs its
  // instructions in program order, so this is the state the scheduler will see).
  const isa::AccessPattern* loaded = nullptr;
  uint16_t loadedFlags = 0;
  for (size_t i = 0; i < n; ++i) {
    const isa::Instruction& inst = prog.instructions[i];
    if (!quickCheck(facts.data(), prog, inst, queues, transposeOk)) {
      TRNSIM_RETURN_IF_ERROR(checkTimingInstruction(chip, prog, i));
    }
    InstInfo& ii = insts[i];
    ii.unit = inst.engine == arch::Engine::kDma ? kFirstQueueUnit + inst.queue
                                                : static_cast<uint32_t>(inst.engine);
    if (staticDeps) {
      operands.clear();
      place(inst, operands);
      found.clear();
      double unused = 0;
      tracker.access(uint32_t(i), ii.unit, operands, found, unused, nullptr, 0);
      staticDeps = !tracker.overflowed();
      ii.depBegin = uint32_t(deps.size());
      ii.numDeps = uint16_t(found.size());
      for (const Dep& d : found) deps.push_back(d.inst);
    } else if (!findDeps) {
      ii.boxBegin = uint32_t(boxes.size());
      ii.numBoxes = place(inst, boxes);
    }
    switch (inst.engine) {
      case arch::Engine::kTensor: {
        if (costOf == nullptr || !sameTensorCost(prog, *costOf, inst)) {
          tensorCosts.push_back(tensorCost(chip, prog, inst));
          costOf = &inst;
        }
        ii.costIndex = uint32_t(tensorCosts.size() - 1);
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
  if (findDeps && !staticDeps) {
    // A bucket outgrew its bound: runs track dependencies themselves, from the boxes.
    deps = {};
    boxes.reserve(n * 3);
    for (size_t i = 0; i < n; ++i) {
      InstInfo& ii = insts[i];
      ii.boxBegin = uint32_t(boxes.size());
      ii.numBoxes = place(prog.instructions[i], boxes);
    }
  }
  return Status::ok();
}

}  // namespace trnsim::sim::detail
