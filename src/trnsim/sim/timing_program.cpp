#include "trnsim/sim/timing_program.h"

#include <array>
#include <optional>

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

/// Everything tensorCost reads of an instruction: its opcode, the DoubleRow and IsTranspose
/// flags, and the partitions, free counts and dtypes of operands 1 and 2. Kernels issue long
/// runs of matmuls of one shape at other offsets, so the table computes a TensorE cost once
/// per run of equal shapes and lets the run share it.
struct TensorShape {
  isa::Opcode opcode{};
  uint16_t flags = 0;
  std::array<bool, 2> present{};
  std::array<uint32_t, 2> partitions{};
  std::array<int, 2> numFree{};
  std::array<std::array<int64_t, isa::kMaxFreeDims>, 2> counts{};
  std::array<numerics::DType, 2> dtype{};
  bool operator==(const TensorShape&) const = default;

  TensorShape(const isa::Program& prog, const isa::Instruction& inst)
      : opcode(inst.opcode), flags(inst.flags & (isa::kFlagDoubleRow | isa::kFlagIsTranspose)) {
    for (const isa::Operand& o : inst.operands) {
      if (o.slot != 1 && o.slot != 2) continue;
      const size_t k = o.slot - 1u;
      if (present[k]) continue;  // Instruction::operand() answers a slot's first operand
      present[k] = true;
      partitions[k] = o.ap.partitions;
      numFree[k] = o.ap.numFree;
      for (int d = 0; d < o.ap.numFree; ++d) counts[k][size_t(d)] = o.ap.free[d].count;
      dtype[k] = prog.tensors[o.ap.tensor].dtype;
    }
  }
};

}  // namespace

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
  std::optional<TensorShape> lastShape;  // the shape tensorCosts.back() was computed for
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
    ii.boxBegin = uint32_t(boxes.size());
    const OpFacts& f = facts[static_cast<int>(inst.opcode)];
    for (const isa::Operand& o : inst.operands) {
      OperandBox box;
      if (memory.place(o.ap, f.access[o.slot], box)) {
        boxes.push_back(box);
        ++ii.numBoxes;
      }
    }
    switch (inst.engine) {
      case arch::Engine::kTensor: {
        TensorShape shape(prog, inst);
        if (!(lastShape && *lastShape == shape)) {
          tensorCosts.push_back(tensorCost(chip, prog, inst));
          lastShape = shape;
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
  return Status::ok();
}

}  // namespace trnsim::sim::detail
